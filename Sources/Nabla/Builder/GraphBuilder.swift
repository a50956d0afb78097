/// Builds a graph one operation at a time.
///
/// Create inputs with `input(_:shape:)`, combine the returned `Tensor`s with operators and
/// functions, then call `graph(outputs:)` to get an immutable `Graph` holding just what the
/// outputs need. Derivatives (`gradient(of:wrt:)`) append to the same builder, so forward
/// values are shared with the derivative computation and nothing is recomputed.
///
/// A builder is not thread-safe; build each graph on one thread (graphs and kernels made from
/// it are freely shareable).
public final class GraphBuilder {
    private(set) var nodes: [Graph.Node] = []
    private(set) var inputPorts: [Graph.Port] = []
    private var scalarConstants: [UInt64: Int] = [:]
    /// Existing node for each (operation, operands): applying the same operation to the same
    /// operands again returns it, so shared subexpressions (common in derivatives) are built once.
    private var existing = HashConsTable()
    private var inputNames = Set<String>()

    public init() {}

    /// Rebuilds an existing graph in a new builder, so it can be extended or differentiated.
    ///
    /// Returns the builder and a tensor for each node of `graph`, indexed like `graph.nodes`.
    public static func replaying(_ graph: Graph) -> (GraphBuilder, [Tensor]) {
        let builder = GraphBuilder()
        var tensors: [Tensor] = []
        tensors.reserveCapacity(graph.nodes.count)
        for node in graph.nodes {
            let inputs = node.inputs.map { tensors[$0].id }
            let id = builder.append(Graph.Node(operation: node.operation, inputs: inputs, shape: node.shape))
            if let constant = node.operation as? Constant, constant.value.shape.isScalar {
                builder.scalarConstants[constant.value.scalar.bitPattern] = id
            } else if !(node.operation is Input) {
                builder.existing.insert(id, hash: HashConsTable.hash(node.operation, inputs))
            }
            tensors.append(Tensor(builder: builder, id: id))
        }
        builder.inputPorts = graph.inputs.map { Graph.Port(name: $0.name, node: tensors[$0.node].id) }
        builder.inputNames = Set(graph.inputs.map(\.name))
        return (builder, tensors)
    }

    /// Declares a named input of the given shape (a scalar by default).
    /// - Throws: `NablaError.duplicateName` if an input of that name exists.
    public func input(_ name: String, shape: Shape = .scalar) throws -> Tensor {
        guard inputNames.insert(name).inserted else {
            throw NablaError.duplicateName(kind: "input", name: name)
        }
        let id = append(Graph.Node(operation: Input(), inputs: [], shape: shape))
        inputPorts.append(Graph.Port(name: name, node: id))
        return Tensor(builder: self, id: id)
    }

    /// A scalar constant. Equal constants share one node.
    public func constant(_ value: Double) -> Tensor {
        if let id = scalarConstants[value.bitPattern] { return Tensor(builder: self, id: id) }
        let id = append(Graph.Node(operation: Constant(TensorData(value)), inputs: [], shape: .scalar))
        scalarConstants[value.bitPattern] = id
        return Tensor(builder: self, id: id)
    }

    /// A tensor constant.
    public func constant(_ value: TensorData) -> Tensor {
        if value.shape.isScalar { return constant(value.scalar) }
        let id = append(Graph.Node(operation: Constant(value), inputs: [], shape: value.shape))
        return Tensor(builder: self, id: id)
    }

    /// A tensor of the given shape filled with `value` (a broadcast scalar, not stored data).
    public func filled(_ value: Double, shape: Shape) -> Tensor {
        let scalar = constant(value)
        if shape.isScalar { return scalar }
        // A scalar always broadcasts, so this cannot fail.
        return try! apply(BroadcastTo(shape: shape), [scalar])
    }

    /// Appends `operation` applied to `operands` after checking shapes.
    ///
    /// This is the one way nodes other than inputs and constants enter a graph. Applying an
    /// equal operation to the same operands twice returns the first node.
    public func apply(_ operation: some Operation, _ operands: [Tensor]) throws -> Tensor {
        for operand in operands where operand.builder !== self {
            throw NablaError.mixedBuilders(op: operation.name)
        }
        let inputs = operands.map(\.id)
        let hash = HashConsTable.hash(operation, inputs)
        let found = existing.find(hash) { id in
            nodes[id].inputs == inputs && operation.isEqual(to: nodes[id].operation)
        }
        if let id = found { return Tensor(builder: self, id: id) }
        let shape = try operation.outputShape(for: operands.map(\.shape))
        let id = append(Graph.Node(operation: operation, inputs: inputs, shape: shape))
        existing.insert(id, hash: hash)
        return Tensor(builder: self, id: id)
    }

    /// `y` recomputed with `replacement` in place of `x` (same shape): every node between them
    /// that depends on `x` is applied again to the substituted operands.
    public func substituting(_ replacement: Tensor, for x: Tensor, in y: Tensor) throws -> Tensor {
        guard replacement.shape == x.shape else {
            throw NablaError.shapeMismatch(op: "substitute", shapes: [x.shape, replacement.shape], reason: "the replacement must have the shape of what it replaces")
        }
        guard x.id <= y.id else { return y }
        var mapped: [Int: Tensor] = [x.id: replacement]
        for id in x.id...y.id where mapped[id] == nil {
            let node = nodes[id]
            guard node.inputs.contains(where: { mapped[$0] != nil }) else { continue }
            mapped[id] = try apply(node.operation, node.inputs.map { mapped[$0] ?? Tensor(builder: self, id: $0) })
        }
        return mapped[y.id] ?? y
    }

    private func append(_ node: Graph.Node) -> Int {
        nodes.append(node)
        return nodes.count - 1
    }

    /// The graph computing the given outputs, in the given order.
    ///
    /// Only nodes the outputs depend on are kept; every declared input is kept, in declaration
    /// order, so a kernel's input list does not change when an input goes unused.
    /// - Throws: `NablaError.duplicateName` for a repeated output name, `.mixedBuilders` for a
    ///   tensor from another builder.
    public func graph(outputs: [(String, Tensor)]) throws -> Graph {
        var seen = Set<String>()
        for (name, tensor) in outputs {
            guard seen.insert(name).inserted else { throw NablaError.duplicateName(kind: "output", name: name) }
            guard tensor.builder === self else { throw NablaError.mixedBuilders(op: "output '\(name)'") }
        }
        let whole = Graph(nodes: nodes, inputs: inputPorts, outputs: outputs.map { Graph.Port(name: $0.0, node: $0.1.id) })
        return whole.pruned()
    }

    /// The graph computing the given outputs, in the order written.
    public func graph(outputs: KeyValuePairs<String, Tensor>) throws -> Graph {
        try graph(outputs: outputs.map { ($0.key, $0.value) })
    }
}
