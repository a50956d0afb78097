import NablaRuntime
import Foundation

// Matrix calculus: det, log|det|, inverse and linear solves, all on one LU factorisation with
// partial pivoting.
//
// Numerics. `LU` below (for the interpreter) and `CHelper.linearAlgebra` (for generated C)
// are the same algorithm written twice, statement for statement, so kernels and the
// interpreter round identically. Elimination works on a copy of the matrix (in the node's
// scratch memory in C) and applies each row swap and row operation to the right-hand sides as
// it goes, so neither the multipliers nor the pivot indices are ever stored: the scratch is
// exactly n * n doubles.
//
// Singular matrices are not detected; IEEE arithmetic runs its course. When a column has no
// non-zero pivot left (it is zero from the diagonal down) elimination skips it, as LAPACK's
// getrf does, so det is then ±0 and logdet -inf, while inv and solve divide by that zero pivot
// and give infinities or NaN. A NaN in a column is always chosen as its pivot, so NaN inputs
// give NaN results. Every loop has fixed bounds: nothing can trap or hang.
//
// Derivatives never form an explicit inverse where a solve does (det and logdet pull back
// through `solve(A^T, I)`, which is A^-T itself), and they are built from these same
// operations, so derivative graphs can be differentiated again.

/// LU factorisation with partial pivoting on row-major arrays: the interpreter's half of the
/// numerics (the C half is `CHelper.linearAlgebra`).
enum LU {
    /// Gaussian elimination with partial pivoting of the n x n matrix `a`, applying the same
    /// row swaps and row operations to the n x m matrix `x`. Leaves U on and above the
    /// diagonal of `a` (below it, stale values) and L^-1 P x in `x`. Returns the number of row
    /// swaps.
    static func factor(_ n: Int, _ m: Int, _ a: inout [Double], _ x: inout [Double]) -> Int {
        var swaps = 0
        for k in 0..<n {
            // The largest magnitude from the diagonal down; a NaN wins, so it propagates.
            var p = k
            var best = Swift.abs(a[k * n + k])
            for i in (k + 1)..<n {
                let t = Swift.abs(a[i * n + k])
                if t > best || t.isNaN {
                    best = t
                    p = i
                }
            }
            if p != k {
                for j in k..<n { a.swapAt(k * n + j, p * n + j) }
                for j in 0..<m { x.swapAt(k * m + j, p * m + j) }
                swaps += 1
            }
            let d = a[k * n + k]
            // A zero pivot means the column is zero from here down: nothing to eliminate.
            if d == 0 { continue }
            for i in (k + 1)..<n {
                let l = a[i * n + k] / d
                for j in (k + 1)..<n { a[i * n + j] -= l * a[k * n + j] }
                for j in 0..<m { x[i * m + j] -= l * x[k * m + j] }
            }
        }
        return swaps
    }

    /// Back substitution: overwrites the n x m matrix `x` with U^-1 x, U the upper triangle of `a`.
    static func backSubstitute(_ n: Int, _ m: Int, _ a: [Double], _ x: inout [Double]) {
        var i = n - 1
        while i >= 0 {
            for j in 0..<m {
                var s = x[i * m + j]
                for k in (i + 1)..<n { s -= a[i * n + k] * x[k * m + j] }
                x[i * m + j] = s / a[i * n + i]
            }
            i -= 1
        }
    }

    /// Solves A X = B for the n x n matrix `a` (overwritten) and n x m right-hand sides `x`
    /// (overwritten by the solution).
    static func solve(_ n: Int, _ m: Int, _ a: inout [Double], _ x: inout [Double]) {
        _ = factor(n, m, &a, &x)
        backSubstitute(n, m, a, &x)
    }

    /// det A: the product of U's diagonal, negated for an odd number of swaps.
    static func determinant(_ n: Int, _ a: inout [Double]) -> Double {
        var none: [Double] = []
        let swaps = factor(n, 0, &a, &none)
        var d = 1.0
        for k in 0..<n { d *= a[k * n + k] }
        return swaps % 2 == 1 ? -d : d
    }

    /// log |det A|: the sum of log |u_kk|, which neither overflows nor underflows.
    static func logAbsDeterminant(_ n: Int, _ a: inout [Double]) -> Double {
        var none: [Double] = []
        _ = factor(n, 0, &a, &none)
        var s = 0.0
        for k in 0..<n { s += Foundation.log(Swift.abs(a[k * n + k])) }
        return s
    }
}

