import Foundation

// The Cholesky factorisation and triangular solves: how Gaussian-process and other
// symmetric positive definite models are usually written (K = L L^T, alpha = L^-T L^-1 y,
// log det K = 2 sum log diag L).
//
// Conventions (those of LAPACK, NumPy and SciPy): `cholesky(A)` reads the lower triangle of A
// only and returns the lower factor L with zeros above the diagonal; a triangular solve reads
// only the triangle it is told to. Derivatives follow what is read: the gradient of a function
// of `cholesky(A)` with respect to A is zero above the diagonal, and for a symmetric A built
// from parameters (A = B B^T + s I) it gives the same total derivatives as the symmetrised
// convention of JAX and PyTorch. The rules are the blocked matrix rules of Murray (2016),
// "Differentiation of the Cholesky decomposition", built from triangular solves and
// `Triangle`, so derivative graphs can be differentiated again.
//
// Numerics. `Triangular` below (the interpreter) and runtime/nabla_linalg_code.h (kernels) do
// the same arithmetic per entry in the same order, so kernels and the interpreter round
// identically. A matrix that
// is not positive definite gives the square root of a negative number, NaN, which propagates;
// every loop has fixed bounds.

/// The interpreter's half of the numerics; the C half is in the runtime (and `Triangle`'s helper).
enum Triangular {
    /// The lower Cholesky factor of the n x n row-major `a`, from its lower triangle: column by
    /// column, each entry's products subtracted in increasing order, then a square root (on the
    /// diagonal) or a division by the column's diagonal entry.
    static func cholesky(_ n: Int, _ a: [Double]) -> [Double] {
        var l = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            var d = a[j * n + j]
            for k in 0..<j { d = d - l[j * n + k] * l[j * n + k] }
            let r = d.squareRoot()
            l[j * n + j] = r
            for i in (j + 1)..<n {
                var s = a[i * n + j]
                for k in 0..<j { s = s - l[i * n + k] * l[j * n + k] }
                l[i * n + j] = s / r
            }
        }
        return l
    }

    /// The pullback of `cholesky`: the cotangent of the lower triangle of A from the factor
    /// `l` and the cotangent `b` of L (their lower triangles read), the reverse of `cholesky`'s
    /// loops (Murray 2016, unblocked; n^3/3 multiply-adds). Columns from the last back: each
    /// entry (i, k), i >= k, is b_ik minus m_ij l_jk for j from n - 1 down to k + 1, where m
    /// holds A-bar + A-bar^T as far as it is finished (its diagonal 2 a_kk), then divided by
    /// l_kk; the entries below the diagonal first, the diagonal last, which is halved at the end.
    static func choleskyAdjoint(_ n: Int, _ l: [Double], _ b: [Double]) -> [Double] {
        var m = [Double](repeating: 0, count: n * n)
        for k in stride(from: n - 1, through: 0, by: -1) {
            let d = l[k * n + k]
            for i in (k + 1)..<n {
                var r = b[i * n + k]
                for j in stride(from: n - 1, to: k, by: -1) { r = r - m[i * n + j] * l[j * n + k] }
                m[i * n + k] = r / d
                m[k * n + i] = r / d
            }
            var r = b[k * n + k]
            for j in stride(from: n - 1, to: k, by: -1) { r = r - m[k * n + j] * l[j * n + k] }
            m[k * n + k] = r / d
        }
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<i { a[i * n + j] = m[i * n + j] }
            a[i * n + i] = 0.5 * m[i * n + i]
        }
        return a
    }

    /// Solves op(T) X = B for the n x m right-hand sides `x` (overwritten), T's `lower` (or
    /// upper) triangle only, op(T) = T^T when `transpose`: substitution row by row (forward when
    /// op(T) is lower triangular), each row's terms subtracted in the order its rows were
    /// solved, then one division.
    static func solve(_ n: Int, _ m: Int, _ t: [Double], _ x: inout [Double], lower: Bool, transpose: Bool) {
        let forward = lower != transpose
        for s in 0..<n {
            let i = forward ? s : n - 1 - s
            for q in 0..<s {
                let k = forward ? q : n - 1 - q
                let c = transpose ? t[k * n + i] : t[i * n + k]
                for j in 0..<m { x[i * m + j] = x[i * m + j] - c * x[k * m + j] }
            }
            let d = t[i * n + i]
            for j in 0..<m { x[i * m + j] = x[i * m + j] / d }
        }
    }

    /// The lower (or upper) triangle of the r x c row-major `x`, its diagonal times `diagonal`,
    /// zeros elsewhere.
    static func triangle(_ r: Int, _ c: Int, _ x: [Double], lower: Bool, diagonal: Double) -> [Double] {
        var y = [Double](repeating: 0, count: r * c)
        for i in 0..<r {
            for j in 0..<c {
                if i == j {
                    y[i * c + j] = x[i * c + j] * diagonal
                } else if (j < i) == lower {
                    y[i * c + j] = x[i * c + j]
                }
            }
        }
        return y
    }

    /// `cholesky` in C: runtime/nabla_linalg_code.h (right-looking, the same arithmetic per
    /// entry), optimised in the runtime for JIT kernels, carried as a static function by
    /// standalone C.
    static let choleskyFunction = CFunction("nabla_cholesky", returns: .void, [
        .init(.long, "n"), .init(.constDoublePointer, "a"), .init(.doublePointer, "l"),
    ], origin: .runtime(standalone: LU.runtimeText["nabla_cholesky"]), calls: [.sqrt])

    /// `choleskyAdjoint` in C: runtime/nabla_linalg_code.h (blocked, the same arithmetic per
    /// entry).
    static let choleskyAdjointFunction = CFunction("nabla_cholesky_adjoint", returns: .void, [
        .init(.long, "n"), .init(.constDoublePointer, "l"), .init(.constDoublePointer, "b"), .init(.doublePointer, "a"),
    ], origin: .runtime(standalone: LU.runtimeText["nabla_cholesky_adjoint"]))

    /// `solve` in C, after copying the right-hand sides `b` into `x`: the runtime's.
    static let solveFunction = CFunction("nabla_triangular_solve", returns: .void, [
        .init(.long, "n"), .init(.long, "m"), .init(.constDoublePointer, "t"), .init(.constDoublePointer, "b"),
        .init(.doublePointer, "x"), .init(.long, "lower"), .init(.long, "transpose"),
    ], origin: .runtime(standalone: LU.runtimeText["nabla_triangular_solve"]), calls: [solveColumnsFunction])

    /// The solve for the right-hand sides in columns [jb, je) alone, which `solveFunction`
    /// calls (the runtime runs blocks of columns on several threads).
    static let solveColumnsFunction = CFunction("nabla_triangular_solve_columns", returns: .void, [
        .init(.long, "n"), .init(.long, "m"), .init(.constDoublePointer, "t"), .init(.doublePointer, "x"),
        .init(.long, "lower"), .init(.long, "transpose"), .init(.long, "jb"), .init(.long, "je"),
    ], origin: .runtime(standalone: LU.runtimeText["nabla_triangular_solve_columns"]))

    /// The C of `triangle`.
    static let triangleHelper = CFunction("nabla_triangle", returns: .void, [
        .init(.long, "r"), .init(.long, "c"), .init(.constDoublePointer, "x"), .init(.doublePointer, "y"),
        .init(.long, "lower"), .init(.double, "diagonal"),
    ], origin: .helper(definition: """
        static void nabla_triangle(long r, long c, const double *x, double *y, long lower, double diagonal) {
            long i, j;
            for (i = 0; i < r; i++) {
                for (j = 0; j < c; j++) {
                    if (i == j) y[i * c + j] = x[i * c + j] * diagonal;
                    else if ((j < i) == (lower != 0)) y[i * c + j] = x[i * c + j];
                    else y[i * c + j] = 0.0;
                }
            }
        }
        """))
}

