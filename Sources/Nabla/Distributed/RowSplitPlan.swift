/// How one process of a data-parallel run computes a graph whose sharded inputs it holds only
/// some rows of: where every node lives (`RowPlacement`), which partial sums are summed over
/// the processes and after which stage, and how each output is combined.
///
/// Made by `RowSplitPlan.init`, one pass over the graph in topological order asking each
/// operation its `splitRows` rule. The stage of a node is the number of reductions (sums over
/// the processes) that must happen before it can be computed: a loss and its gradient are
/// stage 0 (one reduction at the end), with a penalty too (`mean(...) + lambda * sum(w^2)`:
/// process 0 adds the penalty to its partial sum); `sum(X @ w)^2` needs the sum reduced before
/// it is squared, so the square is stage 1.
struct RowSplitPlan {
    /// How a node reads one operand: as it is placed, or summed over the processes (a partial
    /// sum), and then, if replicated, cut to this process's rows along an axis or read as a
    /// partial sum (itself on the first process, zero on the others).
    struct Form: Equatable {
        var reduced = false
        var sliceAxis: Int?
        var promoted = false

        static let asIs = Form()
    }

    /// What the plan decided for one node.
    struct Decision {
        var placement: RowPlacement = .replicated
        /// The operation each process applies (nil: the node's own, unchanged).
        var local: (any Operation)?
        /// How each operand is read.
        var forms: [Form] = []
        /// Reductions needed before the node can be computed.
        var stage = 0
        /// True for a partial sum computed from values split by rows (a sum over the rows): on
        /// a process without rows, it is zero.
        var sumsRows = false
        /// Why the node cannot be computed on split rows, if it cannot.
        var refusal: String?
    }

    /// How an output is combined over the processes.
    enum Combination: Equatable {
        /// Every process computes the same value.
        case replicated
        /// Each process computes a partial sum; the output is their sum.
        case summed
        /// Each process computes its rows (along axis 0); the output joins them in order.
        case gathered
    }

    /// One decision per graph node.
    let decisions: [Decision]
    /// Combination of each graph output.
    let combinations: [Combination]
    /// Stage of each graph output: reductions before it is computed (a summed output is
    /// reduced at the end of its stage).
    let outputStages: [Int]
    /// The rows and this process's share of them.
    let process: ProcessRows
    var rows: Int { process.rows }
    var block: Range<Int> { process.block }
    var isFirstProcess: Bool { process.isFirst }
    var localRows: Int { process.block.count }

    /// Plans `graph` for process `rank` of `size`, with the inputs `sharded` split by rows
    /// (their leading axis) in contiguous blocks, one per process in rank order.
    /// - Throws: `NablaError.notSplittable` naming the first output that cannot be computed
    ///   and why; `.invalidArgument` for sharded inputs that are unknown, scalars or of
    ///   different row counts.
    init(_ graph: Graph, sharded: Set<String>, rank: Int, size: Int) throws {
        let rows = try Self.rowCount(graph, sharded: sharded)
        let process = ProcessRows(rows: rows, block: Self.block(of: rank, size: size, rows: rows), isFirst: rank == 0)
        let placements = graph.inputs.filter { sharded.contains($0.name) }.map { ($0.node, RowPlacement.rows(axis: 0)) }
        try self.init(graph, inputPlacements: Dictionary(placements) { a, _ in a }, process: process)
    }

    /// Plans `graph` with its input nodes placed as `inputPlacements` says (replicated when
    /// it does not say): a data-parallel kernel's graph, or a loop body inside one.
    init(_ graph: Graph, inputPlacements: [Int: RowPlacement], process: ProcessRows) throws {
        self.process = process
        var decisions = [Decision](repeating: Decision(), count: graph.nodes.count)
        for (id, node) in graph.nodes.enumerated() {
            decisions[id] = Self.decide(
                node, operands: node.inputs.map { decisions[$0] }, shapes: node.inputs.map { graph.nodes[$0].shape },
                input: inputPlacements[id] ?? .replicated, process: process)
        }
        var combinations: [Combination] = []
        var outputStages: [Int] = []
        for port in graph.outputs {
            let decision = decisions[port.node]
            if let refusal = decision.refusal { throw NablaError.notSplittable(output: port.name, reason: refusal) }
            switch decision.placement {
            case .replicated: combinations.append(.replicated)
            case .partial: combinations.append(.summed)
            case .rows(axis: 0): combinations.append(.gathered)
            case .rows(let axis):
                throw NablaError.notSplittable(output: port.name, reason: "its rows lie along axis \(axis), and outputs split by rows are joined along axis 0 (for a jacobian, use the numerator layout)")
            }
            outputStages.append(decision.stage)
        }
        self.decisions = decisions
        self.combinations = combinations
        self.outputStages = outputStages
    }

