// Expressions are read by a loop over an explicit stack of nesting levels rather than by
// recursive descent, so no input, however deeply nested, can exhaust the parser's stack (not
// even the 512 KiB of a secondary thread).
//
//   expression := conjunction ('or' conjunction)*
//   conjunction:= negated ('and' negated)*
//   negated    := 'not' negated | comparison
//   comparison := sum [('<' | '<=' | '>' | '>=' | '==' | '!=') sum]    they do not chain
//   sum        := term (('+' | '-') term)*
//   term       := unary (('*' | '/' | '@') unary)*
//   unary      := '-' unary | power
//   power      := postfix ('^' postfix)* ('^' '-' unary)?    right associative
//   postfix    := primary ( '[' items ']' | "'" )*
//   primary    := number | name | name '(' [expression (',' expression)*] ')'
//               | '(' expression ')' | '[' [expression (',' expression)*] ']'
//   item       := expression | [expression] ':' [expression] [':' [expression]]
//
// A level holds the operators and operands read so far at one nesting: the whole expression,
// inside a bracket (parentheses, a call's arguments, a list, an index), or the negated exponent
// of `x ^ -y`. Nesting still counts against `Parser.maximumDepth`, which bounds the depth of the
// syntax tree.

/// What a nesting level of an expression is for.
enum ExpressionLevelKind {
    /// The expression `parseExpression` was asked for.
    case whole
    /// Inside '(' ... ')'.
    case parenthesized
    /// The arguments of a call.
    case arguments(of: Name)
    /// The elements of a list literal.
    case list(open: SourceSpan)
    /// The items of an index, after the base's '['.
    case index(open: SourceSpan)
    /// The unary after a '^' followed by '-': it takes the rest of the power (`x^-y^z` is
    /// `x^(-(y^z))`) and ends there.
    case negatedExponent
}

/// A chain of one precedence level being read.
struct ChainInProgress {
    private var first: Expression?
    private var rest: [ChainLink] = []
    /// The operator read after the last operand, waiting for its right side.
    var pending: (op: ChainOperator, span: SourceSpan)?

    /// Adds an operand: the first, or the right side of `pending`.
    mutating func add(_ operand: Expression) {
        if let (op, span) = pending {
            rest.append(ChainLink(op: op, opSpan: span, operand: operand))
            pending = nil
        } else {
            first = operand
        }
    }

    /// True before the chain's first operand.
    var isEmpty: Bool { first == nil }

    /// The one operand, or the chain of all of them; empties the chain for the next.
    mutating func finish() -> Expression {
        defer { first = nil; rest = [] }
        guard let last = rest.last else { return first! }
        return .chain(first: first!, rest: rest, span: first!.span.to(last.operand.span))
    }
}

/// Which part of an index item is being read.
enum IndexPart {
    case start, end, step
}

/// The next thing `parseExpression` does.
enum ExpressionStep {
    /// Read an operand: any '-' prefixes, then a primary.
    case operand
    /// Read postfix operations after the base just read.
    case postfix
    /// The postfix expression is complete: a '^' continues the power, else the unary ends.
    case power
    /// Start an index item.
    case indexItem
    /// After an item's start: ':' makes it a range.
    case indexAfterStart
    /// After a range's end: ':' gives it a step.
    case indexAfterEnd
    /// The range item is complete.
    case indexRangeDone
    /// After an item: ',' or ']'.
    case indexNext
    case finished(Expression)
}

/// One nesting level of an expression being read.
struct ExpressionLevel {
    let kind: ExpressionLevelKind
    /// Operands of the `or` and the `and` being read, before the current one.
    var disjuncts: [Expression] = []
    var conjuncts: [Expression] = []
    /// The `not` prefixes of the negated expression being read, outermost first.
    var nots: [SourceSpan] = []
    /// The left side and operator of the comparison being read.
    var comparison: (left: Expression, relation: LoopIR.ComparisonOperator, span: SourceSpan)?
    var sum = ChainInProgress()
    var product = ChainInProgress()
    /// The '-' prefixes of the unary being read, outermost first.
    var negations: [SourceSpan] = []
    /// The operands of the power being read, before the current one.
    var powers: [Expression] = []
    /// The primary being read and the postfix operations after it.
    var base: Expression?
    var operations: [PostfixOperation] = []
    /// Arguments or list elements read so far.
    var elements: [Expression] = []
    /// Index items read so far, and the parts of the one being read.
    var items: [IndexItem] = []
    var itemStart = SourceSpan(start: 0, end: 0)
    var itemParts: [IndexPart: Expression] = [:]
    var part = IndexPart.start

    init(_ kind: ExpressionLevelKind) { self.kind = kind }

    /// Whether this level counts against the nesting limit (a negated exponent counts its '-').
    var countsDepth: Bool {
        if case .negatedExponent = kind { return false }
        return true
    }
}

