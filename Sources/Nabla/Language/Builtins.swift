/// A built-in function of the language.
enum Builtin: String, CaseIterable {
    case sin, cos, tan, exp, log, sqrt, tanh, sigmoid, relu, abs, softplus, square
    case pow, sum, mean, dot, outer, transpose, reshape, trace, diag, eye, norm
    case logsumexp, softmax, logSoftmax = "log_softmax", det, logdet, inv, solve, concat
    case cholesky, solveTriangular = "solve_triangular", choSolve = "cho_solve", choLogdet = "cho_logdet"
    case `where`, maximum, minimum, clip, sign, max, min
    case fold, scan, map

    /// The loops: their first argument names a function, lowered as a loop body.
    var isLoop: Bool { self == .fold || self == .scan || self == .map }

    /// How many arguments it takes; `concat` takes three or more, checked on its own.
    var arity: ClosedRange<Int> {
        switch self {
        case .pow, .dot, .outer, .reshape, .solve, .maximum, .minimum, .choSolve: return 2...2
        case .solveTriangular: return 2...4
        case .where, .clip, .fold, .scan: return 3...3
        case .map: return 2...2
        case .sum, .mean, .transpose, .logsumexp, .softmax, .logSoftmax, .max, .min: return 1...2
        case .concat: return 3...Int.max
        default: return 1...1
        }
    }

    /// Indices of the arguments lowered to tensors before the built-in applies, in order; the
    /// others are read as whole numbers, lists of them, or a constant exponent.
    func tensorArguments(of arguments: [Expression], constantValue: (Expression) -> Double?) -> [Int] {
        switch self {
        case .eye: return []
        case .dot, .outer, .solve, .maximum, .minimum, .solveTriangular, .choSolve: return [0, 1]
        case .where, .clip: return [0, 1, 2]
        case .pow: return constantValue(arguments[1]) == nil ? [0, 1] : [0]
        case .concat: return Array(0..<(arguments.count - 1))
        default: return [0]
        }
    }
}

/// Names of the built-in functions.
let builtinNames: Set<String> = Set(Builtin.allCases.map(\.rawValue))

extension Elaborator {
    /// Largest constant a built-in embeds in the generated code (elements).
    static let maximumEmbeddedElements = 1 << 22

    /// Reports a call of `builtin` with a number of arguments it does not take.
    mutating func checkArguments(of builtin: Builtin, _ arguments: [Expression], span: SourceSpan) throws {
        if builtin == .concat {
            try require(arguments.count >= 3, "'concat' takes the tensors to join and then the axis: concat(a, b, axis)", at: span)
            return
        }
        let allowed = builtin.arity
        let expected = allowed.lowerBound == allowed.upperBound ? "\(allowed.lowerBound)" : "\(allowed.lowerBound) or \(allowed.upperBound)"
        try require(allowed.contains(arguments.count), "'\(builtin.rawValue)' takes \(expected) argument\(allowed.upperBound == 1 ? "" : "s"), got \(arguments.count)", at: span)
    }

