import Foundation
import Testing
@testable import Nabla

// det, logdet, inv, solve, logsumexp, softmax and logSoftmax: every rule against finite
// differences, kernels against the interpreter, and the closed forms of matrix calculus.

/// How an operand of a test case is drawn.
enum MatrixDraw: Sendable {
    /// Uniform elements.
    case uniform(ClosedRange<Double>)
    /// `sign * (R + n I)`, R uniform in [-1, 1]: well conditioned, det of the sign of sign^n.
    case wellConditioned(sign: Double)
    /// A well-conditioned matrix with its rows rotated by one, so elimination must pivot.
    case permuted

    func draw(_ shape: Shape, using rng: inout SeededRandom) -> TensorData {
        switch self {
        case let .uniform(range):
            return TensorData.random(shape, in: range, using: &rng)
        case let .wellConditioned(sign):
            return wellConditionedMatrix(shape[0], sign: sign, using: &rng)
        case .permuted:
            let n = shape[0]
            let a = wellConditionedMatrix(n, using: &rng).scalars
            return TensorData(unchecked: shape, (0..<n).flatMap { i in a[((i + 1) % n) * n..<((i + 1) % n) * n + n] })
        }
    }
}

/// `sign * (R + n I)` with R uniform in [-1, 1].
func wellConditionedMatrix(_ n: Int, sign: Double = 1, using rng: inout SeededRandom) -> TensorData {
    var a = TensorData.random([n, n], in: -1...1, using: &rng)
    for i in 0..<n { a.scalars[i * n + i] += Double(n) }
    a.scalars = a.scalars.map { sign * $0 }
    return a
}

/// One case: operand shapes, how each is drawn, and the expression.
struct MatrixCase: CustomTestStringConvertible, Sendable {
    let name: String
    let shapes: [Shape]
    let draws: [MatrixDraw]
    let build: @Sendable ([Tensor]) throws -> Tensor
    var testDescription: String { "\(name) \(shapes.map(\.description).joined(separator: " "))" }

    init(_ name: String, _ operands: [(Shape, MatrixDraw)], _ build: @escaping @Sendable ([Tensor]) throws -> Tensor) {
        self.name = name
        shapes = operands.map(\.0)
        draws = operands.map(\.1)
        self.build = build
    }

    func inputs(using rng: inout SeededRandom) -> [String: TensorData] {
        var result: [String: TensorData] = [:]
        for (i, (shape, draw)) in zip(shapes, draws).enumerated() { result["x\(i)"] = draw.draw(shape, using: &rng) }
        return result
    }

    var opCase: OpCase { OpCase(name, shapes, build) }
}

private let well = MatrixDraw.wellConditioned(sign: 1)
private let negated = MatrixDraw.wellConditioned(sign: -1)
private let uniform1 = MatrixDraw.uniform(-1...1)

let matrixCases: [MatrixCase] = [
    MatrixCase("det", [([1, 1], well)]) { try det($0[0]) },
    MatrixCase("det", [([3, 3], well)]) { try det($0[0]) },
    MatrixCase("det negative", [([3, 3], negated)]) { try det($0[0]) },
    MatrixCase("det pivoting", [([4, 4], .permuted)]) { try det($0[0]) },
    MatrixCase("adjugate", [([3, 3], well)]) { try adjugate($0[0]) },
    MatrixCase("adjugate pivoting", [([4, 4], .permuted)]) { try adjugate($0[0]) },
    MatrixCase("adjugate 1 x 1", [([1, 1], well)]) { try adjugate($0[0]) },
    MatrixCase("logdet", [([1, 1], well)]) { try logdet($0[0]) },
    MatrixCase("logdet", [([4, 4], well)]) { try logdet($0[0]) },
    MatrixCase("logdet negative det", [([5, 5], negated)]) { try logdet($0[0]) },
    MatrixCase("logdet pivoting", [([4, 4], .permuted)]) { try logdet($0[0]) },
    MatrixCase("inv", [([1, 1], well)]) { try inv($0[0]) },
    MatrixCase("inv", [([3, 3], well)]) { try inv($0[0]) },
    MatrixCase("inv pivoting", [([4, 4], .permuted)]) { try inv($0[0]) },
    MatrixCase("solve vector", [([4, 4], well), ([4], uniform1)]) { try solve($0[0], $0[1]) },
    MatrixCase("solve matrix", [([3, 3], well), ([3, 2], uniform1)]) { try solve($0[0], $0[1]) },
    MatrixCase("solve pivoting", [([5, 5], .permuted), ([5, 3], uniform1)]) { try solve($0[0], $0[1]) },
    MatrixCase("solve 1x1", [([1, 1], well), ([1], uniform1)]) { try solve($0[0], $0[1]) },
    MatrixCase("logsumexp all", [([2, 3], .uniform(-3...3))]) { logsumexp($0[0]) },
    MatrixCase("logsumexp scalar", [([], uniform1)]) { logsumexp($0[0]) },
    MatrixCase("logsumexp axis 0", [([2, 3], .uniform(-3...3))]) { try logsumexp($0[0], axes: [0]) },
    MatrixCase("logsumexp axis -1", [([3, 4], .uniform(-3...3))]) { try logsumexp($0[0], axis: -1) },
    MatrixCase("logsumexp axes 0 2", [([2, 3, 4], .uniform(-3...3))]) { try logsumexp($0[0], axes: [0, 2]) },
    MatrixCase("logsumexp unit axes", [([1, 3, 1], .uniform(-3...3))]) { try logsumexp($0[0], axes: [0, 2]) },
    MatrixCase("softmax axis 1", [([3, 4], .uniform(-3...3))]) { try softmax($0[0], axis: 1) },
    MatrixCase("softmax axis 0", [([3, 4], .uniform(-3...3))]) { try softmax($0[0], axis: 0) },
    MatrixCase("logSoftmax axis -1", [([2, 3, 4], .uniform(-3...3))]) { try logSoftmax($0[0], axis: -1) },
    MatrixCase("logSoftmax vector", [([5], .uniform(-3...3))]) { try logSoftmax($0[0], axis: 0) },
    MatrixCase("softmax axes 0 2", [([2, 3, 4], .uniform(-3...3))]) { try $0[0].builder.apply(Softmax(axes: [0, 2]), [$0[0]]) },
    MatrixCase("logSoftmax axes 0 1", [([2, 3, 2], .uniform(-3...3))]) { try $0[0].builder.apply(LogSoftmax(axes: [0, 1]), [$0[0]]) },
    MatrixCase("softmax times its input", [([3, 4], .uniform(-3...3))]) { try softmax($0[0], axis: 1) * $0[0] },
    MatrixCase("quadratic form b^T A^-1 b", [([4, 4], well), ([4], uniform1)]) { try $0[1].matmul(solve($0[0], $0[1])) },
    MatrixCase("logdet of A A^T", [([3, 3], well)]) { try logdet($0[0].matmul($0[0].transposed)) },
    MatrixCase("inv then det", [([3, 3], well)]) { try det(inv($0[0])) * logdet($0[0] * 2) },
    MatrixCase("logsumexp of a solve", [([3, 3], well), ([3, 4], uniform1)]) { try logsumexp(solve($0[0], $0[1]), axis: 0) },
]

