import Foundation
import Testing
@testable import Nabla

/// A random symmetric positive definite n x n matrix, B B^T + n I.
private func spd(_ n: Int, seed: UInt64) -> [Double] {
    var rng = SeededRandom(seed: seed)
    let b = TensorData.random([n, n], in: -1...1, using: &rng).scalars
    var a = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0..<n {
            var s = 0.0
            for k in 0..<n { s += b[i * n + k] * b[j * n + k] }
            a[i * n + j] = s + (i == j ? Double(n) : 0)
        }
    }
    return a
}

/// Plain row-major matrix product of r x k and k x c.
private func product(_ a: [Double], _ b: [Double], _ r: Int, _ k: Int, _ c: Int) -> [Double] {
    var y = [Double](repeating: 0, count: r * c)
    for i in 0..<r { for j in 0..<c { for q in 0..<k { y[i * c + j] += a[i * k + q] * b[q * c + j] } } }
    return y
}

private func transposed(_ a: [Double], _ r: Int, _ c: Int) -> [Double] {
    var y = [Double](repeating: 0, count: r * c)
    for i in 0..<r { for j in 0..<c { y[j * r + i] = a[i * c + j] } }
    return y
}

@Suite("Cholesky factors and triangular solves")
struct CholeskyTests {
    /// L L^T = A, L is lower triangular, the upper triangle of A is not read, and the kernel
    /// agrees with the interpreter bit for bit.
    @Test func theFactorReproducesTheMatrixFromItsLowerTriangle() throws {
        let n = 7
        let a = spd(n, seed: 1)
        var garbled = a
        for i in 0..<n { for j in (i + 1)..<n { garbled[i * n + j] = 1e6 * Double(i + j) } }
        let out = try evaluateBoth("dim n = 7\ninput A: [n, n]\ninput G: [n, n]\noutput L = cholesky(A)\noutput M = cholesky(G)\n",
                                   ["A": try TensorData(shape: [n, n], scalars: a), "G": try TensorData(shape: [n, n], scalars: garbled)])
        let l = out["L"]!.scalars
        #expect(l == out["M"]!.scalars)
        for i in 0..<n { for j in (i + 1)..<n { #expect(l[i * n + j] == 0) } }
        expectClose(product(l, transposed(l, n, n), n, n, n), a, tolerance: 1e-13, "L L^T")
        // Not positive definite: NaN, not a crash or a wrong number.
        let bad = try evaluateBoth("input A: [2, 2]\noutput L = cholesky(A)\n", ["A": try TensorData(shape: [2, 2], scalars: [1, 2, 2, 1])])
        #expect(bad["L"]!.scalars[3].isNaN)
    }

    /// Each of the four solves (lower or upper triangle, with or without transposing), with one
    /// and with several right-hand sides: op(T) X = B to rounding, from T's triangle alone.
    @Test(arguments: [(true, false), (true, true), (false, false), (false, true)])
    func triangularSolvesSolve(_ lower: Bool, _ transpose: Bool) throws {
        let n = 6, m = 3
        var rng = SeededRandom(seed: 2)
        var t = TensorData.random([n, n], in: -1...1, using: &rng).scalars
        for i in 0..<n { t[i * n + i] = 3 + Double(i) }
        let b = TensorData.random([n, m], in: -1...1, using: &rng).scalars
        let flags = (lower ? "lower" : "upper") + (transpose ? ", transpose" : "")
        let out = try evaluateBoth("""
            input T: [6, 6]
            input B: [6, 3]
            output X = solve_triangular(T, B, \(flags))
            output x = solve_triangular(T, B[:, 0], \(flags))
            """, ["T": try TensorData(shape: [n, n], scalars: t), "B": try TensorData(shape: [n, m], scalars: b)])
        // The triangle that is read, as a full matrix, then op of it.
        var tri = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n where i == j || (j < i) == lower { tri[i * n + j] = t[i * n + j] } }
        let op = transpose ? transposed(tri, n, n) : tri
        expectClose(product(op, out["X"]!.scalars, n, n, m), b, tolerance: 1e-13, "op(T) X")
        expectClose(product(op, out["x"]!.scalars, n, n, 1), (0..<n).map { b[$0 * m] }, tolerance: 1e-13, "op(T) x")
    }

    /// Gradients, Hessians and JVPs through all three operations, against central differences.
    @Test func derivativesMatchFiniteDifferences() throws {
        let n = 4
        var rng = SeededRandom(seed: 3)
        let point: [String: TensorData] = [
            "A": try TensorData(shape: [n, n], scalars: spd(n, seed: 4)),
            "W": TensorData.random([n, n], in: -1...1, using: &rng),
            "T": TensorData.random([n, n], in: 0.5...1.5, using: &rng),
            "B": TensorData.random([n, 2], in: -1...1, using: &rng),
            "v": TensorData.random([n], in: -1...1, using: &rng),
            "s": TensorData(0.3),
        ]
        try checkFile("""
            input A: [4, 4]
            input W: [4, 4]
            input T: [4, 4]
            input B: [4, 2]
            input v: [4]
            input s
            output f = sum(W * cholesky(A))
            output g = sum(sin(solve_triangular(T, B, upper, transpose))) + sum(solve_triangular(T, v) * v)
            M = A + s * W @ W'
            output h = cho_logdet(cholesky(M)) + dot(v, cho_solve(cholesky(M), v))
            grad f wrt A
            grad g wrt T, B, v
            hessian h wrt s
            hessian g wrt v
            jvp h wrt A along W
            """, point, tolerance: 1e-5)
    }

    /// The closed form of the notes, d log|A| / dA = A^-T, read on the lower triangle the
    /// factor uses: 2 (A^-1)_ij below the diagonal, (A^-1)_ii on it, 0 above.
    @Test func theGradientOfTheLogDeterminantIsTheInverse() throws {
        let n = 5
        let a = try TensorData(shape: [n, n], scalars: spd(n, seed: 6))
        let out = try evaluateBoth("input A: [5, 5]\noutput f = cho_logdet(cholesky(A))\noutput Ai = inv(A)\noutput g = logdet(A)\ngrad f wrt A\n", ["A": a])
        expectClose(out["f"]!.scalar, out["g"]!.scalar, tolerance: 1e-13)
        let inverse = out["Ai"]!.scalars, gradient = out["df/dA"]!.scalars
        for i in 0..<n {
            for j in 0..<n {
                let expected = j < i ? 2 * inverse[i * n + j] : (i == j ? inverse[i * n + i] : 0)
                expectClose(gradient[i * n + j], expected, tolerance: 1e-12, "(\(i), \(j))")
            }
        }
    }

    /// The Gaussian-process likelihood written with a Cholesky factor gives the LU form's value,
    /// gradient and Hessian with respect to its hyperparameters.
    @Test func theCholeskyLikelihoodAgreesWithTheLUOne() throws {
        func source(_ body: String) -> String {
            """
            dim n = 12
            input X: [n, 2]
            input y: [n]
            input p: [3]
            sq = sum(X^2, 1)
            d2 = reshape(sq, [n, 1]) + reshape(sq, [1, n]) - 2 * X @ X'
            C = exp(p[0]) * exp(-0.5 * d2 / exp(2 * p[1])) + exp(p[2]) * eye(n)
            \(body)
            grad nlml wrt p
            hessian nlml wrt p
            """
        }
        var rng = SeededRandom(seed: 7)
        let point = ["X": TensorData.random([12, 2], in: -1...1, using: &rng), "y": TensorData.random([12], in: -1...1, using: &rng),
                     "p": try TensorData(shape: [3], scalars: [0.2, -0.3, -1])]
        let lu = try evaluateBoth(source("output nlml = 0.5 * dot(y, solve(C, y)) + 0.5 * logdet(C)"), point)
        let chol = try checkFile(source("L = cholesky(C)\noutput nlml = 0.5 * dot(y, cho_solve(L, y)) + 0.5 * cho_logdet(L)"), point, tolerance: 1e-5)
        for name in ["nlml", "dnlml/dp", "d2nlml/dp2"] {
            expectClose(chol[name]!.scalars, lu[name]!.scalars, tolerance: 1e-10, name)
        }
    }

    /// The pullback `cholesky_adjoint` (Murray's reverse loops; blocked by 16 columns and
    /// tiled by 4 rows in the runtime) against the formula it stands for, Phi(S + S^T) with
    /// S = L^-T Phi(L^T B) L^-1, at sizes around the block and tile edges; the kernel and its
    /// standalone C give the interpreter's bits, and the upper triangles are not read.
    @Test(arguments: [0, 1, 2, 3, 5, 8, 15, 16, 17, 19, 20, 31, 32, 33, 47, 50, 67])
    func theAdjointIsTheFormulaAtEverySize(_ n: Int) throws {
        let l = Triangular.cholesky(n, spd(n, seed: UInt64(10 + n)))
        var rng = SeededRandom(seed: UInt64(n))
        let b = TensorData.random([n, n], in: -1...1, using: &rng).scalars
        var garbled = l
        for i in 0..<n { for j in (i + 1)..<n { garbled[i * n + j] = .nan } }
        let g = GraphBuilder()
        let lt = try g.input("L", shape: [n, n]), bt = try g.input("B", shape: [n, n]), gt = try g.input("G", shape: [n, n])
        let p = try triangle(lt.transposed.matmul(bt), lower: true, diagonal: 0.5)
        let z = try solveTriangular(lt, p, lower: true, transpose: true)
        let st = try solveTriangular(lt, z.transposed, lower: true, transpose: true)
        let formula = try triangle(st + st.transposed, lower: true, diagonal: 0.5)
        let graph = try g.graph(outputs: ["F": try choleskyAdjoint(lt, bt), "Fg": try choleskyAdjoint(gt, try triangle(bt, lower: true)), "formula": formula])
        let inputs = ["L": try TensorData(shape: [n, n], scalars: l), "B": try TensorData(shape: [n, n], scalars: b),
                      "G": try TensorData(shape: [n, n], scalars: garbled)]
        let reference = try Interpreter.evaluate(graph, inputs: inputs)
        let compiled = try Kernel(graph)(inputs)
        let standalone = try Kernel(source: emitC(graph, options: .standalone), inputNames: graph.inputs.map(\.name), outputNames: graph.outputs.map(\.name))(inputs)
        let f = reference["F"]!.scalars
        let kernelAgrees = sameBits(compiled["F"]!.scalars, f), standaloneAgrees = sameBits(standalone["F"]!.scalars, f)
        let upperIgnored = sameBits(compiled["Fg"]!.scalars, f) && sameBits(reference["Fg"]!.scalars, f)
        #expect(kernelAgrees, "kernel: \(firstDifference(compiled["F"]!.scalars, f))")
        #expect(standaloneAgrees, "standalone: \(firstDifference(standalone["F"]!.scalars, f))")
        #expect(upperIgnored, "an upper triangle was read")
        let scale = max(1, f.map(Swift.abs).max() ?? 0)
        expectClose(f.map { $0 / scale }, reference["formula"]!.scalars.map { $0 / scale }, tolerance: 1e-12, "n = \(n)")
        for i in 0..<n { for j in (i + 1)..<n { #expect(f[i * n + j] == 0) } }
    }

    /// The adjoint's own rules (used by Hessians through a factor): its tangent and its
    /// gradient with respect to both operands against central differences.
    @Test func theAdjointsDerivativesMatchFiniteDifferences() throws {
        let n = 5
        let l = Triangular.cholesky(n, spd(n, seed: 21))
        var rng = SeededRandom(seed: 22)
        let point: [String: TensorData] = [
            "x0": try TensorData(shape: [n, n], scalars: l), "x1": TensorData.random([n, n], in: -1...1, using: &rng),
            "t0": TensorData.random([n, n], in: -1...1, using: &rng), "t1": TensorData.random([n, n], in: -1...1, using: &rng),
        ]
        try expectTangentMatchesFiniteDifferences(shapes: [[n, n], [n, n]], point: point, what: "cholesky_adjoint") {
            try choleskyAdjoint($0[0], $0[1])
        }
        let g = GraphBuilder()
        let lt = try g.input("L", shape: [n, n]), bt = try g.input("B", shape: [n, n]), wt = try g.input("W", shape: [n, n])
        let f = try sum(wt * choleskyAdjoint(lt, bt))
        let gradients = try gradient(of: f, wrt: [lt, bt])
        let graph = try g.graph(outputs: ["f": f, "dL": gradients[0], "dB": gradients[1]])
        let inputs = ["L": point["x0"]!, "B": point["x1"]!, "W": point["t0"]!]
        let values = try expectKernelMatchesInterpreter(graph, inputs)
        for (name, variable) in [("dL", "L"), ("dB", "B")] {
            let numeric = try finiteDifferenceGradient(graph, output: "f", wrt: variable, at: inputs)
            expectClose(values[name]!.scalars, numeric, tolerance: 1e-6, "d f / d \(variable)")
        }
    }

    @Test func badInputIsALocatedError() {
        #expect(diagnostics("input A: [2, 3]\noutput L = cholesky(A)\n").contains("test.nabla:2:12: error: cannot apply 'cholesky' to shape [2, 3]"))
        #expect(diagnostics("input A: [3, 3]\ninput b: [2]\noutput x = solve_triangular(A, b)\n").contains("test.nabla:3:12: error: cannot solve with shapes [3, 3] and [2]"))
        #expect(diagnostics("input A: [3, 3]\ninput b: [3]\noutput x = solve_triangular(A, b, sideways)\n").contains("test.nabla:3:35: error: expected 'lower', 'upper' or 'transpose'"))
        #expect(diagnostics("input A: [3, 3]\ninput b: [3]\noutput x = solve_triangular(A, b, lower, upper)\n").contains("test.nabla:3:42: error: give one of 'lower' and 'upper'"))
        #expect(diagnostics("input A: [3, 3]\noutput x = cho_logdet(A, A)\n").contains("error: 'cho_logdet' takes 1 argument, got 2"))
    }
}
