// Taylor polynomials of e^x and sin x around 0 of orders 1, 2 and 5, from coefficients
// f^(k)(0)/k! that Nabla computes by repeated differentiation, against the true values.
// Run: swift run taylor-table
import Foundation
import Nabla

do {
    let g = GraphBuilder()
    let x = try g.input("x")
    let graph = try g.graph(outputs: [
        "exp": taylorCoefficients(of: exp(x), wrt: x, order: 5),
        "sin": taylorCoefficients(of: sin(x), wrt: x, order: 5),
    ])
    let coefficients = try Kernel(graph)(["x": TensorData(0)])
    for (name, f) in [("exp", { (t: Double) in exp(t) }), ("sin", { (t: Double) in sin(t) })] {
        let c = coefficients[name]!.scalars
        print("\(name)(x) around 0, coefficients \(c.map { String(format: "%.6g", $0) }.joined(separator: ", "))")
        print("     x        T1(x)        T2(x)        T5(x)      \(name)(x)")
        for t in [-1.0, -0.5, 0.1, 0.5, 1.0, 2.0] {
            let taylor = { (order: Int) in (0...order).reduce(0.0) { $0 + c[$1] * pow(t, Double($1)) } }
            print(String(format: "%6.2f  %11.7f  %11.7f  %11.7f  %11.7f", t, taylor(1), taylor(2), taylor(5), f(t)))
        }
        print("")
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
