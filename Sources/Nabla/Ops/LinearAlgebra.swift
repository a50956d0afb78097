import NablaRuntime
import Foundation

// Matrix calculus: det, log|det|, inverse and linear solves, all on LU factorisations with
// partial pivoting.
//
// One factorisation per matrix. `det(A)`, `logdet(A)`, `inv(A)`, `solve(A, b)` and the
// transposed solves their derivatives need (`InverseTransposed` for A^-T, the gradient of
// logdet) all take a further operand, `LUFactor(A)`, which the builder shares between them (it
// hash-conses equal nodes): a Gaussian-process likelihood and its gradient factor the
// covariance once. Evaluation reads only the factors; derivative rules
// are written in terms of A, and `LUFactor` itself has no derivative (its consumers account for
// A), so derivative graphs stay ordinary graphs that can be differentiated again.
//
// Numerics. `LU` below (for the interpreter) and runtime/nabla_linalg_code.h (for generated C)
// are the same algorithm written twice, so kernels and the interpreter round identically:
// every element gets the same operations in the same order. The factors are the eliminated
// matrix (U on and above the diagonal, the multipliers below it, stored a column per row, see
// `LU.multiplier`) followed by one row of pivot indices; applying them replays exactly the row
// swaps and row operations of the elimination.
// `LU` runs the plain loops; the C reorganises them for speed (panels with whole-row swaps,
// register tiles, strips of columns) without changing any element's operations, and the
// header of nabla_linalg_code.h explains why each reorganisation is exact.
//
// Singular matrices are not detected; IEEE arithmetic runs its course. When a column has no
// non-zero pivot left (it is zero from the diagonal down) elimination skips it, as LAPACK's
// getrf does, so det is then ±0 and logdet -inf, while inv and solve divide by that zero pivot
// and give infinities or NaN. A NaN in a column is always chosen as its pivot, so NaN inputs
// give NaN results. Every loop has fixed bounds: nothing can trap or hang.