/// A^-1 by Gauss-Jordan elimination with partial pivoting, written independently of Nabla.
func referenceInverse(_ a: TensorData) -> [Double] {
    let n = a.shape[0]
    var m = (0..<n).map { i in (0..<n).map { a[i, $0] } + (0..<n).map { $0 == i ? 1.0 : 0.0 } }
    for c in 0..<n {
        let p = (c..<n).max { Swift.abs(m[$0][c]) < Swift.abs(m[$1][c]) }!
        m.swapAt(c, p)
        let pivot = m[c][c]
        m[c] = m[c].map { $0 / pivot }
        for r in 0..<n where r != c {
            let f = m[r][c]
            m[r] = zip(m[r], m[c]).map { $0 - f * $1 }
        }
    }
    return m.flatMap { $0[n...] }
}

/// The transpose of a row-major n x n matrix.
func transposeSquare(_ a: [Double], _ n: Int) -> [Double] {
    (0..<n).flatMap { i in (0..<n).map { j in a[j * n + i] } }
}

/// det by the Leibniz formula (small n only), independent of Nabla.
func referenceDeterminant(_ a: TensorData) -> Double {
    let n = a.shape[0]
    func permutations(_ items: [Int]) -> [([Int], Double)] {
        if items.count <= 1 { return [(items, 1)] }
        var result: [([Int], Double)] = []
        for (k, item) in items.enumerated() {
            var rest = items
            rest.remove(at: k)
            for (p, sign) in permutations(rest) { result.append(([item] + p, k % 2 == 0 ? sign : -sign)) }
        }
        return result
    }
    return permutations(Array(0..<n)).reduce(0.0) { total, entry in
        total + entry.1 * (0..<n).reduce(1.0) { $0 * a[$1, entry.0[$1]] }
    }
}

/// adj(A) by cofactors of the Leibniz determinant (small n only), independent of Nabla.
func referenceAdjugate(_ a: TensorData) -> [Double] {
    let n = a.shape[0]
    var adj = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0..<n {
            // Cofactor C_ji: the minor without row j and column i, signed.
            let rows = (0..<n).filter { $0 != j }, columns = (0..<n).filter { $0 != i }
            let minor = try! TensorData(shape: [n - 1, n - 1], scalars: rows.flatMap { r in columns.map { a[r, $0] } })
            adj[i * n + j] = ((i + j) % 2 == 0 ? 1 : -1) * (n == 1 ? 1 : referenceDeterminant(minor))
        }
    }
    return adj
}

@Suite("The gradient of det where det is 0")
struct SingularDeterminantTests {
    /// d det / dA = adj(A)^T stays finite at singular matrices (it was NaN: det A A^-T).
    @Test func gradientsAtSingularMatrices() throws {
        let cases: [[Double]] = [
            [1, 2, 2, 4], [0, 0, 0, 0], [1e300, 0, 0, 1e300], [0, 1, 0, 0],
            [1, 2, 3, 2, 4, 6, 1, 0, 1], [1, 2, 3, 2, 4, 6, 3, 6, 9], [0, 0, 0, 0, 0, 0, 0, 0, 0], [2, 0, 0, 0, 0, 0, 0, 0, 5],
        ]
        for values in cases {
            let n = values.count == 4 ? 2 : 3
            let g = GraphBuilder()
            let A = try g.input("A", shape: [n, n])
            let graph = try g.graph(outputs: ["det": det(A), "ddet": gradient(of: det(A), wrt: A), "adj": adjugate(A)])
            let a = try TensorData(shape: [n, n], scalars: values)
            let out = try expectKernelMatchesInterpreter(graph, ["A": a])
            let expected = transposeSquare(referenceAdjugate(a), n)
            let finite = out["ddet"]!.scalars.allSatisfy { $0.isFinite }
            #expect(finite, "\(values)")
            expectClose(out["ddet"]!.scalars, expected, tolerance: 1e-14, "gradient of det at \(values)")
            expectClose(out["adj"]!.scalars, referenceAdjugate(a), tolerance: 1e-14, "adj at \(values)")
        }
    }

