/// Phase 3 of planning, what to store: outputs, sums, members read outside their loop, and
/// anything read by an operation that needs memory. The rest is never stored: a value read in
/// its own loop lives in a local of the loop body, a scalar read once is written into its
/// reader's expression.
struct StorageDecision {
    /// Whether each node's value is stored (a buffer, an output, or a variable for rank 0).
    var materialized: [Bool]
    /// Memory pads read only by pad pairs, at most `maximumCarry` positions behind the register
    /// pad, by pad node: the largest shift. C for unrolled loops keeps their operand's last
    /// values in locals instead of storing them (which suits TinyCC); C for rolled loops
    /// recomputes the operand at the earlier position when it is small (which gcc and clang
    /// vectorise; the stored and the carried forms each keep a dependence from one iteration to
    /// the next). They are planned as stored, so one plan serves every form.
    var carriablePads: [Int: Int] = [:]

    static let maximumCarry = 4
    /// Longest chain of scalars written into one another's expressions: longer chains are
    /// stored every so often, so no C expression nests deeper than `LoopIR.maximumDepth`.
    static let maximumInlineChain = 12

    init(_ facts: GraphFacts, _ views: ViewFolding, _ grouping: LoopGrouping) {
        materialized = views.stored
        var chain = [Int](repeating: 0, count: facts.count)
        for i in facts.nodes.indices {
            let role = facts.roles[i]
            if facts.isOutput[i] || role == .input || role == .constant { materialized[i] = true }
            if facts.isScalarStep(i) {
                decideScalar(i, facts, &chain)
            } else if grouping.group[i] != nil {
                decideLoopMember(i, grouping, facts)
            } else if role != .view {
                materialized[i] = true
            }
        }
    }

    /// A scalar read once, by an elementwise scalar expression that names it once, is written
    /// into that expression (only into another scalar: inside a loop it would be recomputed per
    /// element), unless the chain of such scalars grows too long.
    private mutating func decideScalar(_ i: Int, _ facts: GraphFacts, _ chain: inout [Int]) {
        let node = facts.nodes[i]
        let consumers = facts.consumers[i]
        let inlinable = consumers.count == 1 && Self.readsOnce(i, facts.nodes[consumers.first!]) && {
            let c = consumers.first!
            return facts.roles[c] == .elementwise && facts.nodes[c].shape.rank == 0
        }()
        var depth = 1
        for o in node.inputs where !materialized[o] { depth = max(depth, 1 + chain[o]) }
        if facts.isOutput[i] || !inlinable || facts.roles[i].isTerminal || depth > Self.maximumInlineChain {
            materialized[i] = true
        } else {
            chain[i] = depth
        }
    }

    /// Whether `reader`'s C names operand `i` once: it is one operand, and not the base of a
    /// small power (written as a product of copies).
    private static func readsOnce(_ i: Int, _ reader: Graph.Node) -> Bool {
        var uses = 0
        for o in reader.inputs where o == i { uses += 1 }
        guard uses == 1 else { return false }
        // The type compared first: a cast of every reader would cost more than the rest.
        if type(of: reader.operation) == PowConstant.self, let power = reader.operation as? PowConstant {
            return power.exponent != 2 && power.exponent != 3
        }
        return true
    }

    /// A member of a loop is stored when something outside the loop reads it (members read it
    /// in the loop: elementwise ones at the same index, sums as they accumulate), and sums,
    /// pads and pad pairs are stored unless they live in registers or carries.
    private mutating func decideLoopMember(_ i: Int, _ grouping: LoopGrouping, _ facts: GraphFacts) {
        let nodes = facts.nodes, consumers = facts.consumers[i], pairs = grouping.padPairs
        let g = grouping.group[i]!, space = grouping.groups[g].shape
        var readOutside = false
        for c in consumers where !(grouping.group[c] == g && (facts.roles[c].isTerminal || pairs[c] != nil || nodes[c].shape == space)) {
            readOutside = true
            break
        }
        var stored = pairs[i] != nil || readOutside
        if facts.roles[i].isTerminal && !stored {
            // A pad read only as the register side of pad pairs is never stored; one read only
            // as the memory side a few positions behind can be carried.
            let onlyInRegisters = !consumers.isEmpty && consumers.allSatisfy { pairs[$0]?.register == i }
            if !onlyInRegisters { stored = true }
            noteCarriable(i, consumers, pairs, facts)
        }
        if stored { materialized[i] = true }
    }

    /// Records pad `i` as carriable when every reader is a pad pair reading it as its memory
    /// side at most `maximumCarry` positions behind.
    private mutating func noteCarriable(_ i: Int, _ consumers: ArraySlice<Int>, _ pairs: [Int: PadPair], _ facts: GraphFacts) {
        guard facts.roles[i] == .padSlice, !facts.isOutput[i], !consumers.isEmpty else { return }
        var deepest = 0
        for c in consumers {
            guard let pair = pairs[c], pair.memory == i else { return }
            let shift = pair.shift(facts.nodes)
            guard (0...Self.maximumCarry).contains(shift) else { return }
            deepest = max(deepest, shift)
        }
        carriablePads[i] = deepest
    }
}

/// Phase 4 of planning, lifetimes: when each value is written and last read, in steps of the
/// schedule (a fused loop writes all its members at the step of its last member).
struct Lifetimes {
    /// Step at which each node's value is written.
    var point: [Int]
    /// Last step at which each node's storage is read (the node count for outputs).
    var lastUse: [Int]

    init(_ facts: GraphFacts, _ grouping: LoopGrouping, _ storage: StorageDecision, _ access: [Access]) {
        let count = facts.count, nodes = facts.nodes, materialized = storage.materialized
        var points = Array(0..<count)
        for g in grouping.groups { for m in g.members { points[m] = g.point } }
        // A scalar written into its reader's expression is evaluated where the reader is.
        for i in stride(from: count - 1, through: 0, by: -1) where !materialized[i] && facts.isScalarStep(i) {
            points[i] = points[facts.consumers[i].first!]
        }
        // A folded view reads when its own readers do.
        var readAt = points
        for i in stride(from: count - 1, through: 0, by: -1) where !materialized[i] && facts.roles[i] == .view {
            readAt[i] = facts.consumers[i].map { readAt[$0] }.max() ?? points[i]
        }
        var lastUse = points
        for (i, node) in nodes.enumerated() {
            for operand in node.inputs { lastUse[operand] = max(lastUse[operand], readAt[i]) }
        }
        for i in 0..<count where facts.isOutput[i] { lastUse[i] = count }
        // Storage behind a folded view lives as long as the view is read.
        for i in stride(from: count - 1, through: 0, by: -1) where !materialized[i] {
            let base = access[i].base
            if base != i { lastUse[base] = max(lastUse[base], lastUse[i]) }
        }
        point = points
        self.lastUse = lastUse
    }
}