/// LU factorisation with partial pivoting on row-major arrays: the interpreter's half of the
/// numerics (the C half is `LU.runtimeText`).
enum LU {
    /// The factors of an n x n matrix: Gaussian elimination with partial pivoting (the plain
    /// right-looking loop; the C works in panels with the same operations per element),
    /// leaving U on and above the diagonal and the multipliers below it, followed by the n
    /// pivot rows. The multipliers are stored column by column: the multiplier of row i at
    /// step k (i > k) at row n - 1 - k, column n - 1 - i (`multiplier`), so that the solves,
    /// which read them a column at a time, read them contiguously.
    static func factors(_ n: Int, _ a: [Double]) -> [Double] {
        var a = a
        var pivots = [Double](repeating: 0, count: n)
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
            pivots[k] = Double(p)
            if p != k { for j in k..<n { a.swapAt(k * n + j, p * n + j) } }
            let d = a[k * n + k]
            // A zero pivot means the column is zero from here down: nothing to eliminate.
            if d == 0 { continue }
            for i in (k + 1)..<n {
                let l = a[i * n + k] / d
                a[i * n + k] = l
                for j in (k + 1)..<n { a[i * n + j] -= l * a[k * n + j] }
            }
        }
        // Reflect the multipliers in the anti-diagonal (an involution of the strict lower
        // triangle): column k of them becomes row n - 1 - k, read backwards.
        for i in 0..<n {
            for k in 0..<i where i + k < n - 1 { a.swapAt(i * n + k, multiplier(n, i, k)) }
        }
        return a + pivots
    }

    /// Where the factors keep the multiplier of row i at step k (i > k).
    @inline(__always)
    static func multiplier(_ n: Int, _ i: Int, _ k: Int) -> Int { (n - 1 - k) * n + n - 1 - i }

    /// Overwrites the n x m right-hand sides `x` with A^-1 x, from A's `factors`.
    static func apply(_ n: Int, _ m: Int, _ f: [Double], _ x: inout [Double]) {
        for k in 0..<n {
            let p = Int(f[n * n + k])
            if p != k { for j in 0..<m { x.swapAt(k * m + j, p * m + j) } }
            if f[k * n + k] == 0 { continue }
            for i in (k + 1)..<n {
                let l = f[multiplier(n, i, k)]
                for j in 0..<m { x[i * m + j] -= l * x[k * m + j] }
            }
        }
        var i = n - 1
        while i >= 0 {
            for k in (i + 1)..<n {
                let u = f[i * n + k]
                for j in 0..<m { x[i * m + j] -= u * x[k * m + j] }
            }
            let d = f[i * n + i]
            for j in 0..<m { x[i * m + j] = x[i * m + j] / d }
            i -= 1
        }
    }

    /// Overwrites the n x m right-hand sides `x` with A^-T x, from A's `factors`.
    static func applyTransposed(_ n: Int, _ m: Int, _ f: [Double], _ x: inout [Double]) {
        for i in 0..<n {
            for k in 0..<i {
                let u = f[k * n + i]
                for j in 0..<m { x[i * m + j] -= u * x[k * m + j] }
            }
            let d = f[i * n + i]
            for j in 0..<m { x[i * m + j] = x[i * m + j] / d }
        }
        var k = n - 1
        while k >= 0 {
            if f[k * n + k] != 0 {
                for i in (k + 1)..<n {
                    let l = f[multiplier(n, i, k)]
                    for j in 0..<m { x[k * m + j] -= l * x[i * m + j] }
                }
            }
            let p = Int(f[n * n + k])
            if p != k { for j in 0..<m { x.swapAt(k * m + j, p * m + j) } }
            k -= 1
        }
    }

    /// det A from its factors: the product of U's diagonal, negated for an odd number of swaps.
    static func determinant(_ n: Int, _ f: [Double]) -> Double {
        var swaps = 0
        for k in 0..<n where Int(f[n * n + k]) != k { swaps += 1 }
        var d = 1.0
        for k in 0..<n { d *= f[k * n + k] }
        return swaps % 2 == 1 ? -d : d
    }

    /// adj(A) from A's factors, division-free so it stays finite where det A is 0:
    /// runtime/nabla_linalg_code.h explains the algorithm (`nabla_lu_adjugate`), which this
    /// follows operation for operation.
    static func adjugate(_ n: Int, _ f: [Double]) -> [Double] {
        var x = [Double](repeating: 0, count: n * n)
        var swaps = 0
        var j = n - 1
        while j >= 0 {
            x[j * n + j] = 1
            var i = j - 1
            while i >= 0 {
                var m = 0.0, p = 1.0
                for l in (i + 1)...j {
                    m += f[i * n + l] * p * x[l * n + j]
                    p *= f[l * n + l]
                }
                x[i * n + j] = -m
                i -= 1
            }
            for i in 0...j {
                var d = 1.0
                for k in 0..<i { d *= f[k * n + k] }
                for k in (j + 1)..<n { d *= f[k * n + k] }
                if x[i * n + j] != 0 { x[i * n + j] = d * x[i * n + j] }
            }
            for i in (j + 1)..<n { x[i * n + j] = 0 }
            if f[j * n + j] != 0 {
                for k in (j + 1)..<n {
                    let t = f[multiplier(n, k, j)]
                    for i in 0..<n { x[i * n + j] -= t * x[i * n + k] }
                }
            }
            let l = Int(f[n * n + j])
            if l != j {
                swaps += 1
                for i in 0..<n { x.swapAt(i * n + j, i * n + l) }
            }
            j -= 1
        }
        if swaps % 2 == 1 { for i in x.indices { x[i] = -x[i] } }
        return x
    }

    /// log |det A| from its factors: the sum of log |u_kk|, which neither overflows nor underflows.
    static func logAbsDeterminant(_ n: Int, _ f: [Double]) -> Double {
        var s = 0.0
        for k in 0..<n { s += Foundation.log(Swift.abs(f[k * n + k])) }
        return s
    }
}