    /// Applies a built-in whose arguments were checked by `checkArguments` and whose tensor
    /// arguments (those `tensorArguments` lists) are lowered, in `tensors`.
    mutating func apply(_ builtin: Builtin, _ arguments: [Expression], tensors: [Tensor], span: SourceSpan) throws -> Tensor {
        let name = builtin.rawValue
        let x = tensors.first
        switch builtin {
        case .sin: return sin(x!)
        case .cos: return cos(x!)
        case .tan: return tan(x!)
        case .exp: return exp(x!)
        case .log: return log(x!)
        case .sqrt: return sqrt(x!)
        case .tanh: return tanh(x!)
        case .sigmoid: return sigmoid(x!)
        case .relu: return relu(x!)
        case .abs: return abs(x!)
        case .softplus: return softplus(x!)
        case .square: return square(x!)
        case .sign: return sign(x!)
        case .where:
            let (c, a, b) = (tensors[0], tensors[1], tensors[2])
            return try apply(at: span) { try Nabla.where(c, a, b) } describe: {
                "cannot select with a condition of shape \(c.shape) between shapes \(a.shape) and \(b.shape)"
            }
        case .maximum, .minimum:
            let (a, b) = (tensors[0], tensors[1])
            return try apply(at: span) { builtin == .maximum ? try maximum(a, b) : try minimum(a, b) } describe: {
                "cannot apply '\(name)' to shapes \(a.shape) and \(b.shape)"
            }
        case .clip:
            let (x, lo, hi) = (tensors[0], tensors[1], tensors[2])
            return try apply(at: span) { try clip(x, lo, hi) } describe: {
                "cannot clip shape \(x.shape) to bounds of shapes \(lo.shape) and \(hi.shape)"
            }
        case .fold, .scan, .map:
            preconditionFailure("loops are lowered by scheduleLoop")
        case .max, .min:
            let x = x!
            if arguments.count == 1 { return builtin == .max ? Nabla.max(x) : Nabla.min(x) }
            let axis = try staticInteger(arguments[1])
            return try apply(at: span) {
                builtin == .max ? try Nabla.max(x, axis: axis) : try Nabla.min(x, axis: axis)
            } describe: { "cannot reduce shape \(x.shape)" }
        case .pow:
            let x = x!
            guard tensors.count == 2 else { return x ** constantValue(arguments[1])! }
            let e = tensors[1]
            return try apply(at: span) { try x ** e } describe: { "cannot apply 'pow' to shapes \(x.shape) and \(e.shape)" }
        case .sum, .mean:
            let x = x!
            if arguments.count == 1 { return builtin == .sum ? Nabla.sum(x) : Nabla.mean(x) }
            let axis = try staticInteger(arguments[1])
            return try apply(at: span) {
                builtin == .sum ? try Nabla.sum(x, axis: axis) : try Nabla.mean(x, axis: axis)
            } describe: { "cannot reduce shape \(x.shape)" }
        case .dot:
            let a = tensors[0], b = tensors[1]
            try require(a.shape.rank == 1 && b.shape.rank == 1 && a.shape == b.shape, "'dot' needs two vectors of one length, got shapes \(a.shape) and \(b.shape)", at: span)
            return try apply(at: span) { try a.matmul(b) } describe: { "cannot apply 'dot'" }
        case .outer:
            let a = tensors[0], b = tensors[1]
            return try apply(at: span) { try outer(a, b) } describe: { "cannot apply 'outer' to shapes \(a.shape) and \(b.shape)" }
        case .transpose:
            let x = x!
            if arguments.count == 1 { return x.transposed }
            guard case let .list(items, _) = arguments[1] else {
                throw error("the second argument of 'transpose' is a list of axes, like [1, 0]", at: arguments[1].span)
            }
            let permutation = try items.map { try staticInteger($0) }
            return try apply(at: span) { try x.transposed(permutation) } describe: { "cannot transpose shape \(x.shape)" }
        case .reshape:
            let x = x!
            guard case let .list(items, listSpan) = arguments[1] else {
                throw error("the second argument of 'reshape' is a list of extents, like [2, 3]", at: arguments[1].span)
            }
            var extents = try items.map { try staticInteger($0) }
            let unknown = extents.indices.filter { extents[$0] == -1 }
            try require(unknown.count <= 1 && extents.allSatisfy { $0 >= -1 }, "'reshape' takes non-negative extents and at most one -1", at: span)
            if let k = unknown.first {
                let known = extents.enumerated().filter { $0.offset != k }.reduce(1) { $0 * $1.element }
                try require(known > 0 && x.shape.count % known == 0, "cannot infer the -1 extent: \(x.shape.count) elements do not divide into \(known)", at: span)
                extents[k] = x.shape.count / known
            }
            try checkSize(Shape(extents), at: listSpan)
            return try apply(at: span) { try x.reshaped(Shape(extents)) } describe: { "cannot reshape \(x.shape) to \(Shape(extents))" }
        case .trace:
            let x = x!
            try require(x.shape.rank == 2 && x.shape[0] == x.shape[1], "'trace' needs a square matrix, got shape \(x.shape)", at: span)
            return Nabla.sum(try matrixDiagonal(x))
        case .diag:
            let x = x!
            if x.shape.rank == 1 {
                let n = x.shape[0]
                try require(n * n <= Self.maximumEmbeddedElements, "'diag' of a vector of length \(n) would embed an identity matrix of \(n * n) elements; the limit is \(Self.maximumEmbeddedElements)", at: span)
                // eye(n) * v puts v[j] at (j, j) by broadcasting v along the rows.
                return try identityMatrix(n, in: builder) * x
            }
            try require(x.shape.rank == 2 && x.shape[0] == x.shape[1], "'diag' takes a vector (to build a diagonal matrix) or a square matrix (to read its diagonal), got shape \(x.shape)", at: span)
            return try matrixDiagonal(x)
        case .eye:
            let n = try staticInteger(arguments[0])
            try require(n >= 0, "'eye' needs a non-negative size, got \(n)", at: span)
            try require(n <= 1 << 20 && n * n <= Self.maximumEmbeddedElements, "eye(\(n)) would embed \(n)^2 elements as a constant; the limit is \(Self.maximumEmbeddedElements)", at: span)
            return identityMatrix(n, in: builder)
        case .norm:
            return sqrt(Nabla.sum(square(x!)))
        case .det, .logdet, .inv:
            let A = x!
            return try apply(at: span) {
                switch builtin {
                case .det: return try Nabla.det(A)
                case .logdet: return try Nabla.logdet(A)
                default: return try Nabla.inv(A)
                }
            } describe: { "cannot apply '\(name)' to shape \(A.shape)" }
        case .solve:
            let A = tensors[0], b = tensors[1]
            return try apply(at: span) { try Nabla.solve(A, b) } describe: { "cannot solve with shapes \(A.shape) and \(b.shape)" }
        case .cholesky, .choLogdet:
            let A = x!
            return try apply(at: span) {
                builtin == .cholesky ? try Nabla.cholesky(A) : try Nabla.logdet(cholesky: A)
            } describe: { "cannot apply '\(name)' to shape \(A.shape)" }
        case .choSolve:
            let L = tensors[0], b = tensors[1]
            return try apply(at: span) { try Nabla.choleskySolve(L, b) } describe: { "cannot solve with shapes \(L.shape) and \(b.shape)" }
        case .solveTriangular:
            let T = tensors[0], b = tensors[1]
            let (lower, transpose) = try triangularFlags(Array(arguments.dropFirst(2)))
            return try apply(at: span) { try Nabla.solveTriangular(T, b, lower: lower, transpose: transpose) } describe: {
                "cannot solve with shapes \(T.shape) and \(b.shape)"
            }
        case .logsumexp:
            let x = x!
            if arguments.count == 1 { return Nabla.logsumexp(x) }
            let axis = try staticInteger(arguments[1])
            return try apply(at: span) { try Nabla.logsumexp(x, axis: axis) } describe: { "cannot reduce shape \(x.shape)" }
        case .softmax, .logSoftmax:
            let x = x!
            // Without an axis: the last one, as for a vector of scores.
            let axis = arguments.count == 2 ? try staticInteger(arguments[1]) : -1
            try require(x.shape.rank > 0, "'\(name)' needs a tensor with at least one axis, got a scalar", at: span)
            return try apply(at: span) {
                builtin == .softmax ? try Nabla.softmax(x, axis: axis) : try Nabla.logSoftmax(x, axis: axis)
            } describe: { "cannot apply '\(name)' to shape \(x.shape)" }
        case .concat:
            let axis = try staticInteger(arguments.last!)
            try require(axis >= -tensors[0].shape.rank && axis < tensors[0].shape.rank, "axis \(axis) is out of range for rank \(tensors[0].shape.rank)", at: arguments.last!.span)
            return try apply(at: span) { try Nabla.concat(tensors, axis: axis) } describe: { "cannot concatenate shapes \(tensors.map(\.shape.description).joined(separator: ", "))" }
        }
    }

    /// The options of `solve_triangular(T, b, ...)`: `lower` (the default) or `upper`, and
    /// `transpose`, each at most once.
    private mutating func triangularFlags(_ flags: [Expression]) throws -> (lower: Bool, transpose: Bool) {
        var lower: Bool?, transpose = false
        for flag in flags {
            guard case let .name(word) = flag, ["lower", "upper", "transpose"].contains(word.text) else {
                throw error("expected 'lower', 'upper' or 'transpose' after the matrix and the right-hand side", at: flag.span)
            }
            if word.text == "transpose" {
                try require(!transpose, "'transpose' is given twice", at: word.span)
                transpose = true
            } else {
                try require(lower == nil, "give one of 'lower' and 'upper'", at: word.span)
                lower = word.text == "lower"
            }
        }
        return (lower ?? true, transpose)
    }
}
