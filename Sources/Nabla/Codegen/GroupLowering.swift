/// One fused loop group in the loop IR: every member computed in one loop over the group's
/// index space.
///
/// Members read by other members of the loop at the same index are locals of the loop body
/// (`v<m>`), or written into their one reader's expression; stored members are written to
/// memory; sums accumulate and padded slices scatter into results of other shapes. The body is
/// built with one counter per axis and made one flat loop when every access is contiguous or
/// constant.
final class GroupLowering {
    typealias Expression = LoopIR.Expression
    typealias Statement = LoopIR.Statement

    let plan: KernelPlan
    let values: [LoopIR.Operand?]
    /// Expressions of scalars written into their one reader instead of stored.
    let scalarExpressions: [Expression?]
    let group: Int
    /// How memory pads that can be carried are written.
    private(set) var padForm: KernelTarget.PadForm
    private let nodes: [Graph.Node]
    private let space: Shape
    private let members: [Int]
    private let counters: [LoopIR.Counter]
    private let access: [Access]
    private let groupOf: [Int?]
    private let roles: [OperationRole]
    /// Carriable memory pads whose operand the loop recomputes at the positions the pad pairs
    /// read, by pad: that operand as one expression of the current position.
    private var recomputed: [Int: Expression] = [:]
    /// Carried pads of a loop in blocks, by pad: the operand as one expression of the current
    /// position, from which each block starts its carries (carries do not cross blocks).
    private var carryStarts: [Int: Expression] = [:]

    /// The blocks of the loop (`LoopIR.ReductionBlocks`), when it has more than one.
    private let blocks: LoopIR.ReductionBlocks?
    /// Whether the loop's blocks may run on the thread pool when they can.
    private let parallel: Bool
    /// Whether a member sums every element of the space into one element (whose order the
    /// blocks define).
    private let hasSumIntoOneElement: Bool

    /// Whether the loop should run its blocks on the pool (when they may run at once).
    private var wantsParallelBlocks: Bool { parallel && (hasSumIntoOneElement || space.count >= Self.parallelMinimum) }
    /// Whether the loop is cut into blocks at all: to run them on the pool, or for its sums.
    private var wantsBlocks: Bool { blocks != nil && (wantsParallelBlocks || hasSumIntoOneElement) }

    /// Fewest elements a loop without sums needs for its blocks to run in parallel.
    static let parallelMinimum = 32_768

    init(plan: KernelPlan, values: [LoopIR.Operand?], scalarExpressions: [Expression?], group: Int, padForm: KernelTarget.PadForm,
         parallel: Bool = false) {
        self.plan = plan
        self.values = values
        self.scalarExpressions = scalarExpressions
        self.group = group
        nodes = plan.facts.nodes
        space = plan.grouping.groups[group].shape
        members = plan.grouping.groups[group].members
        blocks = LoopIR.ReductionBlocks(extents: space.dims)
        self.parallel = parallel
        self.padForm = padForm
        // One axis needs no flattening: its loop is the flat loop.
        counters = space.rank == 1 ? [.flat] : (0..<space.rank).map(LoopIR.Counter.axis)
        access = plan.views.access
        groupOf = plan.grouping.group
        roles = plan.facts.roles
        let (roles, nodes) = (self.roles, self.nodes)
        hasSumIntoOneElement = members.contains { roles[$0] == .sum && nodes[$0].shape.count == 1 }
        if wantsBlocks && padForm == .carried {
            // Carries do not cross blocks: each block starts them from their operands,
            // recomputed, or the pads are recomputed or stored like those of rolled loops.
            let operands = recomputableOperands()
            if members.allSatisfy({ plan.storage.carriablePads[$0] == nil || operands[$0] != nil }) {
                carryStarts = operands
            } else {
                self.padForm = .recomputed
            }
        }
        if self.padForm == .recomputed { recomputed = recomputableOperands() }
    }

    /// A member that writes memory of another shape from the loop.
    private struct Terminal {
        var member: Int
        var place: LoopIR.Place
        var operand: Expression
        var accumulates: Bool
    }

    /// What the members contribute before the body is assembled.
    private struct Parts {
        var before: [Statement] = []
        var after: [Statement] = []
        /// Elementwise members' expressions, members of the loop read as `v<m>`.
        var raw: [Int: Expression] = [:]
        var terminals: [Int: Terminal] = [:]
    }