extension LU {
    /// The C half of `LU`, statement for statement: runtime/nabla_linalg_code.h, which the
    /// package compiles with optimisation for JIT kernels and also exports as text, each
    /// function after the token NABLA_LINKAGE, which standalone C carries as static functions.
    /// Every function takes the matrix in scratch memory the caller has filled (it is
    /// overwritten).
    static let runtimeText: [String: String] = {
        let text = String(cString: nabla_linalg_source_pointer())
        var definitions: [String: String] = [:]
        for piece in text.components(separatedBy: "NABLA_LINKAGE").dropFirst() {
            let definition = piece.trimmingCharacters(in: .whitespacesAndNewlines)
            let name = String(definition.prefix { $0 != "(" }.split(separator: " ").last!)
            definitions[name] = "static " + brokenIntoLines(definition)
        }
        return definitions
    }()

    /// The one-line text of a function (stringising keeps no line breaks) with a line break
    /// after each statement and brace outside parentheses, so compilers can point into it (gcc
    /// stops tracking columns on very long lines, and says so). The text holds no string or
    /// character literals, so every `;`, `{` and `}` is code.
    static func brokenIntoLines(_ definition: String) -> String {
        var result = "", parentheses = 0, braces = 0, breakAfter = false, newline = false
        result.reserveCapacity(definition.utf8.count + definition.utf8.count / 8)
        for character in definition {
            if breakAfter {
                breakAfter = false
                if character == " " { newline = true; continue }
            }
            if newline {
                newline = false
                // Indented by the braces open, so nothing but the definition starts a line.
                result += "\n" + String(repeating: "    ", count: max(1, braces - (character == "}" ? 1 : 0)))
            }
            result.append(character)
            switch character {
            case "(": parentheses += 1
            case ")": parentheses -= 1
            case "{": braces += 1; breakAfter = parentheses == 0
            case "}": braces -= 1; breakAfter = parentheses == 0
            case ";": breakAfter = parentheses == 0
            default: break
            }
        }
        return result
    }

    /// A function of the LU runtime, with its signature as runtime/include/nabla_runtime.h
    /// declares it.
    private static func runtime(_ name: String, returns result: CFunction.CType, _ parameters: [CFunction.Parameter],
                                calls: [CFunction] = []) -> CFunction {
        CFunction(name, returns: result, parameters, origin: .runtime(standalone: runtimeText[name]), calls: calls)
    }

