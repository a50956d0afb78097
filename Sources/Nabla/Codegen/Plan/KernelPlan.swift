/// Everything code generation decides about a scheduled graph before writing any code: which
/// views are folded, which nodes share loops, what is stored where, when values live, and how
/// the kernel is split into functions. Each phase is its own type, testable alone.
struct KernelPlan: Sendable {
    let graph: Graph
    let facts: GraphFacts
    /// How each node is read (after storage is decided, stored nodes from their own storage).
    let views: ViewFolding
    let grouping: LoopGrouping
    let storage: StorageDecision
    let lifetimes: Lifetimes
    let parts: KernelParts
    /// Which output each node is computed into, if any.
    let outputNode: [Int?]
    /// Which input each node is, if any.
    let inputIndex: [Int?]
    /// Stored rank-0 values kept in the workspace (read in another part than written) rather
    /// than in a variable.
    let inMemory: [Bool]
    let memory: MemoryPlan
    /// The plan of each loop (`Scan`) node's body, and where the loop's own scratch lies.
    let loops: [Int: LoopPlan]
    /// Workspace the kernel needs, in doubles: the planned buffers, then each loop's scratch.
    let workspaceDoubles: Int

    /// What a loop node needs besides its operands and result: its body's plan, and scratch at
    /// `scratchOffset` (doubles into the workspace) for the carries each step writes
    /// (`carryOffsets`), then the body's own workspace (at `bodyWorkspaceOffset`).
    struct LoopPlan: Sendable {
        let body: KernelPlan
        let scratchOffset: Int
        let carryOffsets: [Int]
        let bodyWorkspaceOffset: Int
    }

    init(graph: Graph, partSize: Int = KernelParts.defaultSize) {
        self.init(graph: graph, partSize: partSize, unless: { false })!
    }

    /// The plan, or nil when `stopped` says true between two phases (a plan made on the side
    /// that is no longer wanted stops early).
    init?(graph: Graph, partSize: Int = KernelParts.defaultSize, unless stopped: () -> Bool) {
        self.graph = graph
        let facts = GraphFacts(graph)
        if stopped() { return nil }
        var views = ViewFolding(facts)
        let grouping = LoopGrouping(facts, views)
        if stopped() { return nil }
        let storage = StorageDecision(facts, views, grouping)
        views.resolve(storage.materialized, facts)
        if stopped() { return nil }
        let lifetimes = Lifetimes(facts, grouping, storage, views.access)
        let parts = KernelParts(facts, grouping, storage, size: partSize)
        if stopped() { return nil }
        let (outputNode, inputIndex) = Self.ports(graph)
        let nodes = facts.nodes
        let needsBuffer = nodes.indices.map { i in
            storage.materialized[i] && nodes[i].shape.rank > 0 && outputNode[i] == nil && inputIndex[i] == nil
                && facts.roles[i] != .constant
        }
        let inMemory = nodes.indices.map { i in
            storage.materialized[i] && nodes[i].shape.rank == 0 && inputIndex[i] == nil && facts.roles[i] != .constant
                && parts.part(of: lifetimes.point[i]) != parts.part(of: lifetimes.lastUse[i])
        }
        memory = MemoryPlan(graph: graph, needsBuffer: needsBuffer, needsSlot: inMemory, point: lifetimes.point, lastUse: lifetimes.lastUse)
        (loops, workspaceDoubles) = Self.planLoops(graph, after: memory.size)
        self.outputNode = outputNode
        self.inputIndex = inputIndex
        self.inMemory = inMemory
        self.facts = facts
        self.views = views
        self.grouping = grouping
        self.storage = storage
        self.lifetimes = lifetimes
        self.parts = parts
    }

    /// Outputs computed in place (tensors that are neither inputs nor constants, each into the
    /// first output naming it) and the input index of each input node.
    private static func ports(_ graph: Graph) -> ([Int?], [Int?]) {
        let nodes = graph.nodes
        var outputNode = [Int?](repeating: nil, count: nodes.count)
        var inputIndex = [Int?](repeating: nil, count: nodes.count)
        for (k, port) in graph.inputs.enumerated() { inputIndex[port.node] = k }
        for (k, port) in graph.outputs.enumerated() {
            let node = nodes[port.node]
            if node.shape.rank > 0, outputNode[port.node] == nil, !(node.operation is Input), !(node.operation is Constant) {
                outputNode[port.node] = k
            }
        }
        return (outputNode, inputIndex)
    }

    /// Plans each loop's body (simplified and scheduled like any graph) and its scratch, after
    /// `top` doubles of buffers; returns the plans and the whole workspace's size.
    private static func planLoops(_ graph: Graph, after top: Int) -> ([Int: LoopPlan], Int) {
        var loops: [Int: LoopPlan] = [:]
        var end = top
        for (i, node) in graph.nodes.enumerated() {
            // The type is compared first: a cast of every node of a large graph costs more.
            guard type(of: node.operation) == Scan.self, let scan = node.operation as? Scan else { continue }
            let body = scan.body.graph
            // The simplifier keeps every input and output, and cannot fail on a graph it built.
            let simplified = (try? simplifyWithStatistics(body).0) ?? body
            let bodyPlan = KernelPlan(graph: simplified.scheduledLate())
            let start = end
            var carryOffsets: [Int] = []
            for shape in scan.body.carryShapes {
                carryOffsets.append(end)
                end += MemoryPlan.rounded(shape.count)
            }
            loops[i] = LoopPlan(body: bodyPlan, scratchOffset: start, carryOffsets: carryOffsets, bodyWorkspaceOffset: end)
            end += MemoryPlan.rounded(bodyPlan.workspaceDoubles)
        }
        return (loops, end)
    }

    var materialized: [Bool] { storage.materialized }
    var access: [Access] { views.access }
}

/// Phase 5 of planning, splitting: consecutive steps of the schedule form parts of bounded
/// size, each written as its own C function, so no function grows with the graph (C compilers
/// take superlinear time, or too much stack, on huge functions).
struct KernelParts {
    /// The first step of each part; the first part starts at 0.
    let starts: [Int]

    /// Nodes per part (fused loops count their members).
    static let defaultSize = 4096

    init(_ facts: GraphFacts, _ grouping: LoopGrouping, _ storage: StorageDecision, size: Int) {
        var starts = [0]
        var load = 0
        for i in facts.nodes.indices {
            if facts.roles[i] == .input || facts.roles[i] == .constant { continue }
            if let g = grouping.group[i] {
                // A loop costs its members, where it is written.
                guard grouping.groups[g].point == i else { continue }
                load += grouping.groups[g].members.count
            } else if facts.roles[i] == .view && !storage.materialized[i] {
                continue
            } else {
                load += 1
            }
            if load >= size && i + 1 < facts.count {
                starts.append(i + 1)
                load = 0
            }
        }
        self.starts = starts
    }

    var count: Int { starts.count }

    /// The part holding step `step` (the end of the kernel is in the last part).
    func part(of step: Int) -> Int { starts.lastIndex(notAfter: step) }
}