extension CHelper {
    /// The C half of `LU`, statement for statement: runtime/nabla_linalg_code.h, which the
    /// package compiles with optimisation for JIT kernels and also exports as text for
    /// standalone C. Every function takes the matrix in scratch memory the caller has filled
    /// (it is overwritten).
    static let linearAlgebra: [CHelper] = {
        // One helper per function, so the C carries only the ones it calls (and what they call).
        let text = String(cString: nabla_linalg_source_pointer())
        return text.components(separatedBy: "NABLA_LINKAGE").dropFirst().map { piece in
            let definition = piece.trimmingCharacters(in: .whitespaces)
            let name = String(definition.prefix { $0 != "(" }.split(separator: " ").last!)
            let prototype = definition.prefix { $0 != "{" }.trimmingCharacters(in: .whitespaces) + ";"
            return CHelper(names: [name], code: "static " + definition, runtimePrototypes: prototype)
        }
    }()
}

/// The order n of a square matrix shape, or a shape error naming `op`.
private func squareOrder(_ shape: Shape, _ op: String) throws -> Int {
    guard shape.rank == 2, shape[0] == shape[1] else {
        throw NablaError.shapeMismatch(op: op, shapes: [shape], reason: "needs a square matrix")
    }
    return shape[0]
}

/// Writes C copying operand `input` (n x n) into the node's scratch memory.
private func copyToScratch(_ node: CNode, _ input: CValue) {
    let shape = input.shape
    node.loop(over: shape, [CAccess(node.scratchValue(shape: shape), strides: shape.strides), CAccess(input, strides: shape.strides)]) {
        "\($0[0]) = \($0[1]);"
    }
}

/// The n x n identity as a constant of `builder`.
func identityMatrix(_ n: Int, in builder: GraphBuilder) -> Tensor {
    var data = [Double](repeating: 0, count: n * n)
    for i in 0..<n { data[i * n + i] = 1 }
    return builder.constant(TensorData(unchecked: [n, n], data))
}

/// tr M for a square matrix: the sum of the strided view of its diagonal (linear, no products).
func matrixTrace(_ m: Tensor) throws -> Tensor {
    let n = try squareOrder(m.shape, "trace")
    if n == 0 { return m.builder.constant(0) }
    return sum(try m.reshaped([n * n]).slice([.range(start: 0, end: nil, step: n + 1)]))
}

/// A^-T as the solve A^T X = I (this is the full gradient of log|det A|, so no cheaper form
/// exists).
private func inverseTransposed(_ a: Tensor) throws -> Tensor {
    try solve(a.transposed, identityMatrix(a.shape[0], in: a.builder))
}

/// det A of a square matrix (a scalar), by LU with partial pivoting.
public struct Determinant: ScratchOperation {
    public init() {}
    public var name: String { "det" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "det")
        _ = try squareOrder(inputs[0], "det")
        return .scalar
    }

    public func scratchDoubles(inputs: [Shape], output: Shape) -> Int { inputs[0].count }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        var a = inputs[0].scalars
        return TensorData(LU.determinant(inputs[0].shape[0], &a))
    }

    /// d det / dA = det A * A^-T, reusing the result.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        return [try (rule.cotangent * rule.output) * inverseTransposed(rule.inputs[0])]
    }

    /// d det = det A * tr(A^-1 dA), with A^-1 dA as a solve.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        return try rule.output * matrixTrace(solve(rule.inputs[0], t))
    }

    public func emitC(_ node: CNode) throws {
        let n = node.inputs[0].shape[0]
        guard n > 0 else {
            node.line("\(node.output.element("0")) = 1.0;")
            return
        }
        copyToScratch(node, node.inputs[0])
        node.line("\(node.output.element("0")) = nabla_lu_det(\(n), \(node.scratch!));")
    }
}

/// log |det A| of a square matrix (a scalar): the sum of the logs of the LU pivots'
/// magnitudes, so it neither overflows nor underflows where det would.
public struct LogAbsDeterminant: ScratchOperation {
    public init() {}
    public var name: String { "logdet" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "logdet")
        _ = try squareOrder(inputs[0], "logdet")
        return .scalar
    }

    public func scratchDoubles(inputs: [Shape], output: Shape) -> Int { inputs[0].count }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        var a = inputs[0].scalars
        return TensorData(LU.logAbsDeterminant(inputs[0].shape[0], &a))
    }

    /// d log|det A| / dA = A^-T, as the solve A^T X = I.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        return [try rule.cotangent * inverseTransposed(rule.inputs[0])]
    }

    /// d log|det A| = tr(A^-1 dA), with A^-1 dA as a solve.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        return try matrixTrace(solve(rule.inputs[0], t))
    }

    public func emitC(_ node: CNode) throws {
        let n = node.inputs[0].shape[0]
        guard n > 0 else {
            node.line("\(node.output.element("0")) = 0.0;")
            return
        }
        copyToScratch(node, node.inputs[0])
        node.line("\(node.output.element("0")) = nabla_lu_logabsdet(\(n), \(node.scratch!));")
    }
}