    /// The rows of process `rank` of `size`: blocks in rank order, the first `rows % size`
    /// one row longer than the rest (some empty when there are fewer rows than processes).
    static func block(of rank: Int, size: Int, rows: Int) -> Range<Int> {
        let base = rows / size, extra = rows % size
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// The common row count of the sharded inputs.
    static func rowCount(_ graph: Graph, sharded: Set<String>) throws -> Int {
        guard !sharded.isEmpty else { throw NablaError.invalidArgument(op: "shard", reason: "no input is sharded") }
        var rows: [(name: String, count: Int)] = []
        for name in sharded.sorted() {
            let shape = try graph.inputShape(name)
            guard shape.rank >= 1 else {
                throw NablaError.invalidArgument(op: "shard", reason: "input '\(name)' is a scalar; only inputs with rows (a leading axis) can be sharded")
            }
            rows.append((name, shape[0]))
        }
        if let other = rows.first(where: { $0.count != rows[0].count }) {
            throw NablaError.invalidArgument(op: "shard", reason: "sharded inputs have different row counts: '\(rows[0].name)' has \(rows[0].count), '\(other.name)' has \(other.count)")
        }
        // With no rows at all, even the first process would have none, and the replicated
        // terms it adds would be lost; such data needs no splitting.
        guard rows[0].count > 0 else {
            throw NablaError.invalidArgument(op: "shard", reason: "the sharded inputs have no rows; run without --shard")
        }
        return rows[0].count
    }

    /// The decision for one node from its operands' decisions.
    private static func decide(_ node: Graph.Node, operands: [Decision], shapes: [Shape], input: RowPlacement, process: ProcessRows) -> Decision {
        var decision = Decision()
        decision.forms = Array(repeating: .asIs, count: node.inputs.count)
        if node.operation is Input {
            decision.placement = input
            return decision
        }
        if let refused = operands.first(where: { $0.refusal != nil }) {
            decision.refusal = refused.refusal
            return decision
        }
        decision.refusal = resolve(node, &decision, placements: operands.map(\.placement), shapes: shapes, process: process)
        decision.stage = zip(operands, decision.forms).map { $1.reduced ? $0.stage + 1 : $0.stage }.max() ?? 0
        return decision
    }

    /// Asks the node's operation until its operands suit it, recording in `decision` how it
    /// reads them, where its result lives and what each process applies; returns why it cannot
    /// run on split rows, or nil.
    private static func resolve(
        _ node: Graph.Node, _ decision: inout Decision, placements: [RowPlacement], shapes: [Shape], process: ProcessRows
    ) -> String? {
        let rows = process.rows
        var placements = placements
        // Each round turns some operands replicated (reduced) or split (sliced), and they never
        // turn back, so there are at most two rounds per operand.
        for _ in 0...(2 * placements.count) {
            if placements.allSatisfy({ $0 == .replicated }) { return nil }
            let split = RowSplit(placements: placements, shapes: shapes, result: node.shape, process: process)
            switch node.operation.splitRows(split) {
            case .rows(let axis, let local):
                guard axis < node.shape.rank, node.shape[axis] == rows else {
                    return "\(node.operation.name) puts rows at axis \(axis) of \(node.shape) (a Nabla bug)"
                }
                decision.placement = .rows(axis: axis)
                decision.local = local
                return nil
            case .partial(let local):
                decision.placement = .partial
                decision.local = local
                decision.sumsRows = placements.contains { if case .rows = $0 { true } else { false } }
                return nil
            case .reduceFirst(let indices):
                let change = indices.filter { placements[$0] == .partial }
                guard !change.isEmpty else { break }
                for i in change {
                    placements[i] = .replicated
                    decision.forms[i].reduced = true
                }
            case .sliceFirst(let cuts):
                let change = cuts.filter { placements[$0.operand] == .replicated }
                guard !change.isEmpty else { break }
                if let wrong = change.first(where: { shapes[$0.operand][$0.axis] != rows }) {
                    return "\(node.operation.name) pairs the rows with \(shapes[wrong.operand][wrong.axis]) elements of a replicated operand"
                }
                for cut in change {
                    placements[cut.operand] = .rows(axis: cut.axis)
                    decision.forms[cut.operand].sliceAxis = cut.axis
                }
            case .promoteFirst(let indices):
                let change = indices.filter { placements[$0] == .replicated }
                guard !change.isEmpty else { break }
                for i in change {
                    placements[i] = .partial
                    decision.forms[i].promoted = true
                }
            case .refused(let reason):
                return reason
            }
        }
        return "\(node.operation.name) gave no rule for operands \(placements) (a Nabla bug)"
    }
}