    /// The example of the issue: [[1, 2], [2, 4]] has the adjugate [[4, -2], [-2, 1]].
    @Test func theAdjugateOfARankOneMatrix() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [2, 2])
        let graph = try g.graph(outputs: ["ddet": gradient(of: det(A), wrt: A)])
        let out = try Kernel(graph)(["A": TensorData(shape: [2, 2], scalars: [1, 2, 2, 4])])
        #expect(out["ddet"]!.scalars == [4, -2, -2, 1])
    }

    /// Random matrices of rank n - 1 and n - 2 against cofactors, and the kernel's bits against
    /// the interpreter's.
    @Test(arguments: [3, 4, 5])
    func rankDeficientMatrices(n: Int) throws {
        var rng = SeededRandom(seed: UInt64(n))
        for deficiency in [1, 2] {
            // A = B C with B n x r, C r x n: rank r = n - deficiency.
            let r = n - deficiency
            let b = TensorData.random([n, r], in: -1...1, using: &rng), c = TensorData.random([r, n], in: -1...1, using: &rng)
            var product = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { for k in 0..<r { product[i * n + j] += b[i, k] * c[k, j] } } }
            let a = try TensorData(shape: [n, n], scalars: product)
            let g = GraphBuilder()
            let A = try g.input("A", shape: [n, n])
            let graph = try g.graph(outputs: ["adj": adjugate(A)])
            let reference = try Interpreter.evaluate(graph, inputs: ["A": a])["adj"]!.scalars
            let compiled = try Kernel(graph)(["A": a])["adj"]!.scalars
            #expect(sameBits(compiled, reference), "n \(n), rank \(r): \(firstDifference(compiled, reference))")
            let finite = reference.allSatisfy { $0.isFinite }
            #expect(finite)
            // Rank n - 2: every cofactor vanishes (up to rounding).
            let scale = max(1, referenceAdjugate(a).map(Swift.abs).max()!)
            for (x, y) in zip(reference, referenceAdjugate(a)) { #expect(Swift.abs(x - y) <= 1e-12 * scale, "n \(n), rank \(r)") }
        }
    }
}

@Suite("Matrix calculus: every operation against finite differences and the interpreter")
struct MatrixCalculusOperationTests {
    @Test(arguments: matrixCases)
    func gradientMatchesFiniteDifferences(_ c: MatrixCase) throws {
        var rng = SeededRandom(seed: 42)
        let graph = try OperationTests.graph(for: c.opCase, rng: &rng)
        let inputs = c.inputs(using: &rng)
        let values = try Interpreter.evaluate(graph, inputs: inputs)
        for i in c.shapes.indices {
            let numeric = try finiteDifferenceGradient(graph, output: "L", wrt: "x\(i)", at: inputs)
            expectClose(values["dL/dx\(i)"]!.scalars, numeric, tolerance: 1e-6, "d/dx\(i) of \(c.testDescription)")
        }
    }

    @Test(arguments: matrixCases)
    func kernelMatchesInterpreter(_ c: MatrixCase) throws {
        var rng = SeededRandom(seed: 7)
        let graph = try OperationTests.graph(for: c.opCase, rng: &rng)
        try expectKernelMatchesInterpreter(graph, c.inputs(using: &rng))
    }

    /// Forward mode: the tangent along random directions equals the central difference.
    @Test(arguments: matrixCases)
    func tangentMatchesFiniteDifferences(_ c: MatrixCase) throws {
        var rng = SeededRandom(seed: 99)
        var point = c.inputs(using: &rng)
        for (i, shape) in c.shapes.enumerated() { point["t\(i)"] = TensorData.random(shape, in: -1...1, using: &rng) }
        try expectTangentMatchesFiniteDifferences(shapes: c.shapes, point: point, what: c.testDescription, c.build)
    }

    /// The interpreter's values against independent reference computations.
    @Test func valuesMatchReferences() throws {
        var rng = SeededRandom(seed: 5)
        let g = GraphBuilder()
        let A = try g.input("A", shape: [4, 4]), b = try g.input("b", shape: [4, 2])
        let graph = try g.graph(outputs: ["det": det(A), "logdet": logdet(A), "inv": inv(A), "solve": solve(A, b)])
        for draw in [well, negated, MatrixDraw.permuted] {
            let a = draw.draw([4, 4], using: &rng), bv = TensorData.random([4, 2], using: &rng)
            let out = try expectKernelMatchesInterpreter(graph, ["A": a, "b": bv])
            let d = referenceDeterminant(a), inverse = referenceInverse(a)
            expectClose(out["det"]!.scalar, d, tolerance: 1e-13)
            expectClose(out["logdet"]!.scalar, Foundation.log(Swift.abs(d)), tolerance: 1e-13)
            expectClose(out["inv"]!.scalars, inverse, tolerance: 1e-13)
            let x = (0..<4).flatMap { i in (0..<2).map { j in (0..<4).reduce(0.0) { $0 + inverse[i * 4 + $1] * bv[$1, j] } } }
            expectClose(out["solve"]!.scalars, x, tolerance: 1e-13)
        }
        // A permutation matrix: exact values, sign from the swaps.
        let swap = try TensorData(shape: [4, 4], scalars: [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0])
        let out = try expectKernelMatchesInterpreter(graph, ["A": swap, "b": TensorData.random([4, 2], using: &rng)])
        #expect(out["det"]!.scalar == 1)
        #expect(out["logdet"]!.scalar == 0)
        #expect(out["inv"]!.scalars == swap.scalars)
        let cycle = try TensorData(shape: [3, 3], scalars: [0, 1, 0, 0, 0, 1, 1, 0, 0])
        let g3 = GraphBuilder()
        let C = try g3.input("C", shape: [3, 3])
        #expect(try Kernel(g3.graph(outputs: ["d": det(C)]))(["C": cycle])["d"]!.scalar == 1)
        let odd = try TensorData(shape: [3, 3], scalars: [0, 1, 0, 1, 0, 0, 0, 0, 1])
        #expect(try Kernel(g3.graph(outputs: ["d": det(C)]))(["C": odd])["d"]!.scalar == -1)
    }