extension Parser {
    /// Reads one expression, in a loop; the levels it is nested in are kept in `outerLevels`.
    mutating func parseExpression() throws -> Expression {
        let outerDepth = depth
        defer { depth = outerDepth; outerLevels = [] }
        outerLevels = []
        level = ExpressionLevel(.whole)
        try nest()
        var step = ExpressionStep.operand
        while true {
            switch step {
            case .operand: step = try readOperand()
            case .postfix: step = try readPostfix()
            case .power: step = try continuePower()
            case .indexItem: step = startIndexItem()
            case .indexAfterStart: step = try continueIndexItemAfterStart()
            case .indexAfterEnd: step = continueIndexItemAfterEnd()
            case .indexRangeDone: step = finishRangeItem()
            case .indexNext: step = try continueIndex()
            case let .finished(expression): return expression
            }
        }
    }

    /// One level deeper, if the limit allows.
    private mutating func nest() throws {
        depth += 1
        guard depth <= Self.maximumDepth else { throw fail("expression nested too deeply (more than \(Self.maximumDepth) levels)") }
    }

    /// Starts a level inside the current one.
    private mutating func open(_ kind: ExpressionLevelKind) throws {
        let inner = ExpressionLevel(kind)
        if inner.countsDepth { try nest() }
        outerLevels.append(level)
        level = inner
    }

    /// Ends the current level, returning it; the enclosing one is current again.
    private mutating func close() -> ExpressionLevel {
        let finished = level
        level = outerLevels.removeLast()
        if finished.countsDepth { depth -= 1 }
        return finished
    }

    /// Sets the primary of the innermost level; postfix operations follow.
    private mutating func setBase(_ expression: Expression) -> ExpressionStep {
        level.base = expression
        return .postfix
    }

    /// True at the start of a negated expression, where a `not` may stand.
    private var atNegatedStart: Bool {
        level.comparison == nil && level.sum.isEmpty && level.product.isEmpty && level.negations.isEmpty && level.powers.isEmpty
    }

    /// `not` prefixes, '-' prefixes, then a primary: a leaf, or the opening of a bracket.
    private mutating func readOperand() throws -> ExpressionStep {
        while check("not") {
            guard atNegatedStart, level.sum.pending == nil, level.product.pending == nil else {
                throw fail("'not' applies to a whole comparison; put what it negates in parentheses, as in a + (not b)")
            }
            let word = advance()
            try nest()
            level.nots.append(word.span)
        }
        while check("-") {
            let minus = advance()
            try nest()
            level.negations.append(minus.span)
        }
        let token = current
        switch token.kind {
        case .number:
            _ = advance()
            guard let value = Double(token.text), value.isFinite else {
                throw fail("number \(abbreviated(token.text)) is out of range for a double", at: token.span)
            }
            return setBase(.number(value, token.span))
        case .identifier:
            _ = advance()
            let name = Name(text: token.text, span: token.span)
            return check("(") ? try openCall(of: name) : setBase(.name(name))
        case .symbol where token.text == "(":
            _ = advance()
            try open(.parenthesized)
            return .operand
        case .symbol where token.text == "[":
            let bracket = advance()
            if check("]") { return setBase(.list([], span: bracket.span.to(advance().span))) }
            try open(.list(open: bracket.span))
            return .operand
        default:
            throw fail("expected an expression, found \(token.description)")
        }
    }

    /// After a function's name: '(' and the arguments.
    private mutating func openCall(of function: Name) throws -> ExpressionStep {
        _ = advance()  // '('
        if check(")") { return setBase(.call(function: function, arguments: [], span: function.span.to(advance().span))) }
        try open(.arguments(of: function))
        return .operand
    }

    /// Postfix operations on the base: '[' opens an index, "'" transposes.
    private mutating func readPostfix() throws -> ExpressionStep {
        if check("(") {
            // A name in parentheses may still be called: `(f)(x)`.
            guard level.operations.isEmpty, case let .name(function) = level.base else {
                throw fail("only a named function can be called")
            }
            return try openCall(of: function)
        }
        if check("[") {
            let bracket = advance()
            try open(.index(open: bracket.span))
            return .indexItem
        }
        if check("'") {
            level.operations.append(.transpose(span: advance().span))
            return .postfix
        }
        return .power
    }

    /// The postfix expression just read is an operand of a power: '^' continues it; otherwise
    /// the unary ends.
    private mutating func continuePower() throws -> ExpressionStep {
        let operations = level.operations
        let base = level.base!
        level.base = nil
        level.operations = []
        level.powers.append(operations.isEmpty ? base : .postfix(base: base, operations: operations, span: base.span.to(operations[operations.count - 1].span)))
        if accept("^") {
            if check("-") { try open(.negatedExponent) }
            return .operand
        }
        return try finishUnary()
    }

    /// The power and the negations before it make a unary: an operand of the level's product,
    /// or the exponent that ends the enclosing power.
    private mutating func finishUnary() throws -> ExpressionStep {
        var unary = takeUnary()
        while case .negatedExponent = level.kind {
            _ = close()
            level.powers.append(unary)
            unary = takeUnary()
        }
        level.product.add(unary)
        if let op = chainOperator(additive: false) {
            level.product.pending = (op, advance().span)
            return .operand
        }
        level.sum.add(level.product.finish())
        if let op = chainOperator(additive: true) {
            level.sum.pending = (op, advance().span)
            return .operand
        }
        return try finishSum(level.sum.finish())
    }