    /// The group's statements: one block holding its loop.
    func lower() throws -> [Statement] {
        var parts = Parts()
        for m in members { try describe(m, into: &parts) }
        let occurrences = memberReads(parts)
        let body = try loopBody(parts, occurrences)
        var statements = [Statement.comment(summary())] + parts.before
        if !carryStarts.isEmpty {
            let (loop, starts) = (loopNest(body), blockStartCarries())
            if let inBlocks = try inBlocks(loop, parts, starts: starts) {
                statements += inBlocks
                // After the blocks, the carries' last values are their operands, recomputed.
                statements += withCarries(parts.after, from: carryStarts, position: space.count)
            } else {
                statements += carryDeclarations() + loop + parts.after
            }
        } else if recomputed.isEmpty {
            statements += carryDeclarations()
            statements += try inBlocks(loopNest(body), parts) ?? loopNest(body)
            statements += parts.after
        } else {
            let loop = recomputingLoop(body)
            statements += try inBlocks(loop, parts) ?? loop
            statements += withRecomputedCarries(parts.after, position: space.count)
        }
        return [.block(statements)]
    }

    // MARK: - Blocks

    /// The loop as its blocks (`LoopIR.ReductionBlocks`): run on the thread pool when they may
    /// run at once and the loop is large enough; one after another when it has sums into one
    /// element (whose order the blocks define) that cannot; nil (the loop as it is) otherwise.
    /// `starts`: what each block begins with (its carries' first values).
    private func inBlocks(_ loop: [Statement], _ parts: Parts, starts: LoopIR.BlockStarts = .none) throws -> [Statement]? {
        guard let blocks, wantsBlocks, let outer = loop.last else { return nil }
        let sums = members.compactMap { m -> LoopIR.Place? in
            guard let t = parts.terminals[m], t.accumulates, nodes[m].shape.count == 1 else { return nil }
            return t.place
        }
        guard let (forms, counter) = LoopIR.blockForms(ofNest: loop, blocks, starts: starts) else {
            if sums.isEmpty { return nil }
            throw internalError("the loop of group \(group) over \(space) cannot be cut into blocks")
        }
        // The statements before the loop are its first positions (of block 0), written out;
        // its carries are locals of each block.
        if wantsParallelBlocks, sums.count * forms.count <= LoopIR.ParallelLoop.maximumPartials,
           LoopIR.blocksMayRunAtOnce(withoutCarries(outer), counter: counter, targets: Set(sums)) {
            return [LoopIR.blocksInParallel(forms, targets: sums, id: group)]
        }
        return sums.isEmpty ? nil : LoopIR.blocksInOrder(forms, targets: sums)
    }

    /// The loop as one block runs it, for the check of what its blocks share: its carries
    /// (each block's own locals) neither read nor moved along.
    private func withoutCarries(_ loop: Statement) -> [Statement] {
        let dropped = LoopIR.mapStatements([loop]) { statement in
            guard case .assign(.variable(.carry), _) = statement else { return nil }
            return .comment("carry")
        }
        return LoopIR.mapExpressions(dropped) { e in
            if case .variable(.carry) = e { return .literal(0) } else { return nil }
        }
    }

    /// Each block's carries, declared with the values of their operands before the block's
    /// first position (+0.0 before the start: the pad's zeros).
    private func blockStartCarries() -> LoopIR.BlockStarts {
        let perBlock = blocks.map { $0.rowsPerBlock * $0.rowSize } ?? 0
        func declarations(_ value: (Expression, Int) -> Expression) -> [Statement] {
            carriedMembers.flatMap { m, depth in
                stride(from: 1, through: depth, by: 1).map { j in
                    Statement.declare(.carry(m, j), value(carryStarts[m]!, j), mutable: true)
                }
            }
        }
        return LoopIR.BlockStarts(
            first: declarations { _, _ in .literal(0) },
            middle: declarations { operand, j in
                LoopIR.mapIndices(operand) { index in
                    let stride = index.stride(of: .flat)
                    return LoopIR.Index(index.offset - j * stride, index.terms.filter { $0.counter != .flat } + [.init(.block, stride * perBlock)])
                }
            },
            last: { start in declarations { operand, j in self.operandValue(operand, back: j, position: start) } })
    }