    /// The kernel does the interpreter's arithmetic in the interpreter's order: results agree
    /// to the last bit, not merely to 1e-12.
    @Test func kernelIsBitIdenticalToInterpreter() throws {
        var rng = SeededRandom(seed: 8)
        let g = GraphBuilder()
        let A = try g.input("A", shape: [6, 6]), B = try g.input("B", shape: [6, 3]), x = try g.input("x", shape: [4, 6])
        let graph = try g.graph(outputs: [
            "det": det(A), "logdet": logdet(A), "inv": inv(A), "solve": solve(A, B), "solve vector": solve(A, B[.all, 0]),
            "lse": logsumexp(x), "lse rows": logsumexp(x, axis: 1), "lse columns": logsumexp(x, axis: 0),
            "softmax": softmax(x, axis: 1), "logSoftmax": logSoftmax(x, axis: 0),
        ])
        let kernel = try Kernel(graph)
        let standalone = try Kernel(source: emitC(graph), inputNames: graph.inputs.map(\.name), outputNames: graph.outputs.map(\.name))
        for draw in [well, negated, MatrixDraw.permuted, MatrixDraw.uniform(-1...1)] {
            let inputs = ["A": draw.draw([6, 6], using: &rng), "B": TensorData.random([6, 3], using: &rng), "x": TensorData.random([4, 6], in: -5...5, using: &rng)]
            let reference = try Interpreter.evaluate(graph, inputs: inputs)
            for compiled in [try kernel(inputs), try standalone(inputs)] {
                for port in graph.outputs {
                    #expect(compiled[port.name]!.scalars.map(\.bitPattern) == reference[port.name]!.scalars.map(\.bitPattern), "\(port.name)")
                }
            }
        }
    }

    @Test func shapeErrors() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [2, 3]), S = try g.input("S", shape: [3, 3])
        let v = try g.input("v", shape: [2]), t = try g.input("t", shape: [3, 3, 3])
        #expect(throws: NablaError.shapeMismatch(op: "lu", shapes: [[2, 3]], reason: "needs a square matrix")) { try det(A) }
        #expect(throws: NablaError.self) { try logdet(v) }
        #expect(throws: NablaError.self) { try inv(t) }
        #expect(throws: NablaError.self) { try solve(A, v) }
        #expect(throws: NablaError.self) { try solve(S, v) }
        #expect(throws: NablaError.self) { try solve(S, t) }
        #expect(throws: NablaError.self) { try logsumexp(S, axes: [2]) }
        #expect(throws: NablaError.self) { try logsumexp(S, axes: [1, -1]) }
        #expect(throws: NablaError.self) { try softmax(S, axis: 2) }
        #expect(throws: NablaError.self) { try logSoftmax(v, axis: -2) }
    }

    /// 0 x 0 matrices: det 1, logdet 0, an empty inverse and solution.
    @Test func emptyMatrices() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [0, 0]), b = try g.input("b", shape: [0])
        let graph = try g.graph(outputs: ["det": det(A), "logdet": logdet(A), "inv": inv(A), "solve": solve(A, b)])
        let empty = try TensorData(shape: [0, 0], scalars: [])
        let out = try expectKernelMatchesInterpreter(graph, ["A": empty, "b": try TensorData(shape: [0], scalars: [])])
        #expect(out["det"]!.scalar == 1)
        #expect(out["logdet"]!.scalar == 0)
        #expect(out["inv"]!.shape == [0, 0])
    }
}

@Suite("Matrix calculus: closed forms")
struct MatrixCalculusClosedFormTests {
    /// d log|X| / dX = (X^-1)^T, for positive and negative determinants.
    @Test(arguments: [1.0, -1.0])
    func logdetGradientIsInverseTranspose(sign: Double) throws {
        var rng = SeededRandom(seed: 11)
        let g = GraphBuilder()
        let X = try g.input("X", shape: [4, 4])
        let graph = try g.graph(outputs: ["dX": gradient(of: logdet(X), wrt: X)])
        let x = wellConditionedMatrix(4, sign: sign, using: &rng)
        let out = try expectKernelMatchesInterpreter(graph, ["X": x])
        expectClose(out["dX"]!.scalars, transposeSquare(referenceInverse(x), 4), tolerance: 1e-12)
    }

    /// d|X| / dX = |X| (X^-1)^T.
    @Test func detGradientIsDetTimesInverseTranspose() throws {
        var rng = SeededRandom(seed: 12)
        let g = GraphBuilder()
        let X = try g.input("X", shape: [4, 4])
        let graph = try g.graph(outputs: ["dX": gradient(of: det(X), wrt: X)])
        let x = wellConditionedMatrix(4, sign: -1, using: &rng)
        let out = try expectKernelMatchesInterpreter(graph, ["X": x])
        let d = referenceDeterminant(x)
        expectClose(out["dX"]!.scalars, transposeSquare(referenceInverse(x), 4).map { d * $0 }, tolerance: 1e-12)
    }

    /// |I + eps M| = 1 + eps tr M + O(eps^2): the tangent of det at I along M is tr M.
    @Test func detTangentAtIdentityIsTrace() throws {
        var rng = SeededRandom(seed: 13)
        let n = 5
        let g = GraphBuilder()
        let X = try g.input("X", shape: [n, n]), M = try g.input("M", shape: [n, n])
        let d = try det(X)
        let graph = try g.graph(outputs: ["det": d, "tangent": jvp(of: d, wrt: X, tangent: M)])
        let m = TensorData.random([n, n], using: &rng)
        let trace = (0..<n).reduce(0.0) { $0 + m[$1, $1] }
        let identity = TensorData(unchecked: [n, n], (0..<n * n).map { $0 % (n + 1) == 0 ? 1 : 0 })
        let out = try expectKernelMatchesInterpreter(graph, ["X": identity, "M": m])
        #expect(out["det"]!.scalar == 1)
        expectClose(out["tangent"]!.scalar, trace, tolerance: 1e-14)
        // And the expansion itself: (|I + eps M| - 1) / eps -> tr M, error O(eps).
        let eps = 1e-7
        let perturbed = TensorData(unchecked: [n, n], zip(identity.scalars, m.scalars).map { $0 + eps * $1 })
        let value = try Interpreter.evaluate(graph, inputs: ["X": perturbed, "M": m])["det"]!.scalar
        expectClose((value - 1) / eps, trace, tolerance: 1e-5)
    }

