extension LoopIR {
    /// Makes loops cheaper without changing any result, bit for bit:
    ///
    /// - loads every iteration of a loop repeats are made once, before it (`hoistInvariantLoads`);
    /// - an element one iteration reads several times is loaded once (`cacheRepeatedLoads`);
    /// - loops marked `mayUnroll` run up to `unroll` copies of their body per iteration
    ///   (`unrolled`), for compilers that neither unroll nor keep values in registers from one
    ///   statement to the next, such as TinyCC.
    ///
    /// Every element still sees the same operations in the same order.
    public static func optimizeLoops(_ statements: [Statement], unroll: Int) -> [Statement] {
        var hoisted = 0
        return optimize(statements, unroll: max(1, unroll), hoisted: &hoisted)
    }

    private static func optimize(_ statements: [Statement], unroll: Int, hoisted: inout Int) -> [Statement] {
        var result: [Statement] = []
        result.reserveCapacity(statements.count)
        for statement in statements {
            switch statement {
            case let .loop(loop):
                let (declarations, rest) = hoistInvariantLoads(loop, next: &hoisted)
                result += declarations
                result += optimizeInner(rest, unroll: unroll, hoisted: &hoisted)
            case let .block(inner):
                result.append(.block(optimize(inner, unroll: unroll, hoisted: &hoisted)))
            case let .ifElse(c, a, b):
                result.append(.ifElse(c, optimize(a, unroll: unroll, hoisted: &hoisted), optimize(b, unroll: unroll, hoisted: &hoisted)))
            case var .parallel(p):
                p.body = optimize(p.body, unroll: unroll, hoisted: &hoisted)
                p.after = optimize(p.after, unroll: unroll, hoisted: &hoisted)
                result.append(.parallel(p))
            default:
                result.append(statement)
            }
        }
        return result
    }

    /// A loop whose invariant loads are hoisted already: unrolled or cached when it is an
    /// innermost loop that allows it, else its body optimised in turn.
    private static func optimizeInner(_ loop: Loop, unroll: Int, hoisted: inout Int) -> [Statement] {
        if unroll > 1, loop.mayUnroll, isStraightLine(loop.body), loop.start == 0, loop.step == 1, loop.width == 1,
           loop.end <= maximumExpandedExtent {
            return expanded(loop)
        }
        if loop.mayUnroll, isStraightLine(loop.body) {
            if unroll > 1, let statements = unrolled(loop, lanes: laneCount(loop, unroll: unroll)) { return statements }
            var rolled = loop
            rolled.body = cacheRepeatedLoads(loop.body)
            return [.loop(rolled)]
        }
        var inner = loop
        inner.body = optimize(loop.body, unroll: unroll, hoisted: &hoisted)
        return [.loop(inner)]
    }

    /// Copies of a body per iteration: bounded code growth (long bodies have independent work
    /// enough already), and at least two iterations of the unrolled loop.
    /// Loops this short are written out in full when unrolling is asked for: for TinyCC, which
    /// keeps counters in memory, the loop's own work would cost about as much as its body.
    static let maximumExpandedExtent = 4

    /// The body once for each value of the counter, in a block each (its locals are its own),
    /// the counter replaced by that value.
    static func expanded(_ loop: Loop) -> [Statement] {
        (0..<loop.end).map { j in
            let counter = loop.counter
            let fixed = mapIndices(loop.body) { index in
                var copy = index
                copy.offset += j * index.stride(of: counter)
                copy.terms.removeAll { $0.counter == counter }
                return copy
            }
            return .block(mapExpressions(fixed) { e in
                if case .variable(.counter(counter)) = e { return .literal(Double(j)) }
                return nil
            })
        }
    }

    static func laneCount(_ loop: Loop, unroll: Int) -> Int {
        let steps = loop.body.filter { if case .comment = $0 { return false } else { return true } }.count
        let extent = loop.end - (loop.start ?? 0)
        var lanes = unroll
        while lanes > 1 && (lanes * steps > 160 || extent < 2 * lanes) { lanes /= 2 }
        return lanes
    }

    static func isStraightLine(_ statements: [Statement]) -> Bool {
        statements.allSatisfy { s in
            switch s {
            case .declare, .assign, .accumulate, .comment: return true
            default: return false
            }
        }
    }

    // MARK: - Buffers read and written

    /// Buffers the statements may write: elements assigned, and buffers handed to calls by
    /// address.
    static func buffersWritten(in statements: [Statement]) -> Set<Buffer> {
        var written = Set<Buffer>()
        visit(statements) { item in
            switch item {
            case let .place(.element(buffer, _)): written.insert(buffer)
            case let .statement(.call(_, arguments)):
                for case let .address(buffer, _) in arguments { written.insert(buffer) }
            case let .statement(.pointer(_, buffer, _, writable)) where writable: written.insert(buffer)
            case let .statement(.invoke(invocation)):
                for case let .address(buffer, _) in invocation.outputs + [invocation.workspace] { written.insert(buffer) }
            default: break
            }
        }
        return written
    }

