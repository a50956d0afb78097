import Foundation
import Testing
@testable import Nabla

/// The remaining identities of the math spec, each against its closed form (plain Swift) and
/// finite differences.
@Suite("Matrix identities: closed forms")
struct IdentityTests {
    func matrix(_ t: TensorData) -> [[Double]] {
        (0..<t.shape[0]).map { i in (0..<t.shape[1]).map { t[i, $0] } }
    }

    @Test func jacobianOfALinearMapIsTheMatrix() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [3, 4]), x = try g.input("x", shape: [4])
        var rng = SeededRandom(seed: 31)
        let a = TensorData.random([3, 4], using: &rng)
        let out = try expectKernelMatchesInterpreter(try g.graph(outputs: ["J": jacobian(of: A.matmul(x), wrt: x)]),
            ["A": a, "x": .random([4], using: &rng)])
        #expect(out["J"]!.scalars == a.scalars)
    }

    @Test func traceOfAXB() throws {
        // d tr(A X B) / dX = A^T B^T.
        let g = GraphBuilder()
        let A = try g.input("A", shape: [3, 3]), X = try g.input("X", shape: [3, 3]), B = try g.input("B", shape: [3, 3])
        let product = try A.matmul(X).matmul(B)
        let t = try sum(product[.all, .all].reshaped([9])[.range(start: 0, end: nil, step: 4)])
        let graph = try g.graph(outputs: ["t": t, "dX": gradient(of: t, wrt: X)])
        var rng = SeededRandom(seed: 32)
        let inputs = ["A": TensorData.random([3, 3], using: &rng), "X": .random([3, 3], using: &rng), "B": .random([3, 3], using: &rng)]
        let out = try expectKernelMatchesInterpreter(graph, inputs)
        let a = matrix(inputs["A"]!), b = matrix(inputs["B"]!)
        let expected = (0..<3).flatMap { i in (0..<3).map { j in (0..<3).reduce(0.0) { $0 + a[$1][i] * b[j][$1] } } }
        expectClose(out["dX"]!.scalars, expected, tolerance: 1e-14)
        expectClose(out["dX"]!.scalars, try finiteDifferenceGradient(graph, output: "t", wrt: "X", at: inputs), tolerance: 1e-7)
    }

    @Test func weightedResidual() throws {
        // d((x - A s)^T W (x - A s))/ds = -2 (x - A s)^T W A for symmetric W.
        let g = GraphBuilder()
        let x = try g.input("x", shape: [4]), A = try g.input("A", shape: [4, 3]), s = try g.input("s", shape: [3])
        let W0 = try g.input("W0", shape: [4, 4])
        let W = try W0 + W0.transposed
        let r = try x - A.matmul(s)
        let f = try r.matmul(W).matmul(r)
        let graph = try g.graph(outputs: ["f": f, "ds": gradient(of: f, wrt: s)])
        var rng = SeededRandom(seed: 33)
        let inputs = ["x": TensorData.random([4], using: &rng), "A": .random([4, 3], using: &rng),
                      "s": .random([3], using: &rng), "W0": .random([4, 4], using: &rng)]
        let out = try expectKernelMatchesInterpreter(graph, inputs)
        let a = matrix(inputs["A"]!), w0 = matrix(inputs["W0"]!)
        let w = (0..<4).map { i in (0..<4).map { w0[i][$0] + w0[$0][i] } }
        let res = (0..<4).map { i in inputs["x"]!.scalars[i] - (0..<3).reduce(0.0) { $0 + a[i][$1] * inputs["s"]!.scalars[$1] } }
        let rW = (0..<4).map { j in (0..<4).reduce(0.0) { $0 + res[$1] * w[$1][j] } }
        let expected = (0..<3).map { k in -2 * (0..<4).reduce(0.0) { $0 + rW[$1] * a[$1][k] } }
        expectClose(out["ds"]!.scalars, expected, tolerance: 1e-13)
        expectClose(out["ds"]!.scalars, try finiteDifferenceGradient(graph, output: "f", wrt: "s", at: inputs), tolerance: 1e-7)
    }

    @Test func directionalDerivativeIsTheLimitOfDifferenceQuotients() throws {
        // (f(x + h v) - f(x)) / h -> (df/dx) v, and the gradient is the steepest ascent direction.
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3]), v = try g.input("v", shape: [3])
        let f = try sum(sin(x) * x) + x[0] * x[2]
        let graph = try g.graph(outputs: ["f": f, "dv": jvp(of: f, wrt: x, tangent: v), "grad": gradient(of: f, wrt: x)])
        var rng = SeededRandom(seed: 34)
        let point = TensorData.random([3], using: &rng), direction = TensorData.random([3], using: &rng)
        let out = try Interpreter.evaluate(graph, inputs: ["x": point, "v": direction])
        var previous = Double.infinity
        for h in [1e-1, 1e-2, 1e-3, 1e-4] {
            let moved = try TensorData(shape: [3], scalars: zip(point.scalars, direction.scalars).map { $0 + h * $1 })
            let fh = try Interpreter.evaluate(graph, inputs: ["x": moved, "v": direction])["f"]!.scalar
            let error = Swift.abs((fh - out["f"]!.scalar) / h - out["dv"]!.scalar)
            #expect(error < previous, "the one-sided quotient converges as h shrinks")
            previous = error
        }
        #expect(previous < 1e-3)
        // No unit direction increases f faster than the normalised gradient.
        let grad = out["grad"]!.scalars
        let norm = sqrt(grad.reduce(0) { $0 + $1 * $1 })
        for _ in 0..<20 {
            let u = TensorData.random([3], using: &rng).scalars
            let length = sqrt(u.reduce(0) { $0 + $1 * $1 })
            let slope = zip(grad, u).reduce(0.0) { $0 + $1.0 * $1.1 } / length
            #expect(slope <= norm + 1e-12)
        }
    }
}