    /// d(a^T X^-1 b) / dX = -(X^-1)^T a b^T (X^-1)^T, through inv and through solve.
    @Test func bilinearFormOfInverse() throws {
        var rng = SeededRandom(seed: 14)
        let n = 4
        let g = GraphBuilder()
        let X = try g.input("X", shape: [n, n]), a = try g.input("a", shape: [n]), b = try g.input("b", shape: [n])
        let viaInverse = try a.matmul(inv(X)).matmul(b)
        let viaSolve = try a.matmul(solve(X, b))
        let graph = try g.graph(outputs: [
            "f": viaInverse, "f2": viaSolve,
            "dX": gradient(of: viaInverse, wrt: X), "dX2": gradient(of: viaSolve, wrt: X),
        ])
        let x = wellConditionedMatrix(n, using: &rng)
        let av = TensorData.random([n], using: &rng), bv = TensorData.random([n], using: &rng)
        let out = try expectKernelMatchesInterpreter(graph, ["X": x, "a": av, "b": bv])
        let inverse = referenceInverse(x)
        // u = X^-T a, w = X^-1 b: the gradient is -u w^T.
        let u = (0..<n).map { i in (0..<n).reduce(0.0) { $0 + inverse[$1 * n + i] * av.scalars[$1] } }
        let w = (0..<n).map { i in (0..<n).reduce(0.0) { $0 + inverse[i * n + $1] * bv.scalars[$1] } }
        let expected = (0..<n).flatMap { i in (0..<n).map { j in -u[i] * w[j] } }
        expectClose(out["f"]!.scalar, zip(av.scalars, w).reduce(0.0) { $0 + $1.0 * $1.1 }, tolerance: 1e-13)
        expectClose(out["f2"]!.scalar, out["f"]!.scalar, tolerance: 1e-13)
        expectClose(out["dX"]!.scalars, expected, tolerance: 1e-12)
        expectClose(out["dX2"]!.scalars, expected, tolerance: 1e-12)
    }

    /// A Gaussian-process style objective f = 0.5 y^T (K + s2 I)^-1 y + 0.5 log|K + s2 I|:
    /// df/ds2 = 0.5 tr((K + s2 I)^-1) - 0.5 |(K + s2 I)^-1 y|^2.
    @Test func gaussianProcessNoiseGradient() throws {
        var rng = SeededRandom(seed: 15)
        let n = 6
        let g = GraphBuilder()
        let K = try g.input("K", shape: [n, n]), y = try g.input("y", shape: [n]), s2 = try g.input("s2")
        let C = try K + s2 * identityMatrix(n, in: g)
        let f = try 0.5 * y.matmul(solve(C, y)) + 0.5 * logdet(C)
        let grads = try gradient(of: f, wrt: [s2, K, y])
        let graph = try g.graph(outputs: ["f": f, "df/ds2": grads[0], "df/dK": grads[1], "df/dy": grads[2]])
        // An RBF kernel matrix on random points: symmetric positive definite.
        let t = (0..<n).map { _ in Double.random(in: 0...3, using: &rng) }
        let k = TensorData(unchecked: [n, n], (0..<n).flatMap { i in (0..<n).map { j in Foundation.exp(-0.5 * (t[i] - t[j]) * (t[i] - t[j])) } })
        let yv = TensorData.random([n], using: &rng), noise = 0.1
        let inputs = ["K": k, "y": yv, "s2": TensorData(noise)]
        let out = try expectKernelMatchesInterpreter(graph, inputs)

        let c = TensorData(unchecked: [n, n], (0..<n * n).map { k.scalars[$0] + ($0 % (n + 1) == 0 ? noise : 0) })
        let inverse = referenceInverse(c)
        let alpha = (0..<n).map { i in (0..<n).reduce(0.0) { $0 + inverse[i * n + $1] * yv.scalars[$1] } }
        let trace = (0..<n).reduce(0.0) { $0 + inverse[$1 * n + $1] }
        let closed = 0.5 * trace - 0.5 * alpha.reduce(0.0) { $0 + $1 * $1 }
        expectClose(out["df/ds2"]!.scalar, closed, tolerance: 1e-10)
        // df/dK = 0.5 (C^-1 - alpha alpha^T) (C symmetric), df/dy = alpha.
        let dK = (0..<n).flatMap { i in (0..<n).map { j in 0.5 * (inverse[i * n + j] - alpha[i] * alpha[j]) } }
        expectClose(out["df/dK"]!.scalars, dK, tolerance: 1e-10)
        expectClose(out["df/dy"]!.scalars, alpha, tolerance: 1e-10)
        let numeric = try finiteDifferenceGradient(graph, output: "f", wrt: "s2", at: inputs)
        expectClose(out["df/ds2"]!.scalar, numeric[0], tolerance: 1e-6)
    }

