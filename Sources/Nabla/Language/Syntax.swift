/// A name as written, with where it was written.
public struct Name: Equatable, Sendable {
    /// The name as written.
    public let text: String
    /// Where it was written.
    public let span: SourceSpan

    /// The name in quotes for a message, shortened if it is long.
    var quoted: String { Nabla.quoted(text) }
}

/// Text from the source as a message shows it: whole if short, else its start and end around
/// "...", so no name or literal makes a message long.
func abbreviated(_ text: String) -> String {
    let limit = 40
    guard text.utf8.count > limit, text.count > limit else { return text }
    return String(text.prefix(24)) + "..." + String(text.suffix(12))
}

/// `abbreviated(text)` in single quotes.
func quoted(_ text: String) -> String { "'" + abbreviated(text) + "'" }

/// An expression of the language, with its source span.
///
/// The tree is shallow by construction: a run of operators of one precedence level (`a + b - c`,
/// `a * b / c @ d`, `a ^ b ^ c`) is one node holding its operands in a list, and a run of postfix
/// operations (`x[0]'[1]`) is one node too. Only parentheses, brackets, arguments and unary minus
/// nest, and the parser limits those, so the tree's depth is bounded by a constant times
/// `Parser.maximumDepth` whatever the input's length: walking, comparing or releasing it cannot
/// exhaust the stack.
public indirect enum Expression: Equatable, Sendable {
    case number(Double, SourceSpan)
    case name(Name)
    /// `-operand`.
    case negation(Expression, span: SourceSpan)
    /// `first op operand op operand ...` at one precedence level (`+ -`, or `* / @`), left
    /// associative: `((first op operand) op operand) ...`.
    case chain(first: Expression, rest: [ChainLink], span: SourceSpan)
    /// `operands[0] ^ operands[1] ^ ... ^ operands[n]`, right associative; two or more operands.
    case power([Expression], span: SourceSpan)
    case call(function: Name, arguments: [Expression], span: SourceSpan)
    /// A base followed by indexing and transposes, applied left to right; one or more operations.
    case postfix(base: Expression, operations: [PostfixOperation], span: SourceSpan)
    case list([Expression], span: SourceSpan)
    /// `left relation right`: one comparison (comparisons do not chain).
    case comparison(LoopIR.ComparisonOperator, Expression, Expression, span: SourceSpan)
    /// `operands[0] and operands[1] and ...` (or `or`); two or more operands.
    case logical(LogicalOperator, [Expression], span: SourceSpan)
    /// `not operand`.
    case not(Expression, span: SourceSpan)

    /// Where the whole expression was written.
    public var span: SourceSpan {
        switch self {
        case let .number(_, span): return span
        case let .name(name): return name.span
        case let .negation(_, span), let .chain(_, _, span), let .power(_, span), let .call(_, _, span),
             let .postfix(_, _, span), let .list(_, span), let .comparison(_, _, _, span), let .logical(_, _, span),
             let .not(_, span):
            return span
        }
    }
}

/// An infix operator of a `chain`.
public enum ChainOperator: String, Equatable, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", matmul = "@"

    /// True for `+` and `-`, the loosest level; false for `*`, `/` and `@`.
    var isAdditive: Bool { self == .add || self == .subtract }
}

/// The logical operators, looser than comparisons; `and` binds tighter than `or`.
public enum LogicalOperator: String, Equatable, Sendable {
    case and, or
}

/// One `operator operand` step of a chain.
public struct ChainLink: Equatable, Sendable {
    /// The operator before the operand.
    public let op: ChainOperator
    /// Where the operator was written.
    public let opSpan: SourceSpan
    /// The operand after the operator.
    public let operand: Expression
}

/// One postfix operation; its span runs from its opening `[` (or its `'`) to its end.
public enum PostfixOperation: Equatable, Sendable {
    case index([IndexItem], span: SourceSpan)
    case transpose(span: SourceSpan)

    /// Where the operation was written, from its `[` or `'` to its end.
    public var span: SourceSpan {
        switch self {
        case let .index(_, span), let .transpose(span): return span
        }
    }
}

/// One position of an index expression: `i`, or `start:end:step` with any part left out.
public enum IndexItem: Equatable, Sendable {
    case single(Expression)
    case range(start: Expression?, end: Expression?, step: Expression?, span: SourceSpan)
}

/// The derivative directives.
public enum DerivativeKind: String, Sendable {
    case grad, jacobian, hessian, jvp, hvp
}

/// A statement of a graph file.
public enum Statement: Equatable, Sendable {
    case dim(Name, value: Expression)
    case input(Name, shape: [Expression]?)
    case binding(Name, Expression, isOutput: Bool)
    case export(Name)
    case derivative(DerivativeKind, of: Name, wrt: [Name], along: Name?, span: SourceSpan)
    case taylor(of: Name, wrt: Name, at: Expression?, order: Expression, span: SourceSpan)
    case function(Name, parameters: [Name], body: Expression)

    /// Where the statement is reported: its name, or a directive's whole text.
    public var span: SourceSpan {
        switch self {
        case let .dim(name, _), let .input(name, _), let .binding(name, _, _), let .export(name), let .function(name, _, _): return name.span
        case let .derivative(_, _, _, _, span), let .taylor(_, _, _, _, span): return span
        }
    }
}

extension Expression {
    /// Calls `visit` with every call in this expression (nested ones included), outer before
    /// inner, left to right. Walks with an explicit stack.
    func forEachCall(_ visit: (_ function: Name, _ span: SourceSpan) -> Void) {
        var pending: [Expression] = [self]
        while let expression = pending.popLast() {
            if case let .call(function, _, span) = expression { visit(function, span) }
            pending.append(contentsOf: expression.children.reversed())
        }
    }

    /// The expressions directly inside this one, in source order.
    var children: [Expression] {
        switch self {
        case .number, .name: return []
        case let .negation(operand, _), let .not(operand, _): return [operand]
        case let .comparison(_, left, right, _): return [left, right]
        case let .logical(_, operands, _): return operands
        case let .chain(first, rest, _): return [first] + rest.map(\.operand)
        case let .power(operands, _), let .call(_, operands, _), let .list(operands, _): return operands
        case let .postfix(base, operations, _):
            var result = [base]
            for case let .index(items, _) in operations { result += items.flatMap(\.expressions) }
            return result
        }
    }
}

extension IndexItem {
    /// The expressions of this item, in source order.
    var expressions: [Expression] {
        switch self {
        case let .single(index): return [index]
        case let .range(start, end, step, _): return [start, end, step].compactMap { $0 }
        }
    }
}