    private typealias P = CFunction.Parameter
    /// The steps `factor` is made of (the runtime splits the trailing updates over threads).
    static let panel = runtime("nabla_lu_panel", returns: .long, [
        P(.long, "n"), P(.doublePointer, "a"), P(.doublePointer, "pivots"), P(.long, "j0"), P(.long, "j1"),
    ], calls: [.fabs])
    static let panelRows = runtime("nabla_lu_panel_rows", returns: .void, [
        P(.long, "n"), P(.doublePointer, "a"), P(.constDoublePointer, "pivots"), P(.long, "j0"), P(.long, "j1"),
    ])
    static let updateRows = runtime("nabla_lu_update_rows", returns: .void, [
        P(.long, "n"), P(.doublePointer, "a"), P(.long, "j0"), P(.long, "j1"), P(.long, "ib"), P(.long, "ie"),
    ])
    static let finish = runtime("nabla_lu_finish", returns: .void, [
        P(.long, "n"), P(.doublePointer, "a"), P(.constDoublePointer, "pivots"),
    ])
    static let factor = runtime("nabla_lu_factor", returns: .long, [
        P(.long, "n"), P(.constDoublePointer, "source"), P(.doublePointer, "a"), P(.doublePointer, "pivots"),
    ], calls: [panel, panelRows, updateRows, finish])
    static let applyFactors = runtime("nabla_lu_apply", returns: .void, [
        P(.long, "n"), P(.long, "m"), P(.constDoublePointer, "f"), P(.constDoublePointer, "pivots"), P(.doublePointer, "x"),
    ])
    /// The pieces `applyTransposedFactors` is made of (the runtime runs blocks of columns on
    /// several threads).
    static let transposedPrepare = runtime("nabla_lu_transposed_prepare", returns: .long, [
        P(.long, "n"), P(.long, "m"), P(.constDoublePointer, "f"), P(.doublePointer, "x"), P(.long, "identity"),
    ])
    static let applyTransposedColumns = runtime("nabla_lu_apply_transposed_columns", returns: .void, [
        P(.long, "n"), P(.long, "m"), P(.constDoublePointer, "f"), P(.constDoublePointer, "pivots"), P(.doublePointer, "x"),
        P(.long, "identity"), P(.long, "jb"), P(.long, "je"),
    ])
    static let applyTransposedFactors = runtime("nabla_lu_apply_transposed", returns: .void, [
        P(.long, "n"), P(.long, "m"), P(.constDoublePointer, "f"), P(.constDoublePointer, "pivots"), P(.doublePointer, "x"),
        P(.long, "identity"),
    ], calls: [transposedPrepare, applyTransposedColumns])
    static let det = runtime("nabla_lu_det", returns: .double, [P(.long, "n"), P(.constDoublePointer, "f"), P(.constDoublePointer, "pivots")])
    static let adjugate = runtime("nabla_lu_adjugate", returns: .void, [
        P(.long, "n"), P(.constDoublePointer, "f"), P(.constDoublePointer, "pivots"), P(.doublePointer, "x"),
    ])
    static let logAbsDet = runtime("nabla_lu_logabsdet", returns: .double, [P(.long, "n"), P(.constDoublePointer, "f")],
                                   calls: [.fabs, .log])
    /// Every function above, for tests.
    static let runtimeFunctions = [panel, panelRows, updateRows, finish, factor, applyFactors, transposedPrepare, applyTransposedColumns, applyTransposedFactors, det, adjugate, logAbsDet]
}

/// The order n of a square matrix shape, or a shape error naming `op`.
func squareOrder(_ shape: Shape, _ op: String) throws -> Int {
    guard shape.rank == 2, shape[0] == shape[1] else {
        throw NablaError.shapeMismatch(op: op, shapes: [shape], reason: "needs a square matrix")
    }
    return shape[0]
}

/// The n x n identity as a constant of `builder`.
func identityMatrix(_ n: Int, in builder: GraphBuilder) -> Tensor {
    var data = [Double](repeating: 0, count: n * n)
    for i in 0..<n { data[i * n + i] = 1 }
    return builder.constant(TensorData(unchecked: [n, n], data))
}

/// The diagonal of a square matrix `[n, n]` (the caller checks it is square): every (n+1)-th
/// element of its flattening, a strided view.
func matrixDiagonal(_ x: Tensor) throws -> Tensor {
    let n = x.shape[0]
    if n == 0 { return try x.reshaped([0]) }
    return try x.reshaped([n * n]).slice([.range(start: 0, end: nil, step: n + 1)])
}

/// tr M for a square matrix: the sum of the strided view of its diagonal (linear, no products).
func matrixTrace(_ m: Tensor) throws -> Tensor {
    let n = try squareOrder(m.shape, "trace")
    if n == 0 { return m.builder.constant(0) }
    return sum(try m.reshaped([n * n]).slice([.range(start: 0, end: nil, step: n + 1)]))
}

/// A^-T as the transposed solve A^T X = I on A's factors (this is the full gradient of
/// log|det A|, so no cheaper form exists), with the identity implied rather than an operand.
private func inverseTransposed(_ a: Tensor) throws -> Tensor {
    try a.builder.apply(InverseTransposed(), [a, luFactors(a)])
}

