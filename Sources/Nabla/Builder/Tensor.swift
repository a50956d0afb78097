/// A symbolic f64 tensor: a node of the graph a `GraphBuilder` is building.
///
/// Combine tensors with the arithmetic operators and the functions in this module; each call
/// appends a node and checks shapes at once. Operations between two tensors can fail (their
/// shapes may not broadcast) and so are marked `throws`; one `try` covers a whole expression:
///
/// ```swift
/// let L = try 0.5 * sum(square(y - Phi.matmul(theta)))
/// ```
public struct Tensor {
    /// The builder whose graph holds this tensor.
    public let builder: GraphBuilder
    /// Index of this tensor's node in the builder.
    public let id: Int

    /// The static shape.
    public var shape: Shape { builder.nodes[id].shape }

    /// The operation that produced this tensor.
    public var operation: any Operation { builder.nodes[id].operation }

    /// A scalar constant in the same builder.
    func constant(_ value: Double) -> Tensor { builder.constant(value) }
}

// MARK: - Arithmetic

precedencegroup ExponentiationPrecedence {
    higherThan: MultiplicationPrecedence
    associativity: right
}

/// Elementwise power: `x ** 2`, `a ** b`.
infix operator **: ExponentiationPrecedence

extension Tensor {
    /// Elementwise sum, broadcasting as NumPy does.
    /// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
    public static func + (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Add(), [lhs, rhs]) }
    /// Elementwise difference, broadcasting.
    /// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
    public static func - (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Subtract(), [lhs, rhs]) }
    /// Elementwise product (not a matrix product: see `matmul`), broadcasting.
    /// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
    public static func * (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Multiply(), [lhs, rhs]) }
    /// Elementwise quotient, broadcasting.
    /// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
    public static func / (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Divide(), [lhs, rhs]) }
    /// Elementwise power with a tensor exponent (broadcasting).
    public static func ** (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Power(), [lhs, rhs]) }

    // A scalar operand always broadcasts, so these cannot fail.
    /// Adds a constant to every element.
    public static func + (lhs: Tensor, rhs: Double) -> Tensor { try! lhs + lhs.constant(rhs) }
    /// Adds a constant to every element.
    public static func + (lhs: Double, rhs: Tensor) -> Tensor { try! rhs.constant(lhs) + rhs }
    /// Subtracts a constant from every element.
    public static func - (lhs: Tensor, rhs: Double) -> Tensor { try! lhs - lhs.constant(rhs) }
    /// A constant minus every element.
    public static func - (lhs: Double, rhs: Tensor) -> Tensor { try! rhs.constant(lhs) - rhs }
    /// Multiplies every element by a constant.
    public static func * (lhs: Tensor, rhs: Double) -> Tensor { try! lhs * lhs.constant(rhs) }
    /// Multiplies every element by a constant.
    public static func * (lhs: Double, rhs: Tensor) -> Tensor { try! rhs.constant(lhs) * rhs }
    /// Divides every element by a constant.
    public static func / (lhs: Tensor, rhs: Double) -> Tensor { try! lhs / lhs.constant(rhs) }
    /// A constant divided by every element.
    public static func / (lhs: Double, rhs: Tensor) -> Tensor { try! rhs.constant(lhs) / rhs }
    /// Elementwise power with a constant exponent; `x ** 2` compiles to a multiplication.
    public static func ** (lhs: Tensor, rhs: Double) -> Tensor { pow(lhs, rhs) }
    /// A constant raised to a tensor power, elementwise.
    public static func ** (lhs: Double, rhs: Tensor) -> Tensor { try! rhs.constant(lhs) ** rhs }

    /// Elementwise negation.
    public static prefix func - (operand: Tensor) -> Tensor { operand.unary(Negate()) }

    func unary(_ operation: some Operation) -> Tensor {
        // Elementwise unary operations accept every shape.
        try! builder.apply(operation, [self])
    }
}

// MARK: - Elementwise functions

