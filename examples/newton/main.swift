// Newton's method on the chained Rosenbrock function with Nabla's Hessian, then the second
// derivative test at three stationary points. Run: swift run newton
import Foundation
import Nabla

do {
    let n = 6
    // The Newton step H^-1 g is part of the compiled graph: gradient, Hessian and one solve.
    let g = GraphBuilder()
    let x = try g.input("x", shape: Shape([n]))
    let f = try sum(100 * square(square(x[.upTo(-1)]) - x[.from(1)]) + square(x[.upTo(-1)] - 1))
    let gradientOfF = try gradient(of: f, wrt: x)
    let step = try solve(hessian(of: f, wrt: x), gradientOfF)
    let kernel = try Kernel(g.graph(outputs: ["f": f, "g": gradientOfF, "step": step]))
    var point = [-1.2, 1, -1.2, 1, -1.2, 1]
    print("Newton's method on the chained Rosenbrock function, N = \(n)")
    for iteration in 0..<50 {
        let out = try kernel([point])
        let norm = out[1].map(abs).max()!
        print(String(format: "%3d  f = %.6e  |grad|max = %.3e", iteration, out[0][0], norm))
        if norm < 1e-12 { break }
        point = zip(point, out[2]).map { $0 - $1 }
    }
    print("x = \(point.map { String(format: "%.12f", $0) }.joined(separator: ", "))")

    print("\nSecond derivative test for f(p, q) = a p^2 + b q^2 + pq/2 at (0, 0):")
    for (a, b) in [(1.0, 2.0), (-1.0, -2.0), (1.0, -2.0)] {
        let test = try NablaProgram(source: """
            input p: [2]
            output f = \(a) * p[0]^2 + \(b) * p[1]^2 + 0.5 * p[0] * p[1]
            grad f wrt p
            hessian f wrt p
            """, fileName: "stationary.nabla")
        let out = try Kernel(test.graph)([[0, 0]])
        let H = out[2]
        let determinant = H[0] * H[3] - H[1] * H[2]
        let kind = determinant < 0 ? "saddle" : (H[0] > 0 ? "minimum" : "maximum")
        print("  a = \(a), b = \(b): gradient \(out[1]), Hessian \(H), det \(determinant): \(kind)")
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