    /// The Hessian of logdet: d^2/dt^2 log|A + t V| = -tr(A^-1 V A^-1 V), by forward over reverse
    /// (hvp), reverse over reverse, and the full Hessian, against finite differences.
    @Test func logdetSecondDerivative() throws {
        var rng = SeededRandom(seed: 16)
        let n = 4
        let g = GraphBuilder()
        let A = try g.input("A", shape: [n, n]), V = try g.input("V", shape: [n, n])
        let f = try logdet(A)
        let forwardOverReverse = try sum(hvp(of: f, wrt: A, along: V) * V)
        let directional = try sum(gradient(of: f, wrt: A) * V)
        let reverseOverReverse = try sum(gradient(of: directional, wrt: A) * V)
        let H = try hessian(of: f, wrt: A)  // [n, n, n, n]
        let viaHessian = try sum(H * V.reshaped([1, 1, n, n]).broadcast(to: [n, n, n, n]) * V.reshaped([n, n, 1, 1]))
        let graph = try g.graph(outputs: [
            "f": f, "fr": forwardOverReverse, "rr": reverseOverReverse, "H": viaHessian, "Hfull": H,
        ])
        let a = wellConditionedMatrix(n, using: &rng), v = TensorData.random([n, n], using: &rng)
        let out = try expectKernelMatchesInterpreter(graph, ["A": a, "V": v])

        let inverse = referenceInverse(a)
        // P = A^-1 V; -tr(P P).
        let p = (0..<n).flatMap { i in (0..<n).map { j in (0..<n).reduce(0.0) { $0 + inverse[i * n + $1] * v[$1, j] } } }
        let closed = -(0..<n).reduce(0.0) { total, i in total + (0..<n).reduce(0.0) { $0 + p[i * n + $1] * p[$1 * n + i] } }
        expectClose(out["fr"]!.scalar, closed, tolerance: 1e-12)
        expectClose(out["rr"]!.scalar, closed, tolerance: 1e-12)
        expectClose(out["H"]!.scalar, closed, tolerance: 1e-12)
        // The Hessian is symmetric: H[i,j,k,l] = H[k,l,i,j].
        let h = out["Hfull"]!.scalars, m = n * n
        let transposed = (0..<m).flatMap { r in (0..<m).map { c in h[c * m + r] } }
        expectClose(h, transposed, tolerance: 1e-12)

        let step = 1e-4
        func logdetAt(_ t: Double) throws -> Double {
            let point = TensorData(unchecked: [n, n], zip(a.scalars, v.scalars).map { $0 + t * $1 })
            return try Interpreter.evaluate(graph, inputs: ["A": point, "V": v])["f"]!.scalar
        }
        let numeric = try (logdetAt(step) - 2 * logdetAt(0) + logdetAt(-step)) / (step * step)
        expectClose(out["fr"]!.scalar, numeric, tolerance: 1e-5)
    }

    /// Second derivatives of det, inv and solve (reverse over reverse) against central
    /// differences of their (exact) first derivatives.
    @Test func secondDerivativesOfEveryMatrixOp() throws {
        var rng = SeededRandom(seed: 17)
        let n = 3
        let g = GraphBuilder()
        let A = try g.input("A", shape: [n, n]), b = try g.input("b", shape: [n]), V = try g.input("V", shape: [n, n])
        let f = try det(A) + sum(sin(inv(A))) + sum(square(solve(A, b))) + logdet(A.matmul(A))
        let directional = try sum(gradient(of: f, wrt: A) * V)
        let second = try sum(gradient(of: directional, wrt: A) * V)
        let graph = try g.graph(outputs: ["d1": directional, "d2": second])
        let a = wellConditionedMatrix(n, using: &rng), bv = TensorData.random([n], using: &rng), v = TensorData.random([n, n], using: &rng)
        let out = try expectKernelMatchesInterpreter(graph, ["A": a, "b": bv, "V": v])
        let h = 1e-6
        func d1(_ t: Double) throws -> Double {
            let point = TensorData(unchecked: [n, n], zip(a.scalars, v.scalars).map { $0 + t * $1 })
            return try Interpreter.evaluate(graph, inputs: ["A": point, "b": bv, "V": v])["d1"]!.scalar
        }
        expectClose(out["d2"]!.scalar, try (d1(h) - d1(-h)) / (2 * h), tolerance: 1e-6)
    }

    /// Derivatives use solves (det: the adjugate, from the same factors), never an explicit
    /// inverse.
    @Test func derivativesUseFactorisedForms() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [3, 3]), b = try g.input("b", shape: [3]), V = try g.input("V", shape: [3, 3])
        for (f, form) in [(try logdet(A), "solve"), (try det(A), "adjugate"), (try sum(solve(A, b)), "solve")] {
            let graph = try g.graph(outputs: [
                "g": gradient(of: f, wrt: A), "t": jvp(of: f, wrt: A, tangent: V), "h": hvp(of: f, wrt: A, along: V),
            ])
            #expect(!graph.nodes.contains { $0.operation is MatrixInverse })
            #expect(graph.nodes.contains { form == "solve" ? $0.operation is Solve : $0.operation is Adjugate })
            #expect(graph.nodes.filter { $0.operation is LUFactor }.count == 1)
        }
        // inv's own rules reuse its result: one inverse node in value, gradient and tangent.
        let y = try sum(sin(inv(A)))
        let graph = try g.graph(outputs: ["y": y, "g": gradient(of: y, wrt: A), "t": jvp(of: y, wrt: A, tangent: V)])
        #expect(graph.nodes.filter { $0.operation is MatrixInverse }.count == 1)
    }
}