    /// `statements` with carry j of each pad of `operands` replaced by its operand j positions
    /// before `position` (a constant; nil: the loop's counter), or zero before the start.
    private func withCarries(_ statements: [Statement], from operands: [Int: Expression], position: Int?) -> [Statement] {
        LoopIR.mapExpressions(statements) { e in
            guard case let .variable(.carry(pad, back)) = e, let operand = operands[pad] else { return nil }
            return operandValue(operand, back: back, position: position)
        }
    }

    // MARK: - Members

    private func describe(_ m: Int, into parts: inout Parts) throws {
        let node = nodes[m]
        let role = plan.facts.roles[m]
        if role == .sum, let sum = node.operation as? Sum {
            let target = try value(m)
            parts.before += node.shape.rank == 0 ? [.assign(target.place(), .literal(0))] : LoopIR.fill(target, with: 0)
            let place = target.place(index(0, sum.resultStrides(input: space, result: node.shape)))
            parts.terminals[m] = Terminal(member: m, place: place, operand: try read(node.inputs[0]), accumulates: true)
        } else if let pair = plan.grouping.padPairs[m] {
            try describePadPair(m, pair, into: &parts)
        } else if role == .padSlice, let pad = node.operation as? PadSlice {
            if isCarried(m) || recomputed[m] != nil {
                // Read at the current position by pairs of shift 0; a recomputed pad's pairs
                // recompute its operand wherever else they read it, and nothing is stored.
                parts.raw[m] = try read(node.inputs[0])
            } else if plan.materialized[m] {
                let target = try value(m)
                parts.before += zeroOutsideSlice(pad, target)
                let (offset, strides) = pad.slice.view(of: node.shape, result: space)
                parts.terminals[m] = Terminal(member: m, place: target.place(index(offset, strides)), operand: try read(node.inputs[0]), accumulates: false)
            }
        } else if role == .elementwise, let e = node.operation.elementwise(try node.inputs.map(read)) {
            parts.raw[m] = e
        } else {
            throw internalError("%\(m) (\(node.operation.name)) cannot be a member of a fused loop")
        }
    }

    /// At the register pad's positions: the memory pad's element (stored by now, or carried in
    /// a local) with the register pad's operand; elsewhere the register pad is zero, which the
    /// statements after the loop account for.
    private func describePadPair(_ m: Int, _ pair: PadPair, into parts: inout Parts) throws {
        let node = nodes[m]
        let pad = nodes[pair.register].operation as! PadSlice
        let (offset, strides) = pad.slice.view(of: node.shape, result: space)
        let shift = pair.shift(nodes)
        // A recomputed pad is written as carried at first; its carries are replaced later.
        let carried = isCarried(pair.memory) || recomputed[pair.memory] != nil
        let stored = carried ? carry(pair.memory, shift) : try value(pair.memory).element(index(offset, strides))
        let inLoop = try read(nodes[pair.register].inputs[0])
        let memoryFirst = node.inputs[0] == pair.memory
        let operand = node.operation.elementwise(memoryFirst ? [stored, inLoop] : [inLoop, stored])!
        parts.terminals[m] = Terminal(member: m, place: try value(m).place(index(offset, strides)), operand: operand, accumulates: false)
        parts.after += try padPairTail(m, pair, pad, shift: shift, carried: carried, memoryFirst: memoryFirst)
    }

