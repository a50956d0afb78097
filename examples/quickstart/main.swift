// Builds f(x) = sqrt(x^2 + exp(x^2)) + sin(x^2 - 1) with the Swift builder, asks for its
// derivative, JIT-compiles value and derivative into one native kernel with TinyCC, and prints
// both next to the interpreter's values at a few points.
import Foundation
import Nabla

do {
    let g = GraphBuilder()
    let x = try g.input("x")
    let f = try sqrt(x ** 2 + exp(x ** 2)) + sin(x ** 2 - 1)
    let dfdx = try gradient(of: f, wrt: x)
    let graph = try g.graph(outputs: ["f": f, "df/dx": dfdx])

    let start = ContinuousClock.now
    let kernel = try Kernel(graph)
    let compileTime = ContinuousClock.now - start
    print("f(x) = sqrt(x^2 + exp(x^2)) + sin(x^2 - 1)")
    print("compiled value and derivative in \(compileTime) (\(graph.nodes.count) nodes, TinyCC)")
    print("")
    print("     x            f(x)                  f'(x)                 interpreter agrees")
    for point in [0.0, 0.5, 1.5, -2.0] {
        let out = try kernel(["x": TensorData(point)])
        let reference = try Interpreter.evaluate(graph, inputs: ["x": TensorData(point)])
        let agrees = out == reference
        let line = [String(format: "%6.2f", point), String(format: "%20.16f", out["f"]!.scalar),
                    String(format: "%21.16f", out["df/dx"]!.scalar), agrees ? "yes" : "NO"]
        print(line.joined(separator: "  "))
    }
    print("")
    print("Generated C:")
    print(kernel.source.code)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
