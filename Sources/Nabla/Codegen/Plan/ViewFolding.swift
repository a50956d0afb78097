/// For each node, the distinct nodes that read it, in increasing order: one array for the whole
/// graph (a graph of a million nodes would otherwise allocate a million arrays).
struct Adjacency {
    private var starts: [Int]
    private var list: [Int]

    init(readersOf nodes: [Graph.Node]) {
        var counts = [Int](repeating: 0, count: nodes.count + 1)
        func distinct(_ inputs: [Int], _ body: (Int) -> Void) {
            if inputs.count > 16 {
                var seen = Set<Int>()
                for operand in inputs where seen.insert(operand).inserted { body(operand) }
                return
            }
            for (k, operand) in inputs.enumerated() where !inputs[..<k].contains(operand) { body(operand) }
        }
        for node in nodes { distinct(node.inputs) { counts[$0 + 1] += 1 } }
        for i in 0..<nodes.count { counts[i + 1] += counts[i] }
        var next = counts
        var list = [Int](repeating: 0, count: counts[nodes.count])
        for (i, node) in nodes.enumerated() {
            distinct(node.inputs) { operand in
                list[next[operand]] = i
                next[operand] += 1
            }
        }
        starts = counts
        self.list = list
    }

    /// The readers of node `i`.
    subscript(i: Int) -> ArraySlice<Int> { list[starts[i]..<starts[i + 1]] }
}

/// A strided way of reading a node's elements: element `index` (a multi-index over the node's
/// own shape) is element `offset + sum(index[k] * strides[k])` of node `base`'s storage.
struct Access: Equatable {
    var base: Int
    var offset: Int
    var strides: [Int]

    /// A node read from its own storage, contiguously.
    static func contiguous(_ node: Int, _ shape: Shape) -> Access { Access(base: node, offset: 0, strides: shape.strides) }
}

/// What every planning phase needs to know about a graph's edges.
struct GraphFacts {
    let nodes: [Graph.Node]
    /// Each node's operation's role, read once (casts of existentials are slow).
    let roles: [OperationRole]
    /// Distinct readers of each node, in increasing order.
    let consumers: Adjacency
    let isOutput: [Bool]

    init(_ graph: Graph) {
        nodes = graph.nodes
        roles = graph.nodes.map { $0.operation.role }
        consumers = Adjacency(readersOf: graph.nodes)
        var isOutput = [Bool](repeating: false, count: nodes.count)
        for port in graph.outputs { isOutput[port.node] = true }
        self.isOutput = isOutput
    }

    var count: Int { nodes.count }

    /// True for a scalar elementwise node: a step of its own, written into its one reader's
    /// expression or stored, never a loop.
    func isScalarStep(_ i: Int) -> Bool { roles[i] == .elementwise && nodes[i].shape.rank == 0 }

    /// The view node `i` is, if it is one.
    func view(_ i: Int) -> (any StridedView)? { roles[i] == .view ? nodes[i].operation as? any StridedView : nil }
}

extension OperationRole {
    /// Members of a fused loop that write a result of another shape from inside the loop (a
    /// sum accumulating, a padded slice scattering); their value is complete only after it.
    var isTerminal: Bool { self == .sum || self == .padSlice }
    /// Operations a fused loop can compute.
    var isFusible: Bool { self == .elementwise || isTerminal }
}

/// Phase 1 of planning, view folding: layout operations (slices, transposes, broadcasts,
/// reshapes) become strided reads of what they view, so they cost nothing, unless a consumer
/// needs contiguous memory (a matrix product, say) or they are outputs.
struct ViewFolding {
    /// How each node's elements are read.
    var access: [Access]
    /// Nodes that must be stored because of views: views some consumer cannot read through,
    /// output views, and operands of reshapes that do not compose with their strides.
    var stored: [Bool]

    init(_ facts: GraphFacts) {
        let nodes = facts.nodes
        access = nodes.indices.map { Access.contiguous($0, nodes[$0].shape) }
        stored = [Bool](repeating: false, count: nodes.count)
        for (i, node) in nodes.enumerated() {
            guard let view = facts.view(i) else { continue }
            fold(i, view, node, nodes)
            // Some operations read an operand from its first element on: a contiguous view will do.
            let contiguous = access[i].strides == node.shape.strides
            let readsThroughViews = facts.consumers[i].allSatisfy { c in
                facts.roles[c].isFusible || facts.roles[c] == .view || (contiguous && nodes[c].operation.readsContiguousViewsInPlace)
            }
            if facts.isOutput[i] || !readsThroughViews { stored[i] = true }
        }
    }

    /// Reads view `i` through its operand's access, or stores the operand when they do not
    /// compose (only a reshape of a non-contiguous view).
    private mutating func fold(_ i: Int, _ view: any StridedView, _ node: Graph.Node, _ nodes: [Graph.Node]) {
        let operand = node.inputs[0]
        let source = access[operand]
        let operandShape = nodes[operand].shape
        if let (offset, strides) = view.view(of: operandShape, offset: source.offset, strides: source.strides, result: node.shape) {
            access[i] = Access(base: source.base, offset: offset, strides: strides)
        } else {
            stored[operand] = true
            let (offset, strides) = view.view(of: operandShape, result: node.shape)
            access[i] = Access(base: operand, offset: offset, strides: strides)
            access[operand] = Access.contiguous(operand, operandShape)
        }
    }

    /// After storage is decided: stored nodes are read from their own storage, and views
    /// re-resolve against the stored views they read.
    mutating func resolve(_ materialized: [Bool], _ facts: GraphFacts) {
        let nodes = facts.nodes
        for i in nodes.indices where materialized[i] { access[i] = Access.contiguous(i, nodes[i].shape) }
        for (i, node) in nodes.enumerated() where !materialized[i] {
            guard let view = facts.view(i) else { continue }
            let operand = node.inputs[0]
            let source = access[operand]
            if let (offset, strides) = view.view(of: nodes[operand].shape, offset: source.offset, strides: source.strides, result: node.shape) {
                access[i] = Access(base: source.base, offset: offset, strides: strides)
            }
        }
    }
}