/// Elementwise power with a constant exponent.
public func pow(_ x: Tensor, _ exponent: Double) -> Tensor {
    if exponent == 1 { return x }
    return x.unary(PowConstant(exponent: exponent))
}
/// Elementwise power with a tensor exponent (broadcasting).
public func pow(_ x: Tensor, _ exponent: Tensor) throws -> Tensor { try x ** exponent }
/// Elementwise square, `x * x`.
public func square(_ x: Tensor) -> Tensor { pow(x, 2) }
/// Elementwise square root.
public func sqrt(_ x: Tensor) -> Tensor { x.unary(Sqrt()) }
/// Elementwise e^x.
public func exp(_ x: Tensor) -> Tensor { x.unary(Exp()) }
/// Natural logarithm.
public func log(_ x: Tensor) -> Tensor { x.unary(Log()) }
/// Elementwise sine (radians).
public func sin(_ x: Tensor) -> Tensor { x.unary(Sin()) }
/// Elementwise cosine (radians).
public func cos(_ x: Tensor) -> Tensor { x.unary(Cos()) }
/// Elementwise tangent (radians).
public func tan(_ x: Tensor) -> Tensor { x.unary(Tan()) }
/// Elementwise hyperbolic tangent.
public func tanh(_ x: Tensor) -> Tensor { x.unary(Tanh()) }
/// Logistic function 1 / (1 + e^-x), computed without overflow for large |x|.
public func sigmoid(_ x: Tensor) -> Tensor { x.unary(Sigmoid()) }
/// max(x, 0); its derivative at 0 is taken as 0.
public func relu(_ x: Tensor) -> Tensor { x.unary(Relu()) }
/// |x|; its derivative at 0 is taken as 0.
public func abs(_ x: Tensor) -> Tensor { x.unary(Abs()) }
/// log(1 + e^x), computed without overflow for large x.
public func softplus(_ x: Tensor) -> Tensor { x.unary(Softplus()) }
/// 1 where x > 0, else 0 (derivative zero everywhere it is defined).
public func step(_ x: Tensor) -> Tensor { x.unary(Step()) }
/// -1, 0 or 1 by the sign of x (derivative zero everywhere it is defined).
public func sign(_ x: Tensor) -> Tensor { x.unary(Sign()) }

// MARK: - Reductions

/// Sum of all elements (a scalar).
public func sum(_ x: Tensor) -> Tensor {
    try! x.builder.apply(Sum(axes: Array(0..<x.shape.rank)), [x])
}
/// Sum over the given axes, which are removed from the shape. Negative axes count from the end.
public func sum(_ x: Tensor, axes: [Int]) throws -> Tensor {
    try x.builder.apply(Sum(axes: normalizedAxes(axes, rank: x.shape.rank, op: "sum")), [x])
}
/// Sum over one axis.
public func sum(_ x: Tensor, axis: Int) throws -> Tensor { try sum(x, axes: [axis]) }
/// Mean of all elements (a scalar).
public func mean(_ x: Tensor) -> Tensor {
    sum(x) * (1.0 / Double(max(x.shape.count, 1)))
}
/// Mean over the given axes, which are removed from the shape.
public func mean(_ x: Tensor, axes: [Int]) throws -> Tensor {
    let axes = try normalizedAxes(axes, rank: x.shape.rank, op: "mean")
    let n = axes.reduce(1) { $0 * x.shape[$1] }
    return try sum(x, axes: axes) * (1.0 / Double(max(n, 1)))
}
/// Mean over one axis.
public func mean(_ x: Tensor, axis: Int) throws -> Tensor { try mean(x, axes: [axis]) }

func normalizedAxes(_ axes: [Int], rank: Int, op: String) throws -> [Int] {
    var result: [Int] = []
    for axis in axes {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < rank else {
            throw NablaError.invalidArgument(op: op, reason: "axis \(axis) is out of range for rank \(rank)")
        }
        guard !result.contains(a) else {
            throw NablaError.invalidArgument(op: op, reason: "axis \(axis) is given twice")
        }
        result.append(a)
    }
    return result.sorted()
}

// MARK: - Linear algebra and layout

extension Tensor {
    /// Matrix product: matrix-matrix, matrix-vector, vector-matrix, or vector-vector (a scalar).
    public func matmul(_ other: Tensor) throws -> Tensor { try builder.apply(MatMul(), [self, other]) }

    /// Reverses the axes (the matrix transpose for rank 2).
    public var transposed: Tensor { try! transposed(Array((0..<shape.rank).reversed())) }

