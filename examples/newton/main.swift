// Newton's method on the chained Rosenbrock function with Nabla's Hessian, then the second
// derivative test at three stationary points. Run: swift run newton
import Foundation
import Nabla

/// Solves M s = r by Gaussian elimination with partial pivoting.
func solve(_ M: [[Double]], _ r: [Double]) -> [Double] {
    var a = M, b = r
    let n = b.count
    for col in 0..<n {
        let pivot = (col..<n).max { abs(a[$0][col]) < abs(a[$1][col]) }!
        a.swapAt(col, pivot)
        b.swapAt(col, pivot)
        for row in (col + 1)..<n {
            let factor = a[row][col] / a[col][col]
            for k in col..<n { a[row][k] -= factor * a[col][k] }
            b[row] -= factor * b[col]
        }
    }
    var s = [Double](repeating: 0, count: n)
    for row in stride(from: n - 1, through: 0, by: -1) {
        s[row] = (b[row] - ((row + 1)..<n).reduce(0.0) { $0 + a[row][$1] * s[$1] }) / a[row][row]
    }
    return s
}

do {
    let n = 6
    let source = """
        dim N = \(n)
        input x: [N]
        output f = sum(100 * (x[:-1]^2 - x[1:])^2 + (x[:-1] - 1)^2)
        grad f wrt x
        hessian f wrt x
        """
    let program = try NablaProgram(source: source, fileName: "rosenbrock.nabla")
    let kernel = try Kernel(program.graph)
    var x = [-1.2, 1, -1.2, 1, -1.2, 1]
    print("Newton's method on the chained Rosenbrock function, N = \(n)")
    for iteration in 0..<50 {
        let out = try kernel([x])
        let (f, gradient, hessian) = (out[0][0], out[1], out[2])
        let norm = gradient.map(abs).max()!
        print(String(format: "%3d  f = %.6e  |grad|max = %.3e", iteration, f, norm))
        if norm < 1e-12 { break }
        let step = solve((0..<n).map { Array(hessian[$0 * n..<($0 + 1) * n]) }, gradient)
        x = zip(x, step).map { $0 - $1 }
    }
    print("x = \(x.map { String(format: "%.12f", $0) }.joined(separator: ", "))")

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