/// `[n, n]` and its factors `[n + 1, n]`, or a shape error naming `op`.
private func checkFactored(_ inputs: [Shape], _ count: Int, _ op: String) throws -> Int {
    try requireOperands(inputs, count, op)
    let n = try squareOrder(inputs[0], op)
    guard inputs[count - 1] == Shape([n + 1, n]) else {
        throw NablaError.shapeMismatch(op: op, shapes: [inputs[0], inputs[count - 1]], reason: "the last operand must be the matrix's LU factors")
    }
    return n
}

/// The address of the pivot row of factors `f` of an n x n matrix (they follow the n x n
/// eliminated matrix).
private func pivots(_ f: LoopIR.Operand, _ n: Int) -> LoopIR.Argument { f.address(LoopIR.Index(n * n)) }

/// The LU factorisation with partial pivoting of a square matrix `[n, n]`: the eliminated
/// matrix followed by a row of pivot indices, `[n + 1, n]`.
///
/// An evaluation aid: the matrix functions read it, but differentiate through the matrix
/// itself, so it has no derivative of its own.
public struct LUFactor: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to a square matrix.
    public init() {}
    public var name: String { "lu" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "lu")
        let n = try squareOrder(inputs[0], "lu")
        return Shape([n + 1, n])
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        TensorData(unchecked: shape, LU.factors(inputs[0].shape[0], inputs[0].scalars))
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] { [nil] }
    public func tangent(_ rule: TangentRule) throws -> Tensor? { nil }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let a = site.inputs[0], f = site.output
        let n = a.extents[0]
        guard n > 0 else { return [] }
        // The runtime copies A into the factors' storage (fast even in TinyCC kernels).
        return [.call(LU.factor, [.integer(n), a.address(), f.address(), pivots(f, n)])]
    }
}

/// det A of a square matrix (a scalar), from its LU factors.
public struct Determinant: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to `[A, F]`, F the `LUFactor` of A.
    public init() {}
    public var name: String { "det" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        _ = try checkFactored(inputs, 2, "det")
        return .scalar
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        TensorData(LU.determinant(inputs[0].shape[0], inputs[1].scalars))
    }

    /// d det / dA = adj(A)^T, the cofactors, which is finite where det A is 0 (det A A^-T is
    /// NaN there).
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil, nil] }
        return [try rule.cotangent * adjugate(rule.inputs[0]).transposed, nil]
    }

    /// d det = tr(adj(A) dA).
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        return sum(try adjugate(rule.inputs[0]).transposed * t)
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let n = site.inputs[0].extents[0], f = site.inputs[1]
        let value: LoopIR.Expression = n == 0 ? .literal(1) : .call(LU.det, [.integer(n), f.address(), pivots(f, n)])
        return [.assign(site.output.place(), value)]
    }
}

/// adj(A) of a square matrix, the transposed matrix of cofactors (det A A^-1 where A is
/// invertible), computed from A's LU factors without division, so it is finite where det A is 0.
public struct Adjugate: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to `[A, F]`, F the `LUFactor` of A.
    public init() {}
    public var name: String { "adj" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        _ = try checkFactored(inputs, 2, "adj")
        return inputs[0]
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        TensorData(unchecked: shape, LU.adjugate(shape[0], inputs[1].scalars))
    }

    /// With Y = adj(A) = det(A) A^-1: dY = (tr(Y dA) Y - Y dA Y) / det A, so
    /// dA = (<G, Y> Y^T - Y^T G Y^T) / det A. Second derivatives of det (which come through
    /// here) are therefore not finite where A is singular; first derivatives are.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil, nil] }
        let y = rule.output, g = rule.cotangent
        let d = try rule.builder.apply(Determinant(), rule.inputs)
        return [try (sum(g * y) * y.transposed - y.transposed.matmul(g).matmul(y.transposed)) / d, nil]
    }

    /// dY = (tr(Y dA) Y - Y dA Y) / det A.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        let y = rule.output
        let d = try rule.builder.apply(Determinant(), rule.inputs)
        return try (sum(y.transposed * t) * y - y.matmul(t).matmul(y)) / d
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let n = site.inputs[0].extents[0], f = site.inputs[1]
        guard n > 0 else { return [] }
        return [.call(LU.adjugate, [.integer(n), f.address(), pivots(f, n), site.output.address()])]
    }
}