@Suite("logsumexp and softmax")
struct LogSumExpTests {
    @Test func softmaxRowsSumToOneAndLogsumexpGradientIsSoftmax() throws {
        var rng = SeededRandom(seed: 21)
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3, 5])
        let s = try softmax(x, axis: 1)
        let rowsLSE = try logsumexp(x, axis: 1)
        let graph = try g.graph(outputs: [
            "rowSums": try sum(s, axis: 1),
            "softmax": s,
            "logSoftmax": try logSoftmax(x, axis: 1),
            "log softmax": log(s),
            "gradAll": try gradient(of: logsumexp(x), wrt: x),
            "softmaxAll": try softmax(x.reshaped([15]), axis: 0).reshaped([3, 5]),
            "rowGrad": try vjp(of: rowsLSE, wrt: [x], cotangent: g.filled(1, shape: [3]))[0],
        ])
        // The gradient of logsumexp is softmax itself, shared with the softmax output.
        #expect(graph.nodes.contains { $0.operation is Softmax })
        let xv = TensorData.random([3, 5], in: -4...4, using: &rng)
        let out = try expectKernelMatchesInterpreter(graph, ["x": xv])
        expectClose(out["rowSums"]!.scalars, [1, 1, 1], tolerance: 1e-15)
        expectClose(out["gradAll"]!.scalars, out["softmaxAll"]!.scalars, tolerance: 1e-15)
        expectClose(out["rowGrad"]!.scalars, out["softmax"]!.scalars, tolerance: 1e-15)
        expectClose(out["logSoftmax"]!.scalars, out["log softmax"]!.scalars, tolerance: 1e-14)
        // Against a direct computation.
        for i in 0..<3 {
            let row = (0..<5).map { xv[i, $0] }
            let total = row.map { Foundation.exp($0) }.reduce(0, +)
            expectClose((0..<5).map { out["softmax"]![i, $0] }, row.map { Foundation.exp($0) / total }, tolerance: 1e-14)
        }
    }

    /// Large equal logits: the maximum is subtracted before exp, so softmax is 1/2 and 1/2,
    /// log-softmax -log 2, and the gradient of logsumexp 1/2 each, at every magnitude (computed
    /// as exp(x - logsumexp(x)) these were 1 and 1 at 1e16, 5.5% off at 1e15).
    @Test(arguments: [1e12, 1e15, 1e16, -1e16, 1e300])
    func largeEqualLogits(magnitude: Double) throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [2])
        let graph = try g.graph(outputs: [
            "softmax": softmax(x, axis: 0), "logSoftmax": logSoftmax(x, axis: 0),
            "dlse": gradient(of: logsumexp(x), wrt: x),
            "dls": gradient(of: sum(logSoftmax(x, axis: 0) * x), wrt: x),
        ])
        let out = try expectKernelMatchesInterpreter(graph, ["x": TensorData(shape: [2], scalars: [magnitude, magnitude])])
        #expect(out["softmax"]!.scalars == [0.5, 0.5])
        #expect(out["logSoftmax"]!.scalars == [-Foundation.log(2.0), -Foundation.log(2.0)])
        #expect(out["dlse"]!.scalars == [0.5, 0.5])
        // d/dx_j sum(x * log_softmax(x)) = log_softmax(x)_j + x_j - softmax(x)_j sum(x).
        let expected = -Foundation.log(2.0) + (magnitude - 0.5 * (magnitude + magnitude))
        expectClose(out["dls"]!.scalars, [expected, expected], tolerance: 1e-15)
    }

    /// One large logit among ordinary ones takes all the weight; NaN and infinities propagate
    /// as in the references (NaN for -inf throughout or a +inf).
    @Test func extremeLogits() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [4, 3])
        let graph = try g.graph(outputs: ["softmax": softmax(x, axis: 1), "logSoftmax": logSoftmax(x, axis: 1)])
        let inf = Double.infinity
        let rows: [Double] = [1e300, 0, -1e300, -inf, -inf, -inf, 1, .nan, 2, inf, 1, 1]
        let out = try Interpreter.evaluate(graph, inputs: ["x": TensorData(shape: [4, 3], scalars: rows)])
        let compiled = try Kernel(graph)(["x": TensorData(shape: [4, 3], scalars: rows)])
        for name in ["softmax", "logSoftmax"] { #expect(sameBits(compiled[name]!.scalars, out[name]!.scalars), "\(name)") }
        #expect(Array(out["softmax"]!.scalars[0..<3]) == [1, 0, 0])
        #expect(out["logSoftmax"]!.scalars[0] == 0)
        let undefined = out["softmax"]!.scalars[3...].allSatisfy { $0.isNaN }
        #expect(undefined)
    }

    /// Large values do not overflow, very negative ones do not underflow to -inf.
    @Test func largeValuesAreStable() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [2])
        let graph = try g.graph(outputs: [
            "lse": logsumexp(x), "softmax": try softmax(x, axis: 0), "grad": try gradient(of: logsumexp(x), wrt: x),
        ])
        for (values, top) in [([1000.0, 1001.0], 1001.0), ([-1000.0, -1001.0], -1000.0), ([-1000.0, -1000.0], -1000.0)] {
            let out = try expectKernelMatchesInterpreter(graph, ["x": try TensorData(shape: [2], scalars: values)])
            let expected = top + Foundation.log1p(Foundation.exp(-Swift.abs(values[0] - values[1])))
            expectClose(out["lse"]!.scalar, expected, tolerance: 1e-15)
            #expect(out["softmax"]!.scalars.allSatisfy { $0.isFinite })
            // x - lse carries lse's rounding (about 1e-13 absolute at 1000) into exp.
            expectClose(out["softmax"]!.scalars.reduce(0, +), 1, tolerance: 1e-12)
            expectClose(out["grad"]!.scalars, out["softmax"]!.scalars, tolerance: 1e-15)
        }
    }

    /// All -inf gives -inf (not NaN), -inf elements are ignored, +inf wins, NaN propagates; the
    /// kernel agrees element for element.
    @Test func infinitiesAndNaN() throws {
        let inf = Double.infinity
        let rows: [([Double], Double)] = [
            ([-inf, -inf, -inf], -inf),
            ([-inf, 0, -inf], 0),
            ([-inf, 2, 2], 2 + Foundation.log(2)),
            ([inf, 1, 2], inf),
            ([inf, -inf, 0], inf),
            ([.nan, 1, 2], .nan),
            ([-inf, .nan, -inf], .nan),
            ([1, 2, .nan], .nan),
        ]
        let g = GraphBuilder()
        let x = try g.input("x", shape: [rows.count, 3])
        let graph = try g.graph(outputs: ["rows": logsumexp(x, axis: 1), "all": logsumexp(x[.between(0, 2)])])
        let out = try expectKernelMatchesInterpreter(graph, ["x": try TensorData(shape: [rows.count, 3], scalars: rows.flatMap(\.0))])
        for (k, (_, expected)) in rows.enumerated() {
            let got = out["rows"]!.scalars[k]
            #expect(got == expected || (got.isNaN && expected.isNaN), "row \(k): \(got), expected \(expected)")
        }
        #expect(out["all"]!.scalar == 0)
    }

    @Test func emptyReductionIsMinusInfinity() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [2, 0])
        let graph = try g.graph(outputs: ["y": logsumexp(x, axis: 1)])
        let out = try expectKernelMatchesInterpreter(graph, ["x": try TensorData(shape: [2, 0], scalars: [])])
        #expect(out["y"]!.scalars == [-.infinity, -.infinity])
    }
}