    /// Permutes the axes: axis `i` of the result is axis `permutation[i]` of this tensor.
    public func transposed(_ permutation: [Int]) throws -> Tensor {
        try builder.apply(Transpose(permutation: permutation), [self])
    }

    /// The same elements, row-major, in a new shape with the same element count.
    public func reshaped(_ shape: Shape) throws -> Tensor {
        if shape == self.shape { return self }
        return try builder.apply(Reshape(shape: shape), [self])
    }

    /// Broadcasts to a larger shape under NumPy rules.
    public func broadcast(to shape: Shape) throws -> Tensor {
        if shape == self.shape { return self }
        return try builder.apply(BroadcastTo(shape: shape), [self])
    }

    /// Elements along each axis from `start` up to (not including) `end` in steps of `step`.
    ///
    /// One `SliceRange` per leading axis; axes beyond them are kept whole. Integer indices drop
    /// their axis. Negative bounds count from the end, as in NumPy.
    public func slice(_ ranges: [SliceRange]) throws -> Tensor {
        guard ranges.count <= shape.rank else {
            throw NablaError.invalidArgument(op: "slice", reason: "\(ranges.count) indices for a tensor of rank \(shape.rank) (shape \(shape))")
        }
        var starts: [Int] = [], ends: [Int] = [], steps: [Int] = [], dropped: [Int] = []
        for axis in 0..<shape.rank {
            let n = shape[axis]
            let range = axis < ranges.count ? ranges[axis] : .all
            switch range {
            case let .index(i):
                let j = i < 0 ? i + n : i
                guard j >= 0, j < n else {
                    throw NablaError.invalidArgument(op: "index", reason: "index \(i) is out of range for axis \(axis) of extent \(n) (shape \(shape))")
                }
                starts.append(j); ends.append(j + 1); steps.append(1); dropped.append(axis)
            case let .range(start, end, step):
                guard step > 0 else {
                    throw NablaError.invalidArgument(op: "slice", reason: "step \(step) must be positive")
                }
                func clamp(_ v: Int?, _ fallback: Int) -> Int {
                    guard let v else { return fallback }
                    return Swift.min(Swift.max(v < 0 ? v + n : v, 0), n)
                }
                let s = clamp(start, 0), e = Swift.max(clamp(end, n), clamp(start, 0))
                starts.append(s); ends.append(e); steps.append(step)
            }
        }
        var result = self
        if starts != Array(repeating: 0, count: shape.rank) || ends != shape.dims || steps.contains(where: { $0 != 1 }) {
            result = try builder.apply(Slice(starts: starts, ends: ends, steps: steps), [self])
        }
        if !dropped.isEmpty {
            let kept = result.shape.dims.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
            result = try result.reshaped(Shape(kept))
        }
        return result
    }

    /// `x[1...]`-style slicing: see `slice(_:)`.
    public subscript(_ ranges: SliceRange...) -> Tensor {
        get throws { try slice(ranges) }
    }
}

/// One axis of a slice: a single index (which drops the axis) or a strided range.
public enum SliceRange: Hashable, Sendable, ExpressibleByIntegerLiteral {
    case index(Int)
    /// Elements from `start` (default 0) to `end` (default the extent), every `step`-th.
    case range(start: Int?, end: Int?, step: Int)

    /// The whole axis.
    public static let all = SliceRange.range(start: nil, end: nil, step: 1)

    /// A single index, `x[i]`: picks element `i` of the axis and drops the axis (negative counts from the end).
    public init(integerLiteral value: Int) { self = .index(value) }

    /// `from...` in NumPy's `x[from:]`.
    public static func from(_ start: Int) -> SliceRange { .range(start: start, end: nil, step: 1) }
    /// `x[:end]`.
    public static func upTo(_ end: Int) -> SliceRange { .range(start: nil, end: end, step: 1) }
    /// `x[start:end]`.
    public static func between(_ start: Int, _ end: Int) -> SliceRange { .range(start: start, end: end, step: 1) }
}