// MARK: - Operations

/// The lower Cholesky factor L of a symmetric positive definite matrix, A = L L^T, from A's
/// lower triangle (the upper one is not read); zeros above the diagonal. NaN where A is not
/// positive definite.
public struct CholeskyFactor: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to a square matrix.
    public init() {}
    public var name: String { "cholesky" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "cholesky")
        _ = try squareOrder(inputs[0], "cholesky")
        return inputs[0]
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        TensorData(unchecked: shape, Triangular.cholesky(shape[0], inputs[0].scalars))
    }

    /// A-bar = Phi(S + S^T), S = L^-T Phi(L^T L-bar) L^-1, Phi the lower triangle with the
    /// diagonal halved: the gradient with respect to the lower triangle A is read from,
    /// computed by `CholeskyAdjoint` (Murray's reverse loops, n^3/3 multiply-adds rather than
    /// the formula's 2 n^3).
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        return [try choleskyAdjoint(rule.output, rule.cotangent)]
    }

    /// dL = L Phi(L^-1 dA L^-T), dA the symmetric matrix of dA's lower triangle.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        let l = rule.output
        let symmetric = try triangle(t, lower: true, diagonal: 1) + triangle(t, lower: true, diagonal: 0).transposed
        let y = try solveTriangular(l, symmetric, lower: true)
        let m = try solveTriangular(l, y.transposed, lower: true).transposed
        return try l.matmul(triangle(m, lower: true, diagonal: 0.5))
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let n = site.output.extents[0]
        guard n > 0 else { return [] }
        return [.call(Triangular.choleskyFunction, [.integer(n), site.inputs[0].address(), site.output.address()])]
    }
}