@Suite("Matrix calculus: singular matrices and scratch memory")
struct MatrixCalculusRobustnessTests {
    /// Singular (and NaN) matrices give IEEE results in the interpreter and in kernels, never
    /// a trap or a hang; value and derivative graphs alike.
    @Test func singularMatrices() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [3, 3]), b = try g.input("b", shape: [3])
        let f = try logdet(A)
        let graph = try g.graph(outputs: [
            "det": det(A), "logdet": f, "inv": inv(A), "solve": solve(A, b),
            "dlogdet": gradient(of: f, wrt: A), "ddet": gradient(of: det(A), wrt: A),
            "dsolve": gradient(of: sum(solve(A, b)), wrt: A),
        ])
        let bv = try TensorData(shape: [3], scalars: [1, 2, 3])
        let rankOne = try TensorData(shape: [3, 3], scalars: [1, 2, 3, 2, 4, 6, -1, -2, -3])
        let zero = TensorData(repeating: 0, shape: [3, 3])
        let zeroColumn = try TensorData(shape: [3, 3], scalars: [1, 0, 2, 3, 0, 4, 5, 0, 7])
        for (name, a) in [("rank one", rankOne), ("zero", zero), ("zero column", zeroColumn)] {
            let out = try expectKernelMatchesInterpreter(graph, ["A": a, "b": bv])
            #expect(out["det"]!.scalar == 0, "\(name): det \(out["det"]!.scalar)")
            #expect(out["logdet"]!.scalar == -.infinity, "\(name): logdet \(out["logdet"]!.scalar)")
            #expect(out["inv"]!.scalars.contains { !$0.isFinite }, "\(name): inv \(out["inv"]!.scalars)")
            #expect(out["solve"]!.scalars.contains { !$0.isFinite }, "\(name): solve \(out["solve"]!.scalars)")
        }
        // Singular only up to rounding: whatever comes out, the kernel agrees and nothing traps.
        let nearly = try TensorData(shape: [3, 3], scalars: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        try expectKernelMatchesInterpreter(graph, ["A": nearly, "b": bv])
        // NaN and infinity propagate.
        var rng = SeededRandom(seed: 41)
        var withNaN = wellConditionedMatrix(3, using: &rng)
        withNaN.scalars[4] = .nan
        let out = try expectKernelMatchesInterpreter(graph, ["A": withNaN, "b": bv])
        #expect(out["det"]!.scalar.isNaN && out["logdet"]!.scalar.isNaN)
        #expect(out["inv"]!.scalars.contains { $0.isNaN })
        var withInf = wellConditionedMatrix(3, using: &rng)
        withInf.scalars[0] = .infinity
        try expectKernelMatchesInterpreter(graph, ["A": withInf, "b": bv])
    }

    /// One LU factorisation per matrix: every function of a matrix and every derivative of them
    /// reads the same factors, and the factors live in the planned workspace.
    @Test func factorisationsAreShared() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [4, 4]), B = try g.input("B", shape: [4, 4])
        // Two determinants of different matrices: two factorisations, one workspace region
        // reused (the first is dead before the second is made).
        let twoDets = try emitC(g.graph(outputs: ["d": det(A) + det(B)]))
        #expect(twoDets.code.components(separatedBy: "nabla_lu_factor(4, ").count - 1 == 2)
        #expect(twoDets.workspaceBytes == 24 * 8)
        #expect(!twoDets.code.contains("malloc"))
        // No matrix operation, no helpers.
        let plain = try emitC(g.graph(outputs: ["s": sum(A)]))
        #expect(!plain.code.contains("nabla_lu"))
        #expect(plain.workspaceBytes == 0)

        // A Gaussian-process style objective and its gradient: one factorisation of C.
        let y = try g.input("y", shape: [4]), s2 = try g.input("s2")
        let C = try A.matmul(A.transposed) + s2 * identityMatrix(4, in: g)
        let nlml = try 0.5 * y.matmul(solve(C, y)) + 0.5 * logdet(C)
        let gp = try g.graph(outputs: ["nlml": nlml, "g": gradient(of: nlml, wrt: [A, s2, y])[1]])
        let simplified = try simplify(gp)
        #expect(simplified.nodes.filter { $0.operation is LUFactor }.count == 1)
        #expect(try emitC(gp).code.components(separatedBy: "nabla_lu_factor(4, ").count - 1 == 1)
        var rng = SeededRandom(seed: 31)
        let inputs = ["A": wellConditionedMatrix(4, using: &rng), "B": wellConditionedMatrix(4, using: &rng),
                      "y": TensorData.random([4], using: &rng), "s2": TensorData(0.5)]
        try expectKernelMatchesInterpreter(gp, inputs)

        // A larger derivative graph: every factored matrix is factored once.
        let b = try g.input("b", shape: [4, 2])
        let L = try logdet(A.matmul(B) + A) + sum(solve(inv(A) + B, b)) + det(A * 0.5) + sum(logsumexp(solve(B, b), axis: 0))
        let grads = try gradient(of: L, wrt: [A, B, b])
        let graph = try simplify(g.graph(outputs: ["L": L, "dA": grads[0], "dB": grads[1], "db": hvp(of: L, wrt: b, along: b)]))
        let factored = graph.nodes.filter { $0.operation is LUFactor }.map { $0.inputs[0] }
        #expect(Set(factored).count == factored.count)
        var all = inputs
        all["b"] = TensorData.random([4, 2], using: &rng)
        try expectKernelMatchesInterpreter(graph, all)
    }
}
