extension LoopIR {
    /// One thing a walk over statements meets.
    enum Visited {
        case statement(Statement)
        /// Every expression node, outermost first.
        case expression(Expression)
        /// Every place written (assigned or accumulated into).
        case place(Place)
        case argument(Argument)
        /// Every function called, by an expression or a statement.
        case function(CFunction)
        /// Every buffer element or address referred to, and every pointer declared.
        case buffer(Buffer)
    }

    /// Calls `body` for everything in `statements`, in order. Statements nest only as deep as
    /// the loops and blocks code generation writes and expressions are of bounded depth, so the
    /// recursion is bounded too.
    static func visit(_ statements: [Statement], _ body: (Visited) -> Void) {
        for statement in statements { visit(statement, body) }
    }

    static func visit(_ statement: Statement, _ body: (Visited) -> Void) {
        body(.statement(statement))
        switch statement {
        case .comment, .counter:
            break
        case let .declare(_, e, _):
            visit(e, body)
        case let .assign(place, e), let .accumulate(place, e):
            visit(place, body)
            visit(e, body)
        case let .loop(loop):
            visit(loop.body, body)
        case let .block(inner):
            visit(inner, body)
        case let .call(function, arguments):
            body(.function(function))
            for argument in arguments { visit(argument, body) }
        case let .ifElse(condition, then, otherwise):
            visit(condition, body)
            visit(then, body)
            visit(otherwise, body)
        case let .pointer(_, buffer, _, _):
            body(.buffer(buffer))
        case let .invoke(invocation):
            for argument in invocation.inputs + invocation.outputs + [invocation.workspace] { visit(argument, body) }
        case let .parallel(p):
            // The task reaches the workspace through its context, and calls the runtime's pool.
            body(.buffer(.workspace))
            body(.function(.parallel))
            visit(p.body, body)
            visit(p.after, body)
        }
    }

    static func visit(_ place: Place, _ body: (Visited) -> Void) {
        body(.place(place))
        if case let .element(buffer, _) = place { body(.buffer(buffer)) }
    }

    static func visit(_ argument: Argument, _ body: (Visited) -> Void) {
        body(.argument(argument))
        switch argument {
        case let .value(e): visit(e, body)
        case let .address(buffer, _): body(.buffer(buffer))
        case .integer, .addressOf: break
        }
    }

    static func visit(_ condition: Condition, _ body: (Visited) -> Void) {
        switch condition {
        case let .compare(_, a, b):
            visit(a, body)
            visit(b, body)
        case let .or(a, b), let .and(a, b):
            visit(a, body)
            visit(b, body)
        case let .not(a):
            visit(a, body)
        }
    }

    static func visit(_ expression: Expression, _ body: (Visited) -> Void) {
        body(.expression(expression))
        switch expression {
        case .literal, .variable:
            break
        case let .load(buffer, _):
            body(.buffer(buffer))
        case let .negate(a):
            visit(a, body)
        case let .binary(_, a, b):
            visit(a, body)
            visit(b, body)
        case let .call(function, arguments):
            body(.function(function))
            for argument in arguments { visit(argument, body) }
        case let .select(condition, a, b):
            visit(condition, body)
            visit(a, body)
            visit(b, body)
        }
    }

    /// Calls `onCall` for every function called and `visit` for every expression node.
    static func forEachExpression(in statements: [Statement], onCall: (CFunction) -> Void, _ visitExpression: (Expression) -> Void) {
        visit(statements) { item in
            switch item {
            case let .function(f): onCall(f)
            case let .expression(e): visitExpression(e)
            default: break
            }
        }
    }
}

extension LoopIR.Expression {
    /// Nesting depth: 1 for a leaf.
    var depth: Int {
        switch self {
        case .literal, .variable, .load: return 1
        case let .negate(a): return 1 + a.depth
        case let .binary(_, a, b): return 1 + max(a.depth, b.depth)
        case let .call(_, arguments):
            return 1 + arguments.map { if case let .value(e) = $0 { return e.depth } else { return 1 } }.max()!
        case let .select(c, a, b): return 1 + max(c.depth, a.depth, b.depth)
        }
    }

    /// The expression with every node `rewrite` returns a replacement for replaced (outermost
    /// first; a replaced node is not looked into). Parts nothing replaces are shared, not
    /// copied.
    func rewritten(_ rewrite: (LoopIR.Expression) -> LoopIR.Expression?) -> LoopIR.Expression {
        changed(rewrite) ?? self
    }

    /// The rewritten expression, or nil when nothing in it is replaced.
    func changed(_ rewrite: (LoopIR.Expression) -> LoopIR.Expression?) -> LoopIR.Expression? {
        if let replacement = rewrite(self) { return replacement }
        switch self {
        case .literal, .variable, .load:
            return nil
        case let .negate(a):
            return a.changed(rewrite).map { .negate($0) }
        case let .binary(op, a, b):
            let (x, y) = (a.changed(rewrite), b.changed(rewrite))
            if x == nil && y == nil { return nil }
            return .binary(op, x ?? a, y ?? b)
        case let .call(f, arguments):
            let new = arguments.map { $0.changed(rewrite) }
            if new.allSatisfy({ $0 == nil }) { return nil }
            return .call(f, zip(arguments, new).map { $1 ?? $0 })
        case let .select(c, a, b):
            let (z, x, y) = (c.changed(rewrite), a.changed(rewrite), b.changed(rewrite))
            if z == nil && x == nil && y == nil { return nil }
            return .select(z ?? c, x ?? a, y ?? b)
        }
    }
}

extension LoopIR.Condition {
    var depth: Int {
        switch self {
        case let .compare(_, a, b): return 1 + max(a.depth, b.depth)
        case let .or(a, b), let .and(a, b): return 1 + max(a.depth, b.depth)
        case let .not(a): return 1 + a.depth
        }
    }

    func rewritten(_ rewrite: (LoopIR.Expression) -> LoopIR.Expression?) -> LoopIR.Condition {
        changed(rewrite) ?? self
    }

    func changed(_ rewrite: (LoopIR.Expression) -> LoopIR.Expression?) -> LoopIR.Condition? {
        switch self {
        case let .compare(op, a, b):
            let (x, y) = (a.changed(rewrite), b.changed(rewrite))
            return x == nil && y == nil ? nil : .compare(op, x ?? a, y ?? b)
        case let .or(a, b), let .and(a, b):
            let (x, y) = (a.changed(rewrite), b.changed(rewrite))
            if x == nil && y == nil { return nil }
            if case .or = self { return .or(x ?? a, y ?? b) }
            return .and(x ?? a, y ?? b)
        case let .not(a):
            return a.changed(rewrite).map { .not($0) }
        }
    }
}

extension LoopIR.Argument {
    func rewritten(_ rewrite: (LoopIR.Expression) -> LoopIR.Expression?) -> LoopIR.Argument {
        changed(rewrite) ?? self
    }

    func changed(_ rewrite: (LoopIR.Expression) -> LoopIR.Expression?) -> LoopIR.Argument? {
        if case let .value(e) = self { return e.changed(rewrite).map { .value($0) } }
        return nil
    }
}
