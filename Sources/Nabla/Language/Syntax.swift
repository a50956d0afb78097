/// A name as written, with where it was written.
public struct Name: Equatable, Sendable {
    public let text: String
    public let span: SourceSpan
}

/// An expression of the language, with its source span.
public indirect enum Expression: Equatable, Sendable {
    case number(Double, SourceSpan)
    case name(Name)
    case unary(op: String, operand: Expression, span: SourceSpan)
    case binary(op: String, lhs: Expression, rhs: Expression, opSpan: SourceSpan, span: SourceSpan)
    case call(function: Name, arguments: [Expression], span: SourceSpan)
    case index(base: Expression, items: [IndexItem], span: SourceSpan)
    case transpose(Expression, span: SourceSpan)
    case list([Expression], span: SourceSpan)

    public var span: SourceSpan {
        switch self {
        case let .number(_, span): return span
        case let .name(name): return name.span
        case let .unary(_, _, span), let .binary(_, _, _, _, span), let .call(_, _, span),
             let .index(_, _, span), let .transpose(_, span), let .list(_, span):
            return span
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
}
