/// Parser for graph files: recursive descent for statements; expressions are read by the
/// loop in ExpressionParser.swift, which keeps its nesting on the heap.
///
/// Errors are collected rather than thrown: after an error the parser skips to the end of the
/// statement and goes on, so one run reports every independent syntax error.
struct Parser {
    private let tokens: [Token]
    private var position = 0
    /// Nesting of the expression being read: brackets, arguments and unary minus.
    var depth = 0
    /// The innermost nesting level of the expression being read, and those around it (see
    /// `parseExpression`).
    var level = ExpressionLevel(.whole)
    var outerLevels: [ExpressionLevel] = []
    private(set) var diagnostics: [Diagnostic] = []
    /// Names bound by statements that failed to parse: their later uses are not reported again.
    private(set) var failedNames: [String] = []

    /// Deeper nesting than this is refused, so the syntax tree's depth is bounded whatever the
    /// input (trees are compared and released recursively).
    static let maximumDepth = 256

    struct Failure: Error {}

    init(tokens: [Token]) { self.tokens = tokens }

    var current: Token { tokens[position] }
    var previous: Token { tokens[max(0, position - 1)] }

    mutating func advance() -> Token {
        let token = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    func check(_ text: String) -> Bool {
        (current.kind == .symbol || current.kind == .keyword) && current.text == text
    }

    mutating func accept(_ text: String) -> Bool {
        if check(text) { _ = advance(); return true }
        return false
    }

    mutating func fail(_ message: String, at span: SourceSpan? = nil, label: String? = nil) -> Failure {
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

    mutating func expect(_ text: String, _ context: String) throws -> Token {
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
            throw fail("expected '=' after \(name.quoted) to bind it, found \(current.description)")
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
}