    /// The positions the register pad does not cover: the memory pad's element with zero, the
    /// element stored, or (after the loop, carry j holds its operand's element j from the end)
    /// carried.
    private func padPairTail(_ m: Int, _ pair: PadPair, _ pad: PadSlice, shift: Int, carried: Bool, memoryFirst: Bool) throws -> [Statement] {
        let operation = nodes[m].operation
        let target = try value(m), memory = carried ? nil : try value(pair.memory)
        let memoryStart = (nodes[pair.memory].operation as! PadSlice).slice.starts[0], length = space.count
        let window = carried ? (memoryStart + length - shift)..<(memoryStart + length) : 0..<0
        func assign(_ i: LoopIR.Index, _ value: Expression) -> Statement {
            .assign(target.place(i), operation.elementwise(memoryFirst ? [value, .literal(0)] : [.literal(0), value])!)
        }
        func assignRange(_ range: Range<Int>) -> [Statement] {
            guard !range.isEmpty else { return [] }
            let element = { (i: LoopIR.Index) in memory?.element(i) ?? .literal(0) }
            if range.count == 1 { return [assign(LoopIR.Index(range.lowerBound), element(LoopIR.Index(range.lowerBound)))] }
            // Not `i`: an unrolled loop's counter is still in scope here.
            let q = LoopIR.Index(0, [.init(.tail, 1)])
            return [.loop(LoopIR.Loop(.tail, from: range.lowerBound, to: range.upperBound, body: [assign(q, element(q))]))]
        }
        var statements: [Statement] = []
        for uncovered in [0..<pad.slice.starts[0], pad.slice.ends[0]..<nodes[m].shape[0]] where !uncovered.isEmpty {
            let carriedPart = uncovered.clamped(to: window)
            guard !carriedPart.isEmpty else { statements += assignRange(uncovered); continue }
            statements += assignRange(uncovered.lowerBound..<carriedPart.lowerBound)
            for position in carriedPart {
                // An empty loop declares no carries: they would still hold the pad's +0.0.
                let carry: Expression = length == 0 ? .literal(0) : .variable(.carry(pair.memory, memoryStart + length - position))
                statements.append(assign(LoopIR.Index(position), carry))
            }
            statements += assignRange(carriedPart.upperBound..<uncovered.upperBound)
        }
        return statements
    }

    /// Zeros the elements of a padded slice's result that the slice does not cover: the ends of
    /// a one-axis unit-step slice, everything otherwise (the loop then overwrites the slice).
    private func zeroOutsideSlice(_ pad: PadSlice, _ target: LoopIR.Operand) -> [Statement] {
        let shape = pad.shape
        guard shape.rank == 1, pad.slice.steps == [1] else { return LoopIR.fill(target, with: 0) }
        var statements: [Statement] = []
        for (from, to) in [(0, pad.slice.starts[0]), (pad.slice.ends[0], shape[0])] where to > from {
            if to - from == 1 {
                statements.append(.assign(target.place(LoopIR.Index(from)), .literal(0)))
            } else {
                let i = LoopIR.Index(0, [.init(.flat, 1)])
                statements.append(.loop(LoopIR.Loop(.flat, from: from, to: to, body: [.assign(target.place(i), .literal(0))])))
            }
        }
        return statements
    }

    // MARK: - Reads

    /// Operand `o` of a member at the current index: a member of this loop by name, a scalar
    /// written into its reader, else a strided read of memory.
    private func read(_ o: Int) throws -> Expression {
        let shape = nodes[o].shape
        if groupOf[o] == group, shape == space, !roles[o].isTerminal {
            return .variable(.value(o))
        }
        if let inlined = scalarExpressions[o] { return inlined }
        let a = access[o]
        return try value(a.base).element(broadcastIndex(a, shape))
    }

    /// The index reading a value of `shape`, accessed with `a`, broadcast over the space: its
    /// strides along the space's axes (zero where it lacks the axis or has extent 1).
    private func broadcastIndex(_ a: Access, _ shape: Shape) -> LoopIR.Index {
        let lead = space.rank - shape.rank
        var terms: [LoopIR.Index.Term] = []
        terms.reserveCapacity(shape.rank)
        for axis in 0..<shape.rank where a.strides[axis] != 0 && !(shape[axis] == 1 && space[axis + lead] != 1) {
            terms.append(LoopIR.Index.Term(counters[axis + lead], a.strides[axis]))
        }
        return LoopIR.Index(a.offset, terms)
    }

    /// Member `m`'s value `shift` positions back (a carried value; 0: the current one).
    private func carry(_ m: Int, _ shift: Int) -> Expression {
        shift == 0 ? .variable(.value(m)) : .variable(.carry(m, shift))
    }

    private func index(_ offset: Int, _ strides: [Int]) -> LoopIR.Index {
        LoopIR.Index(offset: offset, counters: counters, strides: strides)
    }

    private func value(_ node: Int) throws -> LoopIR.Operand {
        guard let operand = values[node] else { throw internalError("%\(node) is read from memory but was not stored") }
        return operand
    }

    // MARK: - The body

    /// How often each member is named by the loop's expressions.
    private func memberReads(_ parts: Parts) -> [Int: Int] {
        var occurrences: [Int: Int] = [:]
        let expressions = Array(parts.raw.values) + parts.terminals.values.map(\.operand)
        LoopIR.forEachExpression(in: expressions.map { .assign(.variable(.temporary(0)), $0) }, onCall: { _ in }) { e in
            if case let .variable(.value(o, _)) = e { occurrences[o, default: 0] += 1 }
        }
        return occurrences
    }