    /// Counters of the loop and of every loop inside it.
    private static func countersBound(by loop: Loop) -> Set<Counter> {
        var counters: Set<Counter> = [loop.counter]
        visit(loop.body) { item in
            if case let .statement(.loop(inner)) = item { counters.insert(inner.counter) }
        }
        return counters
    }

    // MARK: - Hoisting

    /// Loads of `loop` (and of loops in it that surely run) that no iteration changes: indices
    /// free of the loop's counters, buffers the loop does not write. They are loaded once into
    /// `h<n>` locals declared before the loop. A loop that may not run keeps its loads.
    static func hoistInvariantLoads(_ loop: Loop, next: inout Int) -> (declarations: [Statement], loop: Loop) {
        guard let start = loop.start, start < loop.end else { return ([], loop) }
        let bound = countersBound(by: loop)
        let written = buffersWritten(in: loop.body)
        var found: [Expression: Variable] = [:]
        var declarations: [Statement] = []
        func collect(_ statements: [Statement]) {
            for statement in statements {
                switch statement {
                case let .loop(inner):
                    if let s = inner.start, s < inner.end { collect(inner.body) }
                case let .block(inner):
                    collect(inner)
                case .ifElse, .call, .pointer, .counter, .comment, .invoke, .parallel:
                    continue
                default:
                    visit(statement) { item in
                        guard case let .expression(e) = item, case let .load(buffer, index) = e,
                              found[e] == nil, !written.contains(buffer) else { return }
                        if case .pointer = buffer { return }
                        guard index.terms.allSatisfy({ !bound.contains($0.counter) }) else { return }
                        let v = Variable.hoisted(next)
                        next += 1
                        found[e] = v
                        declarations.append(.constant(v, e))
                    }
                }
            }
        }
        collect(loop.body)
        guard !found.isEmpty else { return ([], loop) }
        var rewritten = loop
        // Only loads were hoisted: other expressions are not looked up (hashing one hashes
        // its whole tree).
        rewritten.body = mapExpressions(loop.body) { e in
            guard case .load = e else { return nil }
            return found[e].map { .variable($0) }
        }
        return (declarations, rewritten)
    }

    // MARK: - Caching

    /// A straight-line body with every element it loads more than once (from a buffer it does
    /// not write) loaded once into an `a<n>` local, just before the first statement reading it.
    static func cacheRepeatedLoads(_ body: [Statement]) -> [Statement] {
        let written = buffersWritten(in: body)
        var uses: [Expression: Int] = [:]
        forEachExpression(in: body, onCall: { _ in }) { e in
            if case let .load(buffer, _) = e, !written.contains(buffer) { uses[e, default: 0] += 1 }
        }
        guard uses.values.contains(where: { $0 > 1 }) else { return body }
        var names: [Expression: Variable] = [:]
        var result: [Statement] = []
        result.reserveCapacity(body.count + names.count)
        for statement in body {
            var declarations: [Statement] = []
            let rewritten = mapExpressions(statement) { e in
                guard case .load = e, uses[e, default: 0] > 1 else { return nil }
                if let v = names[e] { return .variable(v) }
                let v = Variable.cached(names.count)
                names[e] = v
                declarations.append(.constant(v, e))
                return .variable(v)
            }
            result += declarations
            result.append(rewritten)
        }
        return result
    }

    // MARK: - Rewriting expressions

    /// The statements with every expression node `rewrite` returns a replacement for replaced
    /// (outermost first). Places are not expressions and stay.
    static func mapExpressions(_ statements: [Statement], _ rewrite: (Expression) -> Expression?) -> [Statement] {
        statements.map { mapExpressions($0, rewrite) }
    }

    static func mapExpressions(_ statement: Statement, _ rewrite: (Expression) -> Expression?) -> Statement {
        switch statement {
        case .comment, .counter, .pointer, .invoke: return statement
        case let .declare(v, e, mutable): return e.changed(rewrite).map { .declare(v, $0, mutable: mutable) } ?? statement
        case let .assign(place, e): return e.changed(rewrite).map { .assign(place, $0) } ?? statement
        case let .accumulate(place, e): return e.changed(rewrite).map { .accumulate(place, $0) } ?? statement
        case var .loop(loop):
            loop.body = mapExpressions(loop.body, rewrite)
            return .loop(loop)
        case let .block(inner): return .block(mapExpressions(inner, rewrite))
        case let .call(f, arguments): return .call(f, arguments.map { $0.rewritten(rewrite) })
        case let .ifElse(c, a, b): return .ifElse(c.rewritten(rewrite), mapExpressions(a, rewrite), mapExpressions(b, rewrite))
        case var .parallel(p):
            p.body = mapExpressions(p.body, rewrite)
            p.after = mapExpressions(p.after, rewrite)
            return .parallel(p)
        }
    }
}