/// log |det A| of a square matrix (a scalar): the sum of the logs of the LU pivots'
/// magnitudes, so it neither overflows nor underflows where det would.
public struct LogAbsDeterminant: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to `[A, F]`, F the `LUFactor` of A.
    public init() {}
    public var name: String { "logdet" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        _ = try checkFactored(inputs, 2, "logdet")
        return .scalar
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        TensorData(LU.logAbsDeterminant(inputs[0].shape[0], inputs[1].scalars))
    }

    /// d log|det A| / dA = A^-T, as the transposed solve A^T X = I.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil, nil] }
        return [try rule.cotangent * inverseTransposed(rule.inputs[0]), nil]
    }

    /// d log|det A| = tr(A^-1 dA), with A^-1 dA as a solve.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        return try matrixTrace(solve(rule.inputs[0], t))
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let n = site.inputs[0].extents[0]
        let value: LoopIR.Expression = n == 0 ? .literal(0) : .call(LU.logAbsDet, [.integer(n), site.inputs[1].address()])
        return [.assign(site.output.place(), value)]
    }
}

/// A^-1 of a square matrix: A X = I solved on its LU factors.
public struct MatrixInverse: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to `[A, F]`, F the `LUFactor` of A.
    public init() {}
    public var name: String { "inv" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        _ = try checkFactored(inputs, 2, "inv")
        return inputs[0]
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let n = shape[0]
        var x = [Double](repeating: 0, count: n * n)
        for i in 0..<n { x[i * n + i] = 1 }
        LU.apply(n, n, inputs[1].scalars, &x)
        return TensorData(unchecked: shape, x)
    }

    /// With Y = A^-1: dA = -Y^T G Y^T, reusing the result.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil, nil] }
        let yt = rule.output.transposed
        return [try -(yt.matmul(rule.cotangent).matmul(yt)), nil]
    }

    /// dY = -Y dA Y.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        let y = rule.output
        return try -(y.matmul(t).matmul(y))
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let n = site.inputs[0].extents[0], f = site.inputs[1], out = site.output
        guard n > 0 else { return [] }
        let diagonal = LoopIR.Index(0, [.init(.flat, n + 1)])
        return LoopIR.fill(out, with: 0) + [
            .loop(LoopIR.Loop(.flat, to: n, body: [.assign(out.place(diagonal), .literal(1))])),
            .call(LU.applyFactors, [.integer(n), .integer(n), f.address(), pivots(f, n), out.address()]),
        ]
    }
}

/// The solution X of A X = B (or A^T X = B when `transposed`) for a square A and B a vector
/// [n] or a matrix [n, k] of right-hand sides (the result is shaped like B), on A's LU factors.
public struct Solve: Operation {
    /// Solve with A^T rather than A (on the same factors).
    public let transposed: Bool

    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to `[A, B, F]`, F the `LUFactor` of A.
    public init(transposed: Bool = false) { self.transposed = transposed }
    public var name: String { transposed ? "solve^T" : "solve" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        let n = try checkFactored(inputs, 3, name)
        let b = inputs[1]
        guard (1...2).contains(b.rank), b[0] == n else {
            throw NablaError.shapeMismatch(op: "solve", shapes: [inputs[0], b], reason: "the right-hand side must be a vector [\(n)] or a matrix [\(n), k]")
        }
        return b
    }