    /// A value read once in the loop and never stored is written into its reader's expression
    /// (TinyCC then keeps it in a register instead of a stack slot), as long as expressions stay
    /// shallow; others are locals of the body, stored ones also written to memory.
    private func loopBody(_ parts: Parts, _ occurrences: [Int: Int]) throws -> [Statement] {
        var resolved: [Int: Expression] = [:]
        func resolve(_ e: Expression) -> Expression {
            e.rewritten { if case let .variable(.value(o, _)) = $0 { return resolved[o] } else { return nil } }
        }
        var body: [Statement] = []
        for m in members {
            if let t = parts.terminals[m] {
                body.append(t.accumulates ? .accumulate(t.place, resolve(t.operand)) : .assign(t.place, resolve(t.operand)))
                continue
            }
            guard let raw = parts.raw[m] else { continue }
            let e = resolve(raw)
            if isCarried(m) || recomputed[m] != nil {
                // Its value at each index, kept for the pad pairs that read it.
                if occurrences[m] != nil || isCarried(m) { body.append(.constant(.value(m), e)) }
            } else if !plan.materialized[m], occurrences[m] == nil {
                // Read by nothing in the loop (a recomputed pad's operand, say).
                continue
            } else if !plan.materialized[m], occurrences[m] == 1, e.depth <= LoopIR.maximumDepth - 4 {
                resolved[m] = e
            } else if !plan.materialized[m] {
                body.append(.constant(.value(m), e))
            } else {
                let store = try value(m).place(index(0, space.strides))
                body += occurrences[m, default: 0] == 0 ? [.assign(store, e)] : [.constant(.value(m), e), .assign(store, .variable(.value(m)))]
            }
        }
        return body + carryUpdates()
    }

    private var carriedMembers: [(member: Int, depth: Int)] {
        members.compactMap { m in padForm == .carried ? plan.storage.carriablePads[m].map { (m, $0) } : nil }
    }

    private func isCarried(_ m: Int) -> Bool { padForm == .carried && plan.storage.carriablePads[m] != nil }

    // MARK: - Recomputed pads

    /// Most expression nodes a recomputed operand may have.
    static let maximumRecomputedSize = 48

    /// The carriable pads of the group whose operand is a small expression of memory reads that
    /// calls nothing, with that expression: recomputing it a position or two back keeps the
    /// loop free of a dependence through memory or a local, which an optimising compiler would
    /// not vectorise (P2's gradient on gcc -O3, AVX2: 2.2 us with the pad stored, 0.8 us
    /// recomputed).
    private func recomputableOperands() -> [Int: Expression] {
        let pads = members.filter { plan.storage.carriablePads[$0] != nil }
        guard !pads.isEmpty else { return [:] }
        var whole: [Int: Expression] = [:]
        // Members in node order, so operands come first; no recursion.
        for m in members where roles[m] == .elementwise && nodes[m].shape == space && plan.grouping.padPairs[m] == nil {
            var operands: [Expression] = []
            for o in nodes[m].inputs {
                if let e = whole[o] { operands.append(e); continue }
                guard let e = try? read(o), !namesALocal(e) else { break }
                operands.append(e)
            }
            guard operands.count == nodes[m].inputs.count, let e = nodes[m].operation.elementwise(operands),
                  Self.isSmallAndCallFree(e) else { continue }
            whole[m] = e
        }
        var result: [Int: Expression] = [:]
        for pad in pads { result[pad] = whole[nodes[pad].inputs[0]] }
        return result
    }

    /// Whether `e` names a member's value or a carry (locals of the loop body).
    private func namesALocal(_ e: Expression) -> Bool {
        var found = false
        LoopIR.visit(e) { item in
            if case .expression(.variable(.value(let o, _))) = item, groupOf[o] == group { found = true }
            if case .expression(.variable(.carry)) = item { found = true }
        }
        return found
    }

    private static func isSmallAndCallFree(_ e: Expression) -> Bool {
        var count = 0, calls = false
        LoopIR.visit(e) { item in
            switch item {
            case .expression: count += 1
            case .function: calls = true
            default: break
            }
        }
        return !calls && count <= maximumRecomputedSize
    }