/// The pullback of `cholesky`: from a factor L and a cotangent B of L (the lower triangles of
/// both read), the cotangent of the factored matrix's lower triangle,
/// F(L, B) = Phi(S + S^T) with S = L^-T Phi(L^T B) L^-1 and Phi the lower triangle with the
/// diagonal halved. Evaluated by Murray's (2016) reverse of the factorisation's loops, blocked
/// in the runtime. Its own derivatives (for Hessians through a Cholesky factor) are those of
/// the formula, written with triangular solves; K = F + F^T recovers S + S^T from the result.
public struct CholeskyAdjoint: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to `[L, B]`.
    public init() {}
    public var name: String { "cholesky_adjoint" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 2, "cholesky_adjoint")
        let n = try squareOrder(inputs[0], "cholesky_adjoint")
        guard inputs[1] == inputs[0] else {
            throw NablaError.shapeMismatch(op: "cholesky_adjoint", shapes: inputs, reason: "the cotangent must have the factor's shape [\(n), \(n)]")
        }
        return inputs[0]
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        TensorData(unchecked: shape, Triangular.choleskyAdjoint(shape[0], inputs[0].scalars, inputs[1].scalars))
    }

    /// With H = Phi(G), J = H + H^T and N = L^-1 J L^-T: B-bar = L Phi(N) (the tangent map of
    /// `cholesky`, the adjoint of this linear map of B), L-bar = tril(B Phi(N)^T - K J L^-T).
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        let l = rule.inputs[0], b = try triangle(rule.inputs[1], lower: true)
        let h = try triangle(rule.cotangent, lower: true, diagonal: 0.5)
        let j = try h + h.transposed
        let y = try solveTriangular(l, j, lower: true)
        let phiN = try triangle(solveTriangular(l, y.transposed, lower: true), lower: true, diagonal: 0.5)
        let bBar = rule.needsGradient[1] ? try triangle(l.matmul(phiN), lower: true) : nil
        guard rule.needsGradient[0] else { return [nil, bBar] }
        let k = try rule.output + rule.output.transposed
        let kjInverse = try solveTriangular(l, j.matmul(k), lower: true).transposed
        return [try triangle(b.matmul(phiN.transposed) - kjInverse, lower: true), bBar]
    }

    /// dF = F(L, dB + L^-T dL^T B) - Phi(M + M^T), M^T = L^-T dL^T K, dL and B on their lower
    /// triangles.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        let l = rule.inputs[0]
        var change = rule.tangents[1]
        var correction: Tensor?
        if let dl = rule.tangents[0] {
            let dlT = try triangle(dl, lower: true).transposed
            let moved = try solveTriangular(l, dlT.matmul(triangle(rule.inputs[1], lower: true)), lower: true, transpose: true)
            change = try change.map { try $0 + moved } ?? moved
            let k = try rule.output + rule.output.transposed
            let mT = try solveTriangular(l, dlT.matmul(k), lower: true, transpose: true)
            correction = try triangle(mT + mT.transposed, lower: true, diagonal: 0.5)
        }
        let linear = try change.map { try choleskyAdjoint(l, $0) }
        switch (linear, correction) {
        case let (linear?, correction?): return try linear - correction
        case let (linear?, nil): return linear
        case let (nil, correction?): return -correction
        case (nil, nil): return nil
        }
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let n = site.output.extents[0]
        guard n > 0 else { return [] }
        return [.call(Triangular.choleskyAdjointFunction, [.integer(n), site.inputs[0].address(), site.inputs[1].address(), site.output.address()])]
    }
}

