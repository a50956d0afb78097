/// Recursive-descent parser for graph files.
///
/// Errors are collected rather than thrown: after an error the parser skips to the end of the
/// statement and goes on, so one run reports every independent syntax error.
struct Parser {
    private let tokens: [Token]
    private var position = 0
    private var depth = 0
    private(set) var diagnostics: [Diagnostic] = []
    /// Names bound by statements that failed to parse: their later uses are not reported again.
    private(set) var failedNames: [String] = []

    /// Deeper nesting than this is refused, so no input can exhaust the stack.
    static let maximumDepth = 256

    private struct Failure: Error {}

    init(tokens: [Token]) { self.tokens = tokens }

    private var current: Token { tokens[position] }
    private var previous: Token { tokens[max(0, position - 1)] }

    private mutating func advance() -> Token {
        let token = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    private func check(_ text: String) -> Bool {
        (current.kind == .symbol || current.kind == .keyword) && current.text == text
    }

    private mutating func accept(_ text: String) -> Bool {
        if check(text) { _ = advance(); return true }
        return false
    }

    private mutating func fail(_ message: String, at span: SourceSpan? = nil, label: String? = nil) -> Failure {
        // An invalid character was reported by the lexer already.
        if current.kind == .invalid && span == nil { return Failure() }
        var at = span ?? current.span
        if span == nil, current.kind == .newline || current.kind == .end, position > 0 {
            // "found end of line": point just after the last token, not at the next line.
            at = SourceSpan(start: previous.span.end, end: previous.span.end)
        }
        diagnostics.append(Diagnostic(message, at: at, label: label))
        return Failure()
    }

    private mutating func expect(_ text: String, _ context: String) throws -> Token {
        guard check(text) else { throw fail("expected '\(text)' \(context), found \(current.description)") }
        return advance()
    }

    private mutating func expectName(_ context: String) throws -> Name {
        guard current.kind == .identifier else {
            if current.kind == .keyword {
                throw fail("expected a name \(context), found \(current.description), which is reserved")
            }
            throw fail("expected a name \(context), found \(current.description)")
        }
        let token = advance()
        return Name(text: token.text, span: token.span)
    }

    mutating func parseProgram() -> [Statement] {
        var statements: [Statement] = []
        while current.kind != .end {
            if current.kind == .newline { _ = advance(); continue }
            let statementStart = position
            do {
                statements.append(try parseStatement())
                guard current.kind == .newline || current.kind == .end else {
                    throw fail("expected end of statement, found \(current.description)")
                }
            } catch {
                if let name = boundName(from: statementStart) { failedNames.append(name) }
                // Skip to the next statement.
                while current.kind != .newline && current.kind != .end { _ = advance() }
            }
        }
        return statements
    }

    /// The name a statement starting at token `start` binds (`output NAME ...`, `NAME = ...`,
    /// `input NAME`, `dim NAME`, `def NAME`), if it got that far.
    private func boundName(from start: Int) -> String? {
        let first = tokens[start]
        if first.kind == .keyword, ["output", "input", "dim", "def"].contains(first.text),
           start + 1 < tokens.count, tokens[start + 1].kind == .identifier {
            return tokens[start + 1].text
        }
        if first.kind == .identifier, start + 1 < tokens.count, tokens[start + 1].text == "=" { return first.text }
        return nil
    }

    private mutating func parseStatement() throws -> Statement {
        let start = current.span
        if current.kind == .keyword {
            switch current.text {
            case "dim":
                _ = advance()
                let name = try expectName("after 'dim'")
                _ = try expect("=", "after the dim's name")
                return .dim(name, value: try parseExpression())
            case "input":
                _ = advance()
                let name = try expectName("after 'input'")
                var shape: [Expression]?
                if accept(":") { shape = try parseShape() }
                return .input(name, shape: shape)
            case "output":
                _ = advance()
                let name = try expectName("after 'output'")
                if accept("=") { return .binding(name, try parseExpression(), isOutput: true) }
                return .export(name)
            case "grad", "jacobian", "hessian", "jvp", "hvp":
                let kind = DerivativeKind(rawValue: advance().text)!
                let of = try expectName("to differentiate after '\(kind.rawValue)'")
                _ = try expect("wrt", "after the differentiated name")
                var wrt = [try expectName("after 'wrt'")]
                while accept(",") { wrt.append(try expectName("after ','")) }
                var along: Name?
                if kind == .jvp || kind == .hvp {
                    _ = try expect("along", "after the variable in '\(kind.rawValue)'")
                    along = try expectName("after 'along'")
                }
                return .derivative(kind, of: of, wrt: wrt, along: along, span: start.to(previous.span))
            case "taylor":
                _ = advance()
                let of = try expectName("after 'taylor'")
                _ = try expect("wrt", "after the expanded name")
                let wrt = try expectName("after 'wrt'")
                var point: Expression?
                if accept("at") { point = try parseExpression() }
                _ = try expect("order", point == nil ? "or 'at' after the variable in 'taylor'" : "after the expansion point")
                let order = try parseExpression()
                return .taylor(of: of, wrt: wrt, at: point, order: order, span: start.to(previous.span))
            case "def":
                _ = advance()
                let name = try expectName("after 'def'")
                _ = try expect("(", "after the function's name")
                var parameters: [Name] = []
                if !check(")") {
                    repeat { parameters.append(try expectName("for a parameter")) } while accept(",")
                }
                _ = try expect(")", "after the parameters")
                _ = try expect("=", "after the parameter list")
                return .function(name, parameters: parameters, body: try parseExpression())
            default:
                throw fail("a statement cannot start with \(current.description)")
            }
        }
        guard current.kind == .identifier else {
            throw fail("expected a statement (dim, input, output, a binding 'name = ...', grad, def), found \(current.description)")
        }
        let name = try expectName("")
        guard accept("=") else {
            throw fail("expected '=' after '\(name.text)' to bind it, found \(current.description)")
        }
        return .binding(name, try parseExpression(), isOutput: false)
    }

    private mutating func parseShape() throws -> [Expression] {
        _ = try expect("[", "to start the shape")
        var dims: [Expression] = []
        if !check("]") {
            repeat { dims.append(try parseExpression()) } while accept(",")
        }
        _ = try expect("]", "to close the shape")
        return dims
    }

    // expression := term (('+' | '-') term)*
    mutating func parseExpression() throws -> Expression {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { throw fail("expression nested too deeply (more than \(Self.maximumDepth) levels)") }
        let first = try parseTerm()
        var rest: [ChainLink] = []
        while let op = chainOperator(additive: true) {
            let token = advance()
            rest.append(ChainLink(op: op, opSpan: token.span, operand: try parseTerm()))
        }
        return chain(first, rest)
    }

    // term := unary (('*' | '/' | '@') unary)*
    private mutating func parseTerm() throws -> Expression {
        let first = try parseUnary()
        var rest: [ChainLink] = []
        while let op = chainOperator(additive: false) {
            let token = advance()
            rest.append(ChainLink(op: op, opSpan: token.span, operand: try parseUnary()))
        }
        return chain(first, rest)
    }

    /// The chain operator of the given level at the current token, if there is one.
    private func chainOperator(additive: Bool) -> ChainOperator? {
        guard current.kind == .symbol, let op = ChainOperator(rawValue: current.text), op.isAdditive == additive else { return nil }
        return op
    }

    /// One operand alone, or the chain of all of them.
    private func chain(_ first: Expression, _ rest: [ChainLink]) -> Expression {
        guard let last = rest.last else { return first }
        return .chain(first: first, rest: rest, span: first.span.to(last.operand.span))
    }

    // unary := '-' unary | power
    private mutating func parseUnary() throws -> Expression {
        if check("-") {
            let op = advance()
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maximumDepth else { throw fail("expression nested too deeply (more than \(Self.maximumDepth) levels)") }
            let operand = try parseUnary()
            return .negation(operand, span: op.span.to(operand.span))
        }
        return try parsePower()
    }

    // power := postfix ('^' postfix)* ('^' '-' unary)?
    // Right associative and tighter than unary minus on its left; read as one list, so a long
    // `a ^ b ^ c ...` costs no stack. A negated exponent (`x^-y^z`, which is `x^(-(y^z))`) ends the
    // list, since the negation takes the rest.
    private mutating func parsePower() throws -> Expression {
        var operands = [try parsePostfix()]
        while accept("^") {
            if check("-") {
                operands.append(try parseUnary())
                break
            }
            operands.append(try parsePostfix())
        }
        guard operands.count > 1 else { return operands[0] }
        return .power(operands, span: operands[0].span.to(operands[operands.count - 1].span))
    }

    // postfix := primary [ '(' args ')' ] ( '[' items ']' | "'" )*     the call only on a name
    private mutating func parsePostfix() throws -> Expression {
        var base = try parsePrimary()
        var operations: [PostfixOperation] = []
        while true {
            if check("(") {
                guard operations.isEmpty, case let .name(function) = base else {
                    throw fail("only a named function can be called")
                }
                base = try parseCall(of: function)
            } else if check("[") {
                let open = advance()
                var items: [IndexItem] = []
                repeat { items.append(try parseIndexItem()) } while accept(",")
                let close = try expect("]", "to close the index")
                operations.append(.index(items, span: open.span.to(close.span)))
            } else if check("'") {
                operations.append(.transpose(span: advance().span))
            } else {
                break
            }
        }
        guard let last = operations.last else { return base }
        return .postfix(base: base, operations: operations, span: base.span.to(last.span))
    }

    /// The arguments of a call after the function's name, from '(' to ')'.
    private mutating func parseCall(of function: Name) throws -> Expression {
        _ = try expect("(", "after the function's name")
        var arguments: [Expression] = []
        if !check(")") {
            repeat { arguments.append(try parseExpression()) } while accept(",")
        }
        let close = try expect(")", "after the arguments of '\(function.text)'")
        return .call(function: function, arguments: arguments, span: function.span.to(close.span))
    }

    private mutating func parseIndexItem() throws -> IndexItem {
        let start = current.span
        var first: Expression?
        if !check(":") {
            first = try parseExpression()
            if !check(":") { return .single(first!) }
        }
        _ = advance()  // ':'
        var end: Expression?, step: Expression?
        if !check(":") && !check(",") && !check("]") { end = try parseExpression() }
        if accept(":") {
            if !check(",") && !check("]") { step = try parseExpression() }
        }
        return .range(start: first, end: end, step: step, span: start.to(previous.span))
    }

    private mutating func parsePrimary() throws -> Expression {
        let token = current
        switch token.kind {
        case .number:
            _ = advance()
            guard let value = Double(token.text), value.isFinite else {
                throw fail("number \(token.text) is out of range for a double", at: token.span)
            }
            return .number(value, token.span)
        case .identifier:
            _ = advance()
            return .name(Name(text: token.text, span: token.span))
        case .symbol where token.text == "(":
            _ = advance()
            let inner = try parseExpression()
            _ = try expect(")", "to close '('")
            return inner
        case .symbol where token.text == "[":
            _ = advance()
            var elements: [Expression] = []
            if !check("]") {
                repeat { elements.append(try parseExpression()) } while accept(",")
            }
            let close = try expect("]", "to close the list")
            return .list(elements, span: token.span.to(close.span))
        default:
            throw fail("expected an expression, found \(token.description)")
        }
    }
}