    /// The loop over the group's one axis with every carry of a recomputed pad replaced by its
    /// operand that many positions back: the first positions, where some carry would read
    /// before the start, written out one by one with those carries zero (the pad's zeros).
    private func recomputingLoop(_ body: [Statement]) -> [Statement] {
        let count = space.count
        let peeled = min(count, recomputed.keys.map { plan.storage.carriablePads[$0]! }.max()!)
        var statements: [Statement] = []
        for position in 0..<peeled {
            let at = LoopIR.mapIndices(body) { LoopIR.Index($0.offset + position * $0.stride(of: .flat)) }
            statements.append(.block(withRecomputedCarries(at, position: position)))
        }
        if peeled < count {
            statements.append(.loop(LoopIR.Loop(.flat, from: peeled, to: count, mayUnroll: true, body: withRecomputedCarries(body, position: nil))))
        }
        return statements
    }

    /// `statements` with carry j of each recomputed pad replaced by its operand j positions
    /// before `position` (a constant; nil: the loop's counter), or zero before the start. The
    /// statements after the loop read carry j as the operand's element j from the end: j
    /// before position `count`.
    private func withRecomputedCarries(_ statements: [Statement], position: Int?) -> [Statement] {
        withCarries(statements, from: recomputed, position: position)
    }

    private func operandValue(_ operand: Expression, back: Int, position: Int?) -> Expression {
        guard let position else { return LoopIR.mapIndices(operand) { $0.shifted(.flat, by: -back) } }
        let at = position - back
        guard at >= 0 else { return .literal(0) }
        return LoopIR.mapIndices(operand) { LoopIR.Index($0.offset + at * $0.stride(of: .flat)) }
    }

    /// Carries start at the pad's +0.0.
    private func carryDeclarations() -> [Statement] {
        guard space.count > 0 else { return [] }
        return carriedMembers.flatMap { m, depth in stride(from: 1, through: depth, by: 1).map { Statement.declare(.carry(m, $0), .literal(0), mutable: true) } }
    }

    /// Carry j is the value j positions before the next iteration; the deepest first, so older
    /// carries are read before they are overwritten.
    private func carryUpdates() -> [Statement] {
        carriedMembers.flatMap { m, depth in
            stride(from: depth, through: 1, by: -1).map { j in
                Statement.assign(.variable(.carry(m, j)), j == 1 ? .variable(.value(m)) : .variable(.carry(m, j - 1)))
            }
        }
    }

    /// The body in loops over the space: one flat loop when every access walks memory
    /// contiguously or not at all, else a nest, innermost unrollable.
    private func loopNest(_ body: [Statement]) -> [Statement] {
        let extents = space.dims
        let count = space.count
        if count == 0 { return [] }
        if count == 1 { return LoopIR.mapIndices(body) { LoopIR.Index($0.offset) } }
        if extents.count == 1 { return [.loop(LoopIR.Loop(.flat, to: count, mayUnroll: true, body: body))] }
        if let flat = LoopIR.flattened(body, extents: extents) {
            return [.loop(LoopIR.Loop(.flat, to: count, mayUnroll: true, body: flat))]
        }
        var statements = body
        for axis in extents.indices.reversed() {
            statements = [.loop(LoopIR.Loop(.axis(axis), to: extents[axis], mayUnroll: axis == extents.count - 1, body: statements))]
        }
        return statements
    }

    /// `%3 = pow[2](%2); %5 = sub(%3, %4) [99]`: operation names and node numbers only.
    private func summary() -> String {
        // Kernels split into parts (huge graphs) say only what the loop runs over: listing
        // every member would be a quarter of their C.
        if plan.parts.count > 1 { return String(members.count) + " nodes over " + space.description }
        var text = ""
        for (k, m) in members.prefix(32).enumerated() {
            if k > 0 { text += "; " }
            text += "%" + String(m) + " = " + nodes[m].operation.name + "("
            for (j, o) in nodes[m].inputs.enumerated() { text += (j == 0 ? "%" : ", %") + String(o) }
            text += ")"
        }
        if members.count > 32 { text += "; ... " + String(members.count - 32) + " more" }
        return text + " " + space.description
    }
}

/// An error in Nabla's own invariants, found while writing code.
func internalError(_ what: String) -> NablaError {
    .internalInconsistency(what)
}
