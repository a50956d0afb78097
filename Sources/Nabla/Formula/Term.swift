// Matrix notation for tensor expressions, the language `nabla derive` prints in.
//
// A `Term` is an expression over named tensors in the notation of matrix calculus: sums,
// scalar multiples, matrix products, transposes, inverses, elementwise products and functions.
// Every term knows the shape of the array it stands for; a vector (rank 1) is also written as a
// column or a row (`row`), which changes how it is printed (a, aᵀ) but not its value. Terms are
// built only through the constructors of `Algebra`, which simplify as they build (see there),
// so a term is always in simplified form.

/// A function applied to terms, with what it needs to be printed in each format.
enum FormulaFunction: Hashable, Sendable {
    /// sin, cos, exp, ... elementwise on one operand.
    case unary(UnaryFunction)
    /// An elementwise comparison, 1 where it holds and 0 elsewhere.
    case compare(String)
    /// Elementwise logic on 0/1 operands.
    case and, or
    /// Elementwise maximum or minimum of two operands.
    case maximum, minimum
    /// where(c, a, b), elementwise.
    case select
    /// The sum over some axes (all of them: a scalar).
    case sum(axes: [Int], all: Bool)
    /// max or min over some axes.
    case extremum(maximum: Bool, axes: [Int], all: Bool)
    case softmax(axes: [Int]), logSoftmax(axes: [Int]), logsumexp(axes: [Int], all: Bool)
    case det, logAbsDet, adjugate, trace, cholesky
    /// diag(v): the diagonal matrix of a vector.
    case diagonalMatrix
    /// diag(X): the diagonal of a square matrix.
    case diagonal
    /// The solution of A X = B (Aᵀ X = B when transposed); operands A, B.
    case solve(transposed: Bool)
    /// The solution of T X = B for triangular T; operands T, B.
    case triangularSolve(lower: Bool, transpose: Bool)
    /// The lower or upper triangle with its diagonal scaled.
    case triangle(lower: Bool, diagonal: Double)
    /// One-hot rows of `count` entries for integer-valued operands.
    case oneHot(count: Int)

    /// True when the function acts on each element alone, so that it commutes with transposes.
    var isElementwise: Bool {
        switch self {
        case .unary, .compare, .and, .or, .maximum, .minimum, .select: return true
        default: return false
        }
    }
}

/// The elementwise functions of one operand.
enum UnaryFunction: String, Hashable, Sendable {
    case sqrt, exp, log, sin, cos, tan, tanh, sigmoid, relu, abs, softplus, step, sign, not
}

/// A loop in a formula: its operands and the formulas of its body, printed as a block.
struct LoopTerm: Hashable, Sendable {
    /// The loop's operation (its body, steps and direction).
    let scan: Scan
    /// The loop's operands: initial carries, sequences, captured values.
    let operands: [Term]
    /// A number unique within one formula, for its name.
    let index: Int
    /// Names of the body's inputs: the carries, one row of each sequence, the step number, the
    /// captured values.
    let parameters: [String]
    /// Named terms of the body.
    let bodyDefinitions: [Definition]
    /// The body's results: the carries after the step, then the step's outputs.
    let bodyResults: [Term]
}

/// An expression in matrix notation (see the file's comment).
struct Term: Hashable, Sendable {
    indirect enum Kind: Hashable, Sendable {
        /// An input, binding or named intermediate.
        case symbol(String)
        /// A scalar constant.
        case number(Double)
        /// A tensor whose elements all equal the value (0, or 𝟙 for ones).
        case filled(Double)
        /// The identity matrix.
        case identity
        /// A small constant tensor, written out.
        case literal([Double])
        case sum([Term])
        /// A numeric multiple.
        case scaled(Double, Term)
        /// A matrix product, scalar factors first.
        case product([Term])
        /// The elementwise product of same-shaped operands (scalars are products instead).
        case hadamard([Term])
        /// Elementwise division.
        case quotient(Term, Term)
        /// Elementwise power.
        case power(Term, Term)
        case transpose(Term)
        case inverse(Term)
        /// Axes permuted, for ranks above 2.
        case permute(Term, [Int])
        case call(FormulaFunction, [Term])
        /// The same elements in another shape.
        case reshape(Term)
        /// The operand repeated along new or unit axes.
        case broadcast(Term)
        case slice(Term, Slice)
        /// The operand placed at a slice's positions of zeros.
        case pad(Term, Slice)
        case concat([Term], axis: Int)
        /// The flat result of a loop (its pieces are slices of it).
        case loop(LoopTerm)
    }

    let kind: Kind
    /// The shape of the array the term stands for.
    let shape: Shape
    /// For a vector: written as a row (the transpose of the column it is stored as).
    let row: Bool
    /// Number of nodes, for deciding what to name.
    let size: Int
    /// Longest path to a leaf, which bounds every recursion over terms.
    let depth: Int

    init(_ kind: Kind, _ shape: Shape, row: Bool = false) {
        self.kind = kind
        self.shape = shape
        self.row = shape.rank == 1 && row
        let children = kind.children
        size = children.reduce(1) { $0 + $1.size }
        depth = 1 + (children.map(\.depth).max() ?? 0)
    }

    var rank: Int { shape.rank }
    var isScalar: Bool { shape.rank == 0 }

    /// The value of a constant whose elements are all equal.
    var uniformValue: Double? {
        switch kind {
        case let .number(v), let .filled(v): return v
        default: return nil
        }
    }

    var isZero: Bool { uniformValue == 0 }

    var isIdentity: Bool {
        if case .identity = kind { return true }
        return false
    }

    /// True when the term mentions `name`.
    func mentions(_ name: String) -> Bool {
        if case let .symbol(s) = kind { return s == name }
        return kind.children.contains { $0.mentions(name) }
    }

    /// True when the term mentions any of `names`.
    func mentionsAny(_ names: Set<String>) -> Bool {
        if case let .symbol(s) = kind { return names.contains(s) }
        return kind.children.contains { $0.mentionsAny(names) }
    }

    /// Every symbol the term mentions.
    func collectSymbols(into names: inout Set<String>) {
        if case let .symbol(s) = kind { names.insert(s) }
        for child in kind.children { child.collectSymbols(into: &names) }
    }
}

extension Term.Kind {
    /// The terms directly inside this one.
    var children: [Term] {
        switch self {
        case .symbol, .number, .filled, .identity, .literal: return []
        case let .sum(ts), let .product(ts), let .hadamard(ts), let .call(_, ts), let .concat(ts, _): return ts
        case let .scaled(_, t), let .transpose(t), let .inverse(t), let .permute(t, _), let .reshape(t), let .broadcast(t),
             let .slice(t, _), let .pad(t, _):
            return [t]
        case let .quotient(a, b), let .power(a, b): return [a, b]
        case let .loop(l): return l.operands
        }
    }
}