/// The solution X of op(T) X = B, T a triangular matrix `[n, n]` of which only the `lower`
/// (or upper) triangle is read, op(T) = T^T with `transpose`, B `[n]` or `[n, m]`.
public struct TriangularSolve: Operation {
    /// True to read T's lower triangle (with the diagonal), false for the upper one.
    public let lower: Bool
    /// True to solve with T^T.
    public let transpose: Bool

    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to `[T, B]`.
    public init(lower: Bool, transpose: Bool) {
        self.lower = lower
        self.transpose = transpose
    }

    public var name: String { "solve_triangular[\(lower ? "lower" : "upper")\(transpose ? ", transpose" : "")]" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 2, "solve_triangular")
        let n = try squareOrder(inputs[0], "solve_triangular")
        let b = inputs[1]
        guard (b.rank == 1 || b.rank == 2) && b[0] == n else {
            throw NablaError.shapeMismatch(op: "solve_triangular", shapes: inputs, reason: "the right-hand side must be [n] or [n, m] for an [n, n] matrix")
        }
        return b
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let n = inputs[0].shape[0]
        var x = inputs[1].scalars
        Triangular.solve(n, n == 0 ? 0 : x.count / n, inputs[0].scalars, &x, lower: lower, transpose: transpose)
        return TensorData(unchecked: shape, x)
    }

    /// B-bar = op(T)^-T X-bar; T-bar = -B-bar X^T (transposed when op is), on T's triangle.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        let t = rule.inputs[0], x = rule.output
        let bBar = try solveTriangular(t, rule.cotangent, lower: lower, transpose: !transpose)
        guard rule.needsGradient[0] else { return [nil, bBar] }
        let product = transpose ? try columns(x).matmul(columns(bBar).transposed) : try columns(bBar).matmul(columns(x).transposed)
        return [try triangle(-product, lower: lower, diagonal: 1), rule.needsGradient[1] ? bBar : nil]
    }

    /// dX = op(T)^-1 (dB - op(dT) X), dT on T's triangle.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        let t = rule.inputs[0], x = rule.output
        var change = rule.tangents[1]
        if let dt = rule.tangents[0] {
            let part = try triangle(dt, lower: lower, diagonal: 1)
            let moved = try (transpose ? part.transposed : part).matmul(columns(x)).reshaped(x.shape)
            change = try change.map { try $0 - moved } ?? -moved
        }
        return try change.map { try solveTriangular(t, $0, lower: lower, transpose: transpose) }
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let n = site.inputs[0].extents[0]
        guard n > 0, site.output.count > 0 else { return [] }
        return [.call(Triangular.solveFunction, [
            .integer(n), .integer(site.output.count / n), site.inputs[0].address(), site.inputs[1].address(),
            site.output.address(), .integer(lower ? 1 : 0), .integer(transpose ? 1 : 0),
        ])]
    }
}