    /// The comparison operator at the current token, if there is one.
    private var comparisonOperator: LoopIR.ComparisonOperator? {
        guard current.kind == .symbol else { return nil }
        return LoopIR.ComparisonOperator(rawValue: current.text)
    }

    /// A complete sum: the left side of a comparison, its right side, or a whole comparison;
    /// then the `not`s before it, and the `and` and `or` around it.
    private mutating func finishSum(_ sum: Expression) throws -> ExpressionStep {
        var negated = sum
        if let (left, relation, _) = level.comparison {
            level.comparison = nil
            negated = .comparison(relation, left, sum, span: left.span.to(sum.span))
            if comparisonOperator != nil {
                throw fail("comparisons do not chain; write (a < b) and (b < c)")
            }
        } else if let relation = comparisonOperator {
            level.comparison = (sum, relation, advance().span)
            return .operand
        }
        for word in level.nots.reversed() { negated = .not(negated, span: word.to(negated.span)) }
        depth -= level.nots.count
        level.nots = []
        if accept("and") {
            level.conjuncts.append(negated)
            return .operand
        }
        let conjunction = Self.joined(.and, level.conjuncts + [negated])
        level.conjuncts = []
        if accept("or") {
            level.disjuncts.append(conjunction)
            return .operand
        }
        let disjunction = Self.joined(.or, level.disjuncts + [conjunction])
        level.disjuncts = []
        return try finishExpression(disjunction)
    }

    /// One operand as it is, or two or more joined by `op`.
    private static func joined(_ op: LogicalOperator, _ operands: [Expression]) -> Expression {
        operands.count == 1 ? operands[0] : .logical(op, operands, span: operands[0].span.to(operands[operands.count - 1].span))
    }

    /// The innermost level's power, negated as its prefixes say; empties both.
    private mutating func takeUnary() -> Expression {
        let powers = level.powers
        level.powers = []
        var unary = powers.count == 1 ? powers[0] : .power(powers, span: powers[0].span.to(powers[powers.count - 1].span))
        for minus in level.negations.reversed() { unary = .negation(unary, span: minus.to(unary.span)) }
        depth -= level.negations.count
        level.negations = []
        return unary
    }

    /// The chain operator of the given level at the current token, if there is one.
    private func chainOperator(additive: Bool) -> ChainOperator? {
        guard current.kind == .symbol, let op = ChainOperator(rawValue: current.text), op.isAdditive == additive else { return nil }
        return op
    }

    /// A complete expression at the innermost level: the result, or what its bracket holds.
    private mutating func finishExpression(_ expression: Expression) throws -> ExpressionStep {
        switch level.kind {
        case .whole:
            return .finished(expression)
        case .parenthesized:
            _ = try expect(")", "to close '('")
            _ = close()
            return setBase(expression)
        case let .arguments(function):
            level.elements.append(expression)
            if accept(",") { return .operand }
            let bracket = try expect(")", "after the arguments of \(function.quoted)")
            let arguments = close().elements
            return setBase(.call(function: function, arguments: arguments, span: function.span.to(bracket.span)))
        case let .list(open):
            level.elements.append(expression)
            if accept(",") { return .operand }
            let bracket = try expect("]", "to close the list")
            let elements = close().elements
            return setBase(.list(elements, span: open.to(bracket.span)))
        case .index:
            level.itemParts[level.part] = expression
            switch level.part {
            case .start: return .indexAfterStart
            case .end: return .indexAfterEnd
            case .step: return .indexRangeDone
            }
        case .negatedExponent:
            preconditionFailure("a negated exponent ends with its unary")
        }
    }

    private mutating func startIndexItem() -> ExpressionStep {
        level.itemStart = current.span
        level.itemParts = [:]
        if check(":") { return .indexAfterStart }
        level.part = .start
        return .operand
    }

    private mutating func continueIndexItemAfterStart() throws -> ExpressionStep {
        if let start = level.itemParts[.start], !check(":") {
            level.items.append(.single(start))
            return .indexNext
        }
        _ = advance()  // ':'
        if !check(":") && !check(",") && !check("]") {
            level.part = .end
            return .operand
        }
        return .indexAfterEnd
    }

    private mutating func continueIndexItemAfterEnd() -> ExpressionStep {
        if accept(":"), !check(","), !check("]") {
            level.part = .step
            return .operand
        }
        return .indexRangeDone
    }

    private mutating func finishRangeItem() -> ExpressionStep {
        let parts = level.itemParts
        level.items.append(.range(start: parts[.start], end: parts[.end], step: parts[.step], span: level.itemStart.to(previous.span)))
        return .indexNext
    }

    /// After an index item: ',' starts another; ']' ends the index, a postfix operation of the
    /// enclosing level.
    private mutating func continueIndex() throws -> ExpressionStep {
        if accept(",") { return .indexItem }
        guard case let .index(open) = level.kind else { preconditionFailure("not in an index") }
        let bracket = try expect("]", "to close the index")
        let items = close().items
        level.operations.append(.index(items, span: open.to(bracket.span)))
        return .postfix
    }
}