    /// Right-hand sides per row.
    private func columns(_ b: Shape) -> Int { b.rank == 2 ? b[1] : 1 }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let n = inputs[0].shape[0]
        var x = inputs[1].scalars
        if transposed {
            LU.applyTransposed(n, columns(shape), inputs[2].scalars, &x)
        } else {
            LU.apply(n, columns(shape), inputs[2].scalars, &x)
        }
        return TensorData(unchecked: shape, x)
    }

    /// With X = A^-1 B: gB = A^-T G, gA = -gB X^T. With X = A^-T B: gB = A^-1 G, gA = -X gB^T.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] || rule.needsGradient[1] else { return [nil, nil, nil] }
        let a = rule.inputs[0], x = rule.output
        let gb = transposed ? try solve(a, rule.cotangent) : try solveTransposed(a, rule.cotangent)
        var ga: Tensor?
        if rule.needsGradient[0] {
            let (left, right) = transposed ? (x, gb) : (gb, x)
            ga = try -(x.shape.rank == 1 ? outer(left, right) : left.matmul(right.transposed))
        }
        return [ga, rule.needsGradient[1] ? gb : nil, nil]
    }

    /// dX = A^-1 (dB - dA X), or A^-T (dB - dA^T X).
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        let a = rule.inputs[0], x = rule.output
        var rhs: Tensor?
        if let tb = rule.tangents[1] { rhs = tb }
        if let ta = rule.tangents[0] {
            let term = try (transposed ? ta.transposed : ta).matmul(x)
            rhs = try rhs.map { try $0 - term } ?? -term
        }
        guard let rhs else { return nil }
        return transposed ? try solveTransposed(a, rhs) : try solve(a, rhs)
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let a = site.inputs[0], b = site.inputs[1], f = site.inputs[2], out = site.output
        let n = a.extents[0], m = columns(Shape(b.extents))
        guard n > 0, out.count > 0 else { return [] }
        let solveInPlace: LoopIR.Statement = transposed
            ? .call(LU.applyTransposedFactors, [.integer(n), .integer(m), f.address(), pivots(f, n), out.address(), .integer(0)])
            : .call(LU.applyFactors, [.integer(n), .integer(m), f.address(), pivots(f, n), out.address()])
        return LoopIR.copy(from: b, strides: b.strides, into: out, mayUnroll: false) + [solveInPlace]
    }
}

/// A^-T of a square matrix: exactly `solveTransposed(A, I)` (the same arithmetic on A's LU
/// factors, so the same bits), with the identity implied instead of an n x n constant operand,
/// so kernels neither store nor copy it and the runtime knows what it starts from. The
/// gradients of det and logdet use it.
///
/// Its rules are Solve's for a constant right-hand side, so derivative graphs are the same as
/// with `solveTransposed(A, I)`: no explicit inverse, only solves and products.
public struct InverseTransposed: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to `[A, F]`, F the `LUFactor` of A.
    public init() {}
    public var name: String { "inv^T" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        _ = try checkFactored(inputs, 2, "inv^T")
        return inputs[0]
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let n = shape[0]
        var x = [Double](repeating: 0, count: n * n)
        for i in 0..<n { x[i * n + i] = 1 }
        LU.applyTransposed(n, n, inputs[1].scalars, &x)
        return TensorData(unchecked: shape, x)
    }

    /// With X = A^-T I: gA = -X (A^-1 G)^T, Solve's rule with nothing flowing to I.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil, nil] }
        let gb = try solve(rule.inputs[0], rule.cotangent)
        return [try -(rule.output.matmul(gb.transposed)), nil]
    }

    /// dX = A^-T (-dA^T X), Solve's rule with a constant right-hand side.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        return try solveTransposed(rule.inputs[0], -(t.transposed.matmul(rule.output)))
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let n = site.inputs[0].extents[0], f = site.inputs[1]
        guard n > 0 else { return [] }
        return [.call(LU.applyTransposedFactors, [.integer(n), .integer(n), f.address(), pivots(f, n), site.output.address(), .integer(1)])]
    }
}