/// The lower (or upper) triangle of a matrix, its diagonal scaled by a constant, zeros
/// elsewhere: linear, its own adjoint. Derivatives of Cholesky factors are written with it.
public struct Triangle: Operation {
    /// True to keep the entries below the diagonal, false for those above it.
    public let lower: Bool
    /// The factor of the diagonal (1 keeps it, 0 drops it, 0.5 halves it).
    public let diagonal: Double

    /// The operation, to apply with `GraphBuilder.apply(_:_:)` to a matrix.
    public init(lower: Bool, diagonal: Double) {
        self.lower = lower
        self.diagonal = diagonal
    }

    public var name: String { "triangle[\(lower ? "lower" : "upper"), diagonal \(diagonal)]" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "triangle")
        guard inputs[0].rank == 2 else {
            throw NablaError.shapeMismatch(op: "triangle", shapes: inputs, reason: "needs a matrix")
        }
        return inputs[0]
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        TensorData(unchecked: shape, Triangular.triangle(shape[0], shape[1], inputs[0].scalars, lower: lower, diagonal: diagonal))
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        rule.needsGradient[0] ? [try triangle(rule.cotangent, lower: lower, diagonal: diagonal)] : [nil]
    }

    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        try rule.tangents[0].map { try triangle($0, lower: lower, diagonal: diagonal) }
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let (r, c) = (site.output.extents[0], site.output.extents[1])
        guard r * c > 0 else { return [] }
        return [.call(Triangular.triangleHelper, [
            .integer(r), .integer(c), site.inputs[0].address(), site.output.address(), .integer(lower ? 1 : 0), .value(.literal(diagonal)),
        ])]
    }
}

/// A vector as a one-column matrix; a matrix as it is.
private func columns(_ x: Tensor) throws -> Tensor {
    x.shape.rank == 1 ? try x.reshaped([x.shape[0], 1]) : x
}

// MARK: - Builder functions

/// The lower Cholesky factor L of a symmetric positive definite `a` (A = L L^T), from its
/// lower triangle; zeros above the diagonal.
/// - Throws: `NablaError.shapeMismatch` unless `a` is square.
public func cholesky(_ a: Tensor) throws -> Tensor {
    try a.builder.apply(CholeskyFactor(), [a])
}

/// X with op(T) X = B, reading only T's `lower` (or upper) triangle; op(T) = T^T with
/// `transpose`. `b` is `[n]` or `[n, m]`.
/// - Throws: `NablaError.shapeMismatch` unless `t` is `[n, n]` and `b` has n rows.
public func solveTriangular(_ t: Tensor, _ b: Tensor, lower: Bool = true, transpose: Bool = false) throws -> Tensor {
    try t.builder.apply(TriangularSolve(lower: lower, transpose: transpose), [t, b])
}

/// The pullback of `cholesky` (`CholeskyAdjoint`): the cotangent of the factored matrix's
/// lower triangle from the factor `l` and the cotangent `b` of the factor.
/// - Throws: `NablaError.shapeMismatch` unless both are `[n, n]`.
public func choleskyAdjoint(_ l: Tensor, _ b: Tensor) throws -> Tensor {
    try l.builder.apply(CholeskyAdjoint(), [l, b])
}

/// A^-1 b from the lower Cholesky factor `l` of A: two triangular solves, L^-T (L^-1 b).
public func choleskySolve(_ l: Tensor, _ b: Tensor) throws -> Tensor {
    try solveTriangular(l, solveTriangular(l, b, lower: true), lower: true, transpose: true)
}

/// log det A from the lower Cholesky factor `l` of A: 2 sum(log(diag(L))).
/// - Throws: `NablaError.shapeMismatch` unless `l` is square.
public func logdet(cholesky l: Tensor) throws -> Tensor {
    if try squareOrder(l.shape, "cho_logdet") == 0 { return l.builder.constant(0) }
    return 2 * sum(log(try matrixDiagonal(l)))
}

/// The lower (or upper) triangle of a matrix, its diagonal times `diagonal`.
public func triangle(_ x: Tensor, lower: Bool, diagonal: Double = 1) throws -> Tensor {
    try x.builder.apply(Triangle(lower: lower, diagonal: diagonal), [x])
}
