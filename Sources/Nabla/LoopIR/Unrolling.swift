extension LoopIR {
    /// `loop` with `lanes` copies of its body per iteration, then the remaining iterations
    /// rolled; nil when the body does not allow it. The body must be straight-line code whose
    /// locals are constants (`v<n>`), which accumulates into some variables, and which copies
    /// values into others (values carried from one iteration to the next) only at its end; the
    /// loop must run from 0 in steps of 1.
    ///
    /// The copies are written statement by statement across copies, each with its own locals,
    /// so their loads and stores are independent; an element several copies read (`x[i + 1]` in
    /// one is `x[i]` in the next) is loaded once; a sum into one place adds the copies' terms in
    /// one expression, in order, so its running total stays in a register; each buffer is
    /// reached through a pointer at the first copy's element. Carried values pass from copy to
    /// copy by name and are stored back once per iteration. Every element sees the same
    /// operations in the same order as in the rolled loop.
    static func unrolled(_ loop: Loop, lanes: Int) -> [Statement]? {
        guard lanes > 1, loop.start == 0, loop.step == 1, loop.width == 1,
              var copier = LaneCopier(loop.body, counter: loop.counter, lanes: lanes) else { return nil }
        guard let finals = copier.finalCarries() else { return nil }
        let body = copier.pointerDeclarations() + copier.copies() + finals
        var statements: [Statement] = [
            .counter(loop.counter, start: 0),
            .loop(Loop(loop.counter, from: nil, to: loop.end, width: lanes, step: lanes, body: body)),
        ]
        if loop.end % lanes != 0 {
            statements.append(.loop(Loop(loop.counter, from: nil, to: loop.end, body: cacheRepeatedLoads(loop.body))))
        }
        return statements
    }

    /// Writes the copies of an unrollable body in one pass over them.
    private struct LaneCopier {
        /// Buffer and stride pattern of a load or store that moves with the counter: its
        /// elements are reached through one pointer.
        struct Family: Hashable {
            var buffer: Buffer
            var terms: [Index.Term]
        }

        /// An element a copy reads, as the family's pointer and an offset from the counter.
        struct Element: Hashable {
            var family: Int
            var offset: Int
        }

        let counter: Counter
        let lanes: Int
        /// The statements copied (the body without comments and its final carry copies).
        var work: [Statement] = []
        /// The final copies into carried variables, in order.
        var carries: [(Variable, Expression)] = []
        var locals = Set<Variable>()
        /// What each carried variable holds when copy `l` starts (index l; `lanes`: at the end).
        var states: [[Variable: Expression]] = []
        /// Copies are written one after another (not statement by statement) when the body
        /// reads memory it writes, or writes one buffer from two statements.
        var laneMajor = false
        var families: [Family: (id: Int, base: Int)] = [:]
        var familyOrder: [Family] = []
        var writable = Set<Int>()
        /// How many times the copies read each element of a buffer the body does not write.
        var uses: [Element: Int] = [:]
        var cached: [Element: Int] = [:]

        init?(_ body: [Statement], counter: Counter, lanes: Int) {
            self.counter = counter
            self.lanes = lanes
            guard splitCarries(body) else { return nil }
            guard simulateCarries() else { return nil }
            examineMemory()
        }

        /// Separates the work from the final carry copies; false when the body is not of the
        /// form `unrolled` accepts.
        private mutating func splitCarries(_ body: [Statement]) -> Bool {
            var accumulators = Set<Variable>(), carried = Set<Variable>()
            for statement in body {
                switch statement {
                case .comment:
                    continue
                case let .declare(v, _, mutable):
                    guard !mutable, case .value(_, nil) = v, carries.isEmpty else { return false }
                    locals.insert(v)
                    work.append(statement)
                case let .assign(.variable(v), e):
                    guard !locals.contains(v) else { return false }
                    switch e {
                    case .variable, .literal: break
                    default: return false
                    }
                    carries.append((v, e))
                    carried.insert(v)
                case let .accumulate(place, _):
                    guard carries.isEmpty else { return false }
                    if case let .variable(v) = place { accumulators.insert(v) }
                    work.append(statement)
                case .assign:
                    guard carries.isEmpty else { return false }
                    work.append(statement)
                default:
                    return false
                }
            }
            // A sum read while it accumulates cannot be chained.
            var read = Set<Variable>()
            forEachExpression(in: work, onCall: { _ in }) { e in if case let .variable(v) = e { read.insert(v) } }
            return accumulators.isDisjoint(with: read) && accumulators.isDisjoint(with: carried)
        }

        /// What the carried variables hold at the start of each copy.
        private mutating func simulateCarries() -> Bool {
            states = [[:]]
            for lane in 0..<lanes {
                var state = states[lane]
                for (v, e) in carries {
                    switch e {
                    case let .variable(source) where locals.contains(source):
                        guard case let .value(n, nil) = source else { return false }
                        state[v] = .variable(.value(n, lane: lane))
                    case let .variable(source):
                        state[v] = state[source] ?? e
                    default:
                        state[v] = e
                    }
                }
                states.append(state)
            }
            return true
        }

        /// Pointer families, how often the copies read each element, and whether copies can be
        /// interleaved.
        private mutating func examineMemory() {
            var writers: [Buffer: Int] = [:]
            for (k, statement) in work.enumerated() {
                for buffer in buffersWritten(in: [statement]) {
                    if let other = writers[buffer], other != k { laneMajor = true }
                    writers[buffer] = k
                }
            }
            visit(work) { item in
                switch item {
                case let .place(.element(buffer, index)):
                    if let f = family(buffer, index) { writable.insert(f) }
                case let .expression(.load(buffer, index)):
                    if writers[buffer] != nil { laneMajor = true }
                    guard let f = family(buffer, index), writers[buffer] == nil else { return }
                    let stride = index.stride(of: counter)
                    for lane in 0..<lanes { uses[Element(family: f, offset: index.offset + lane * stride), default: 0] += 1 }
                default:
                    break
                }
            }
        }

        /// The family of a load or store moving with the counter, registered on first sight with
        /// its offset as the pointer's base.
        private mutating func family(_ buffer: Buffer, _ index: Index) -> Int? {
            guard index.stride(of: counter) != 0 else { return nil }
            if case .pointer = buffer { return nil }
            let key = Family(buffer: buffer, terms: index.terms)
            if let known = families[key] { return known.id }
            families[key] = (familyOrder.count, index.offset)
            familyOrder.append(key)
            return familyOrder.count - 1
        }

        func pointerDeclarations() -> [Statement] {
            familyOrder.map { f in
                let (id, base) = families[f]!
                return Statement.pointer(id, f.buffer, Index(base, f.terms), writable: writable.contains(id))
            }
        }

        /// Every copy of every statement, in the order they are written.
        mutating func copies() -> [Statement] {
            var result: [Statement] = []
            result.reserveCapacity(work.count * lanes)
            if laneMajor {
                for lane in 0..<lanes { for s in work.indices { result += copy(s, lane) } }
                return result
            }
            for s in work.indices {
                if case let .accumulate(place, _) = work[s], isFixed(place) {
                    // Every copy adds into the same variable: one expression, in copy order.
                    var total = place.value, declarations: [Statement] = []
                    for lane in 0..<lanes {
                        let copied = copy(s, lane)
                        declarations += copied.dropLast()
                        if case let .accumulate(_, e)? = copied.last { total = total + e }
                    }
                    result += declarations
                    result.append(.assign(place, total))
                } else {
                    for lane in 0..<lanes { result += copy(s, lane) }
                }
            }
            return result
        }

        /// Statement `s` for copy `lane`, after the cached loads it is the first to read.
        private mutating func copy(_ s: Int, _ lane: Int) -> [Statement] {
            var declarations: [Statement] = []
            let state = states[lane]
            func expression(_ e: Expression) -> Expression {
                e.rewritten { node in
                    switch node {
                    case let .variable(v):
                        if case let .value(n, nil) = v, locals.contains(v) { return .variable(.value(n, lane: lane)) }
                        return state[v]
                    case let .load(buffer, index):
                        return load(buffer, index.shifted(counter, by: lane), &declarations)
                    default:
                        return nil
                    }
                }
            }
            func place(_ p: Place) -> Place {
                guard case let .element(buffer, index) = p else { return p }
                let shifted = index.shifted(counter, by: lane)
                guard let f = familyID(buffer, shifted) else { return .element(buffer, shifted) }
                return .element(.pointer(f), Index(shifted.offset - base(f)))
            }
            let statement: Statement
            switch work[s] {
            case let .declare(.value(n, nil), e, _): statement = .constant(.value(n, lane: lane), expression(e))
            case let .assign(p, e): statement = .assign(place(p), expression(e))
            case let .accumulate(p, e): statement = .accumulate(place(p), expression(e))
            default: statement = work[s]
            }
            return declarations + [statement]
        }

        /// A load at an index already shifted for its copy: a cached element, or through its
        /// family's pointer; the first read of a cached element declares it.
        private mutating func load(_ buffer: Buffer, _ index: Index, _ declarations: inout [Statement]) -> Expression? {
            guard let f = familyID(buffer, index) else { return nil }
            let relative = Expression.load(.pointer(f), Index(index.offset - base(f)))
            let element = Element(family: f, offset: index.offset)
            guard uses[element, default: 0] > 1 else { return relative }
            if let n = cached[element] { return .variable(.cached(n)) }
            let n = cached.count
            cached[element] = n
            declarations.append(.constant(.cached(n), relative))
            return .variable(.cached(n))
        }

        /// A place every copy names alike: a variable, or an element that does not move with the
        /// counter.
        private func isFixed(_ place: Place) -> Bool {
            if case let .element(_, index) = place { return index.stride(of: counter) == 0 }
            return true
        }

        private func familyID(_ buffer: Buffer, _ index: Index) -> Int? {
            guard index.stride(of: counter) != 0 else { return nil }
            return families[Family(buffer: buffer, terms: index.terms)]?.id
        }

        private func base(_ family: Int) -> Int { families[familyOrder[family]]!.base }

        /// The copies into carried variables the whole iteration made, ordered so that none
        /// overwrites a variable another still reads; nil if they form a cycle.
        func finalCarries() -> [Statement]? {
            let state = states[lanes]
            var pending: [Variable] = []
            for (v, _) in carries where !pending.contains(v) && state[v] != .variable(v) { pending.append(v) }
            var result: [Statement] = []
            while !pending.isEmpty {
                guard let k = pending.firstIndex(where: { v in !pending.contains { $0 != v && state[$0] == .variable(v) } }) else { return nil }
                let v = pending.remove(at: k)
                result.append(.assign(.variable(v), state[v]!))
            }
            return result
        }
    }
}