/// Outer product of two vectors: `a[i] * b[j]`.
public func outer(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard a.shape.rank == 1, b.shape.rank == 1 else {
        throw NablaError.shapeMismatch(op: "outer", shapes: [a.shape, b.shape], reason: "both operands must be vectors")
    }
    return try a.reshaped([a.shape[0], 1]) * b.reshaped([1, b.shape[0]])
}

// MARK: - Matrix calculus

/// The determinant of a square matrix `[n, n]` (a scalar), by LU factorisation with partial
/// pivoting. A singular matrix gives ±0 (or whatever rounding leaves), never an error.
///
/// Its gradient is det(A) A^-T, formed as a solve with A^T.
public func det(_ A: Tensor) throws -> Tensor { try A.builder.apply(Determinant(), [A, luFactors(A)]) }

/// The LU factors of a square matrix, one node per matrix however many functions use them.
func luFactors(_ A: Tensor) throws -> Tensor { try A.builder.apply(LUFactor(), [A]) }

/// adj(A), the transposed matrix of cofactors of a square matrix (det A A^-1 where A is
/// invertible, and finite where it is not).
public func adjugate(_ A: Tensor) throws -> Tensor { try A.builder.apply(Adjugate(), [A, luFactors(A)]) }

/// log |det A| of a square matrix (a scalar): the sum of the logs of the LU pivots'
/// magnitudes, so it stays finite where det itself would overflow or underflow. A singular
/// matrix gives -inf.
///
/// Its gradient is A^-T, formed as a solve with A^T; it can be differentiated again (Hessians
/// of log-determinants work).
public func logdet(_ A: Tensor) throws -> Tensor { try A.builder.apply(LogAbsDeterminant(), [A, luFactors(A)]) }

/// The inverse of a square matrix, by LU factorisation with partial pivoting. A singular
/// matrix gives infinities or NaN. Prefer `solve(A, b)` to `inv(A).matmul(b)`: it is cheaper
/// and more accurate, and so are its derivatives.
public func inv(_ A: Tensor) throws -> Tensor { try A.builder.apply(MatrixInverse(), [A, luFactors(A)]) }

/// The solution x of A x = b for a square matrix A `[n, n]` and b a vector `[n]` or a matrix
/// `[n, k]` of right-hand sides; the result is shaped like b. By LU factorisation with partial
/// pivoting; a singular A gives infinities or NaN.
public func solve(_ A: Tensor, _ b: Tensor) throws -> Tensor { try A.builder.apply(Solve(), [A, b, luFactors(A)]) }

/// The solution x of A^T x = b, on A's own LU factors (shared with every other function of A).
public func solveTransposed(_ A: Tensor, _ b: Tensor) throws -> Tensor {
    try A.builder.apply(Solve(transposed: true), [A, b, luFactors(A)])
}

/// log(sum(exp(x))) over all elements (a scalar), computed without overflow by subtracting
/// the maximum first. All elements -inf give -inf.
public func logsumexp(_ x: Tensor) -> Tensor {
    try! x.builder.apply(LogSumExp(axes: Array(0..<x.shape.rank)), [x])
}

/// log(sum(exp(x))) over the given axes, which are removed from the shape. Negative axes count
/// from the end.
public func logsumexp(_ x: Tensor, axes: [Int]) throws -> Tensor {
    try x.builder.apply(LogSumExp(axes: normalizedAxes(axes, rank: x.shape.rank, op: "logsumexp")), [x])
}

/// log(sum(exp(x))) over one axis.
public func logsumexp(_ x: Tensor, axis: Int) throws -> Tensor { try logsumexp(x, axes: [axis]) }

/// exp(x) normalised to sum to 1 along `axis` (negative counts from the end), with the maximum
/// subtracted first, so it neither overflows nor loses large equal logits.
public func softmax(_ x: Tensor, axis: Int) throws -> Tensor {
    try x.builder.apply(Softmax(axes: normalizedAxes([axis], rank: x.shape.rank, op: "softmax")), [x])
}

/// log(softmax(x, axis)), computed as (x - max) - log(sum(exp(x - max))): accurate where
/// softmax underflows.
public func logSoftmax(_ x: Tensor, axis: Int) throws -> Tensor {
    try x.builder.apply(LogSoftmax(axes: normalizedAxes([axis], rank: x.shape.rank, op: "log_softmax")), [x])
}
