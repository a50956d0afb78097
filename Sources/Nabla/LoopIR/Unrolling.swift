extension LoopIR {
    /// `loop` with `lanes` copies of its body per iteration, then the remaining iterations
    /// rolled; nil when the body does not allow it (it must be straight-line code whose locals
    /// are constants, whose other variables are only copied into (values carried from one
    /// iteration to the next) or accumulated into, and which runs from 0 in steps of 1).
    ///
    /// The copies are written statement by statement across copies, each with its own locals,
    /// so their loads and stores are independent; an element several copies read (`x[i + 1]` in
    /// one is `x[i]` in the next) is loaded once; a sum into one place adds the copies' terms in
    /// one expression, in order, so its running total stays in a register; each buffer is
    /// reached through a pointer at the first copy's element. Carried values pass from copy to
    /// copy by name, and are stored back once per iteration. Every element sees the same
    /// operations in the same order as in the rolled loop.
    static func unrolled(_ loop: Loop, lanes: Int) -> [Statement]? {
        guard lanes > 1, loop.start == 0, loop.step == 1, loop.width == 1, let shape = BodyShape(loop.body) else { return nil }
        var state: [Variable: Expression] = [:]
        var copies: [[Statement]] = []
        for lane in 0..<lanes { copies.append(copy(loop.body, lane: lane, counter: loop.counter, shape: shape, state: &state)) }
        guard let carried = finalCarries(state, order: shape.carried) else { return nil }
        var body = interleaved(copies, loop.body) + carried
        body = cacheRepeatedLoads(body)
        body = walkingPointers(body, counter: loop.counter)
        var statements: [Statement] = [
            .counter(loop.counter, start: 0),
            .loop(Loop(loop.counter, from: nil, to: loop.end, width: lanes, step: lanes, body: body)),
        ]
        if loop.end % lanes != 0 {
            statements.append(.loop(Loop(loop.counter, from: nil, to: loop.end, body: cacheRepeatedLoads(loop.body))))
        }
        return statements
    }

    /// What an unrollable body declares and carries.
    private struct BodyShape {
        /// Values the body defines (renamed per copy).
        var locals = Set<Variable>()
        /// Variables the body copies values into, in order of first assignment.
        var carried: [Variable] = []
        /// Variables the body accumulates into.
        var accumulators = Set<Variable>()

        init?(_ body: [Statement]) {
            var read = Set<Variable>()
            for statement in body {
                switch statement {
                case let .declare(v, _, mutable):
                    guard !mutable, case .value(_, nil) = v else { return nil }
                    locals.insert(v)
                case let .assign(.variable(v), e):
                    guard !locals.contains(v) else { return nil }
                    switch e {
                    case .variable, .literal: break
                    default: return nil
                    }
                    if !carried.contains(v) { carried.append(v) }
                case let .accumulate(.variable(v), _):
                    accumulators.insert(v)
                default:
                    break
                }
            }
            forEachExpression(in: body, onCall: { _ in }) { e in if case let .variable(v) = e { read.insert(v) } }
            // A sum read while it accumulates cannot be chained.
            guard accumulators.isDisjoint(with: read), accumulators.isDisjoint(with: carried) else { return nil }
        }
    }

    /// One copy of the body: locals renamed for `lane`, the counter read as `counter + lane`,
    /// carried variables replaced by the values they hold at this point (`state`, updated by
    /// the copies into them, which are not written).
    private static func copy(_ body: [Statement], lane: Int, counter: Counter, shape: BodyShape, state: inout [Variable: Expression]) -> [Statement] {
        var result: [Statement] = []
        for statement in body {
            let current = state
            func rename(_ e: Expression) -> Expression {
                let shifted = mapIndices(e) { $0.shifted(counter, by: lane) }
                return shifted.rewritten { node in
                    guard case let .variable(v) = node else { return nil }
                    if shape.locals.contains(v), case let .value(n, nil) = v { return .variable(.value(n, lane: lane)) }
                    return current[v]
                }
            }
            func place(_ p: Place) -> Place {
                if case let .element(buffer, index) = p { return .element(buffer, index.shifted(counter, by: lane)) }
                return p
            }
            switch statement {
            case let .declare(.value(n, nil), e, _):
                result.append(.constant(.value(n, lane: lane), rename(e)))
            case let .assign(.variable(v), e) where shape.carried.contains(v):
                state[v] = rename(e)
            case let .assign(p, e):
                result.append(.assign(place(p), rename(e)))
            case let .accumulate(p, e):
                result.append(.accumulate(place(p), rename(e)))
            default:
                break
            }
        }
        return result
    }

    /// The copies written statement by statement across copies, sums into one place chained
    /// in copy order. When statements read memory the body writes, or two statements write one
    /// buffer, the copies are written one after another instead (same order as rolled).
    private static func interleaved(_ copies: [[Statement]], _ body: [Statement]) -> [Statement] {
        var writers: [Buffer: Int] = [:]
        var conflict = false
        for (k, statement) in body.enumerated() {
            for buffer in buffersWritten(in: [statement]) {
                if let other = writers[buffer], other != k { conflict = true }
                writers[buffer] = k
            }
        }
        forEachExpression(in: body, onCall: { _ in }) { e in
            if case let .load(buffer, _) = e, writers[buffer] != nil { conflict = true }
        }
        if conflict { return copies.flatMap { $0 } }
        var result: [Statement] = []
        for s in copies[0].indices {
            let lanes = copies.map { $0[s] }
            if case let .accumulate(place, _) = lanes[0], lanes.allSatisfy({ if case .accumulate(place, _) = $0 { return true } else { return false } }) {
                var total = place.value
                for case let .accumulate(_, e) in lanes { total = total + e }
                result.append(.assign(place, total))
            } else {
                result += lanes
            }
        }
        return result
    }

    /// The copies into carried variables the whole iteration made, as assignments ordered so
    /// that none overwrites a variable another still reads; nil if they form a cycle.
    private static func finalCarries(_ state: [Variable: Expression], order: [Variable]) -> [Statement]? {
        var pending = order.filter { v in state[v].map { $0 != .variable(v) } ?? false }
        var result: [Statement] = []
        while !pending.isEmpty {
            guard let k = pending.firstIndex(where: { v in !pending.contains { $0 != v && state[$0] == .variable(v) } }) else { return nil }
            let v = pending.remove(at: k)
            result.append(.assign(.variable(v), state[v]!))
        }
        return result
    }

    /// Loads and stores that move with `counter` reach their buffer through one pointer per
    /// buffer and stride pattern, set at the first element the body names: `p<n>[k]`.
    private static func walkingPointers(_ body: [Statement], counter: Counter) -> [Statement] {
        struct Family: Hashable {
            var buffer: Buffer
            var terms: [Index.Term]
        }
        var bases: [Family: (pointer: Int, offset: Int)] = [:]
        var order: [Family] = []
        var writable = Set<Family>()
        func family(_ buffer: Buffer, _ index: Index) -> Family? {
            guard index.stride(of: counter) != 0 else { return nil }
            if case .pointer = buffer { return nil }
            return Family(buffer: buffer, terms: index.terms)
        }
        visit(body) { item in
            switch item {
            case let .place(.element(buffer, index)):
                guard let f = family(buffer, index) else { return }
                writable.insert(f)
                if bases[f] == nil { bases[f] = (order.count, index.offset); order.append(f) }
            case let .expression(.load(buffer, index)):
                guard let f = family(buffer, index) else { return }
                if bases[f] == nil { bases[f] = (order.count, index.offset); order.append(f) }
            default:
                break
            }
        }
        guard !order.isEmpty else { return body }
        func rewritten(_ buffer: Buffer, _ index: Index) -> (Buffer, Index) {
            guard let f = family(buffer, index), let base = bases[f] else { return (buffer, index) }
            return (.pointer(base.pointer), Index(index.offset - base.offset))
        }
        let pointers = order.map { f in
            Statement.pointer(bases[f]!.pointer, f.buffer, Index(bases[f]!.offset, f.terms), writable: writable.contains(f))
        }
        return pointers + body.map { statement in
            let loads = mapExpressions([statement]) { e in
                guard case let .load(buffer, index) = e, family(buffer, index) != nil else { return nil }
                let (b, i) = rewritten(buffer, index)
                return .load(b, i)
            }[0]
            switch loads {
            case let .assign(.element(buffer, index), e):
                let (b, i) = rewritten(buffer, index)
                return .assign(.element(b, i), e)
            case let .accumulate(.element(buffer, index), e):
                let (b, i) = rewritten(buffer, index)
                return .accumulate(.element(b, i), e)
            default:
                return loads
            }
        }
    }
}