/// A^-1 of a square matrix: the solve A X = I, by LU with partial pivoting.
public struct MatrixInverse: ScratchOperation {
    public init() {}
    public var name: String { "inv" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "inv")
        _ = try squareOrder(inputs[0], "inv")
        return inputs[0]
    }

    public func scratchDoubles(inputs: [Shape], output: Shape) -> Int { inputs[0].count }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let n = shape[0]
        var a = inputs[0].scalars
        var x = [Double](repeating: 0, count: n * n)
        for i in 0..<n { x[i * n + i] = 1 }
        LU.solve(n, n, &a, &x)
        return TensorData(unchecked: shape, x)
    }

    /// With Y = A^-1: dA = -Y^T G Y^T, reusing the result.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        let yt = rule.output.transposed
        return [try -(yt.matmul(rule.cotangent).matmul(yt))]
    }

    /// dY = -Y dA Y.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        let y = rule.output
        return try -(y.matmul(t).matmul(y))
    }

    public func emitC(_ node: CNode) throws {
        let n = node.inputs[0].shape[0]
        guard n > 0 else { return }
        copyToScratch(node, node.inputs[0])
        let out = node.output
        node.block("for (long i = 0; i < \(n * n); i++)") { node.line("\(out.element("i")) = 0.0;") }
        node.block("for (long i = 0; i < \(n); i++)") { node.line("\(out.element("i * \(n + 1)")) = 1.0;") }
        node.line("nabla_lu_solve(\(n), \(n), \(node.scratch!), \(out.address));")
    }
}

/// The solution X of A X = B for a square A and B a vector [n] or a matrix [n, k] of
/// right-hand sides (the result is shaped like B), by LU with partial pivoting.
public struct Solve: ScratchOperation {
    public init() {}
    public var name: String { "solve" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 2, "solve")
        let a = inputs[0], b = inputs[1]
        guard a.rank == 2, a[0] == a[1] else {
            throw NablaError.shapeMismatch(op: "solve", shapes: [a, b], reason: "the matrix must be square")
        }
        guard (1...2).contains(b.rank), b[0] == a[0] else {
            throw NablaError.shapeMismatch(op: "solve", shapes: [a, b], reason: "the right-hand side must be a vector [\(a[0])] or a matrix [\(a[0]), k]")
        }
        return b
    }

    public func scratchDoubles(inputs: [Shape], output: Shape) -> Int { inputs[0].count }

    /// Right-hand sides per row.
    private func columns(_ b: Shape) -> Int { b.rank == 2 ? b[1] : 1 }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let n = inputs[0].shape[0]
        var a = inputs[0].scalars
        var x = inputs[1].scalars
        LU.solve(n, columns(shape), &a, &x)
        return TensorData(unchecked: shape, x)
    }

    /// With X = A^-1 B: gB = A^-T G (a solve with A^T), gA = -gB X^T.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient.contains(true) else { return [nil, nil] }
        let a = rule.inputs[0], x = rule.output
        let gb = try solve(a.transposed, rule.cotangent)
        var ga: Tensor?
        if rule.needsGradient[0] {
            ga = try -(x.shape.rank == 1 ? outer(gb, x) : gb.matmul(x.transposed))
        }
        return [ga, rule.needsGradient[1] ? gb : nil]
    }

    /// dX = A^-1 (dB - dA X).
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        let a = rule.inputs[0], x = rule.output
        var rhs: Tensor?
        if let tb = rule.tangents[1] { rhs = tb }
        if let ta = rule.tangents[0] {
            let term = try ta.matmul(x)
            rhs = try rhs.map { try $0 - term } ?? -term
        }
        guard let rhs else { return nil }
        return try solve(a, rhs)
    }

    public func emitC(_ node: CNode) throws {
        let a = node.inputs[0], b = node.inputs[1], out = node.output
        let n = a.shape[0]
        guard n > 0, out.shape.count > 0 else { return }
        copyToScratch(node, a)
        node.loop(over: b.shape, [CAccess(out, strides: b.shape.strides), CAccess(b, strides: b.shape.strides)]) {
            "\($0[0]) = \($0[1]);"
        }
        node.line("nabla_lu_solve(\(n), \(columns(b.shape)), \(node.scratch!), \(out.address));")
    }
}
