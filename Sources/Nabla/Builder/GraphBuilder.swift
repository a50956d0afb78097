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
    /// The tables every appended node touches, together at one fixed address: reaching them
    /// through a pointer spares each access the dynamic exclusivity check that a class's stored
    /// properties cost (several per node, on graphs of a million nodes). A builder is used from
    /// one thread at a time, and nothing here escapes a call.
    private struct Tables {
        var nodes: [Graph.Node] = []
        /// Each node's operation's role.
        var roles: [OperationRole] = []
        /// See `uniformValues`.
        var uniformValues: [Double?] = []
        /// Existing node for each (operation, operands): applying the same operation to the same
        /// operands again returns it, so shared subexpressions (common in derivatives) are built once.
        var existing = HashConsTable()
        /// The node of each scalar constant, by its bits.
        var scalarConstants: [UInt64: Int] = [:]
        /// Set while the builder is a view of a graph (`viewing(_:)`): the nodes before it are
        /// the builder's, and neither table above holds them yet.
        var viewLimit: Int?
    }

    private let tables: UnsafeMutablePointer<Tables> = {
        let tables = UnsafeMutablePointer<Tables>.allocate(capacity: 1)
        tables.initialize(to: Tables())
        return tables
    }()

    deinit {
        tables.deinitialize(count: 1)
        tables.deallocate()
    }

    /// The nodes appended so far, in order.
    var nodes: [Graph.Node] { _read { yield tables.pointee.nodes } }
    private(set) var inputPorts: [Graph.Port] = []
    private var inputNames = Set<String>()

    /// The builder of the graph around this one, when this one builds a loop body: tensors of
    /// it (and of its own parents) used here become inputs of the body (`captures`).
    let parent: GraphBuilder?
    /// How many builders enclose this one.
    let depth: Int
    /// The tensors of enclosing builders this body reads, in the order their inputs were made,
    /// with the input node standing for each here.
    private(set) var captures: [(outer: Tensor, inner: Int)] = []
    private var captureOf: [Int: Int] = [:]

    /// An empty builder.
    public init() {
        parent = nil
        depth = 0
    }

    /// A builder for the body of a loop inside `parent`'s graph.
    init(bodyOf parent: GraphBuilder) {
        self.parent = parent
        depth = parent.depth + 1
    }

    /// A builder with room for `capacity` nodes (a pass rebuilding a graph of known size).
    init(capacity: Int) {
        parent = nil
        depth = 0
        tables.pointee.existing = HashConsTable(capacity: capacity)
        tables.pointee.nodes.reserveCapacity(capacity)
        tables.pointee.roles.reserveCapacity(capacity)
        tables.pointee.uniformValues.reserveCapacity(capacity)
    }

    /// Rebuilds an existing graph in a new builder, so it can be extended or differentiated.
    ///
    /// Returns the builder and a tensor for each node of `graph`, indexed like `graph.nodes`.
    public static func replaying(_ graph: Graph) -> (GraphBuilder, [Tensor]) {
        let builder = GraphBuilder(capacity: graph.nodes.count)
        var tensors: [Tensor] = []
        tensors.reserveCapacity(graph.nodes.count)
        for node in graph.nodes {
            let inputs = node.inputs.map { tensors[$0].id }
            let id = builder.append(Graph.Node(operation: node.operation, inputs: inputs, shape: node.shape))
            builder.recordForLookup(id)
            tensors.append(Tensor(builder: builder, id: id))
        }
        builder.inputPorts = graph.inputs.map { Graph.Port(name: $0.name, node: tensors[$0.node].id) }
        builder.inputNames = Set(graph.inputs.map(\.name))
        return (builder, tensors)
    }

    /// Enters node `id` in the table its kind is looked up in: scalar constants by value, other
    /// nodes but inputs by operation and operands.
    private func recordForLookup(_ id: Int) {
        let node = tables.pointee.nodes[id]
        if let constant = node.operation as? Constant, constant.value.shape.isScalar {
            tables.pointee.scalarConstants[constant.value.scalar.bitPattern] = id
        } else if !(node.operation is Input) {
            tables.pointee.existing.insert(id, hash: HashConsTable.hash(node.operation, node.inputs))
        }
    }

    /// A builder that reads `graph` as it is, for a pass that rebuilds a graph node by node and
    /// usually changes nothing: tensors of the nodes before the view's limit (which the pass
    /// moves forward as it goes, `extendView(to:)`) read their operations, shapes, roles and uniform values, and nothing
    /// is hashed. The first node added (or looked up) ends the view: the nodes from
    /// the limit on are dropped and the rest entered in the lookup tables, as if they had
    /// been built here.
    /// - Precondition: `graph.isHashConsed` (it has no nodes the builder would have shared).
    static func viewing(_ graph: Graph) -> GraphBuilder {
        precondition(graph.isHashConsed, "a view of a graph with nodes a builder would share")
        let builder = GraphBuilder()
        let tables = builder.tables
        tables.pointee.nodes = graph.nodes
        tables.pointee.roles.reserveCapacity(graph.nodes.count)
        tables.pointee.uniformValues.reserveCapacity(graph.nodes.count)
        for node in graph.nodes {
            let role = node.operation.role
            tables.pointee.roles.append(role)
            tables.pointee.uniformValues.append(uniformValue(of: node, role: role, tables.pointee.uniformValues))
        }
        tables.pointee.viewLimit = 0
        builder.inputPorts = graph.inputs
        builder.inputNames = Set(graph.inputs.map(\.name))
        return builder
    }

    /// Whether this builder is still a view (`viewing(_:)`).
    var isViewing: Bool { tables.pointee.viewLimit != nil }

    /// Makes the viewed graph's first `limit` nodes this builder's (see `viewing(_:)`).
    func extendView(to limit: Int) {
        precondition(isViewing && limit <= tables.pointee.nodes.count, "a view extended past its graph")
        tables.pointee.viewLimit = limit
    }

    /// Ends a view (`viewing(_:)`): keeps the nodes before its limit, and enters them in the
    /// lookup tables. Does nothing for a builder that is not a view.
    func endView() {
        guard let limit = tables.pointee.viewLimit else { return }
        tables.pointee.viewLimit = nil
        let count = tables.pointee.nodes.count
        precondition(inputPorts.allSatisfy { $0.node < limit }, "a view ended before one of its inputs")
        tables.pointee.nodes.removeSubrange(limit..<count)
        tables.pointee.roles.removeSubrange(limit..<count)
        tables.pointee.uniformValues.removeSubrange(limit..<count)
        tables.pointee.existing = HashConsTable(capacity: count)
        for id in 0..<limit { recordForLookup(id) }
    }

    /// Declares a named input of the given shape (a scalar by default).
    /// - Throws: `NablaError.duplicateName` if an input of that name exists,
    ///   `.invalidArgument` if the shape has more than `Shape.maximumElementCount` elements.
    public func input(_ name: String, shape: Shape = .scalar) throws -> Tensor {
        endView()
        guard !inputNames.contains(name) else {
            throw NablaError.duplicateName(kind: "input", name: name)
        }
        try shape.checkElementCount(of: "input '\(name)'")
        inputNames.insert(name)
        let id = append(Graph.Node(operation: Input(), inputs: [], shape: shape))
        inputPorts.append(Graph.Port(name: name, node: id))
        return Tensor(builder: self, id: id)
    }

    /// A scalar constant. Equal constants share one node.
    public func constant(_ value: Double) -> Tensor {
        endView()
        if let id = tables.pointee.scalarConstants[value.bitPattern] { return Tensor(builder: self, id: id) }
        let id = append(Graph.Node(operation: Constant(TensorData(value)), inputs: [], shape: .scalar))
        tables.pointee.scalarConstants[value.bitPattern] = id
        return Tensor(builder: self, id: id)
    }

    /// A tensor constant.
    ///
    /// Its data is in memory, so its element count is within bounds; only an empty constant
    /// can have a shape past `Shape.maximumElementCount` (counting empty axes as 1). Such a
    /// tensor is kept, but applying an operation to it and building a graph with it throw.
    public func constant(_ value: TensorData) -> Tensor {
        if value.shape.isScalar { return constant(value.scalar) }
        endView()
        let id = append(Graph.Node(operation: Constant(value), inputs: [], shape: value.shape))
        return Tensor(builder: self, id: id)
    }

    /// A tensor of the given shape filled with `value` (a broadcast scalar, not stored data).
    ///
    /// A shape past `Shape.maximumElementCount` gives a tensor that every operation applied
    /// to it, and `graph(outputs:)`, rejects with `NablaError.invalidArgument`.
    public func filled(_ value: Double, shape: Shape) -> Tensor {
        let scalar = constant(value)
        if shape.isScalar { return scalar }
        let broadcast = BroadcastTo(shape: shape)
        guard (try? shape.checkElementCount(of: broadcast.name)) != nil else {
            // Recorded as it is, to be refused where it is used: this function cannot throw.
            return Tensor(builder: self, id: append(Graph.Node(operation: broadcast, inputs: [scalar.id], shape: shape)))
        }
        // A scalar always broadcasts to a shape within bounds, so this cannot fail.
        return try! apply(broadcast, [scalar])
    }

    /// Appends `operation` applied to `operands` after checking shapes.
    ///
    /// This is the one way nodes other than inputs and constants enter a graph. Applying an
    /// equal operation to the same operands twice returns the first node, and a scalar
    /// operation on scalar constants returns the constant it computes (with the interpreter's
    /// arithmetic, so results do not change).
    /// - Throws: the operation's shape errors; `NablaError.mixedBuilders`; `.invalidArgument`
    ///   when an operand's or the result's shape has more than `Shape.maximumElementCount`
    ///   elements.
    public func apply(_ operation: some Operation, _ operands: [Tensor]) throws -> Tensor {
        var operands = operands
        if operands.contains(where: { $0.builder !== self }) {
            // In a loop body, tensors of the graphs around it are captured; the operation goes
            // to the innermost builder involved.
            let innermost = operands.map(\.builder).max { $0.depth < $1.depth }!
            if innermost.depth > depth { return try innermost.apply(operation, operands) }
            operands = try operands.map { try $0.builder === self ? $0 : capture($0, op: operation.name) }
        }
        if let shortened = Self.shortenedSteps(operation) { return try apply(shortened, operands) }
        endView()
        if let folded = foldedScalar(operation, operands) { return folded }
        let inputs = operands.map(\.id)
        let hash = HashConsTable.hash(operation, inputs)
        let found = tables.pointee.existing.find(hash) { id in
            tables.pointee.nodes[id].inputs == inputs && operation.isEqual(to: tables.pointee.nodes[id].operation)
        }
        if let id = found { return Tensor(builder: self, id: id) }
        // Operands are checked first, so that no shape rule computes with an empty constant's
        // oversized extents; then the result, the one shape this call brings in.
        for operand in operands { try operand.shape.checkElementCount(of: "operand of \(operation.name)") }
        let shape = try operation.outputShape(for: operands.map(\.shape))
        try shape.checkElementCount(of: operation.name)
        let id = append(Graph.Node(operation: operation, inputs: inputs, shape: shape))
        tables.pointee.existing.insert(id, hash: hash)
        return Tensor(builder: self, id: id)
    }

    /// The constant that `operation` computes from scalar constants, when it folds constants
    /// (`Operation.foldsConstants`) and its result is a scalar too; nil otherwise. Computed
    /// with the interpreter's arithmetic, as simplification folds it, so results do not change
    /// (a derivative's seed of 1 times a constant factor, say, is that factor).
    private func foldedScalar(_ operation: some Operation, _ operands: [Tensor]) -> Tensor? {
        guard !operands.isEmpty, operation.foldsConstants else { return nil }
        var values: [TensorData] = []
        for operand in operands {
            guard tables.pointee.roles[operand.id] == .constant, let constant = tables.pointee.nodes[operand.id].operation as? Constant,
                  constant.value.shape.isScalar else { return nil }
            values.append(constant.value)
        }
        guard let shape = try? operation.outputShape(for: values.map(\.shape)), shape.isScalar,
              let value = operation.folded(values, shape: shape, limit: 1) else { return nil }
        return constant(value.scalar)
    }

    /// True when this builder is `other` or builds a loop body inside `other`'s graph (at any depth).
    func isBody(of other: GraphBuilder) -> Bool {
        var current: GraphBuilder? = self
        while let builder = current {
            if builder === other { return true }
            current = builder.parent
        }
        return false
    }

    /// `t`, a tensor of a builder around this one, as a tensor here: an input of the body
    /// (one per captured tensor), or a copy of a constant.
    /// - Throws: `NablaError.mixedBuilders` when `t` is of no builder around this one.
    func capture(_ t: Tensor, op: String) throws -> Tensor {
        if t.builder === self { return t }
        // The builders from this one out to t's, each capturing from the next one out.
        var chain: [GraphBuilder] = [self]
        while let next = chain[chain.count - 1].parent, next !== t.builder { chain.append(next) }
        guard chain[chain.count - 1].parent === t.builder else { throw NablaError.mixedBuilders(op: op) }
        var current = t
        for builder in chain.reversed() { current = builder.captureFromParent(current) }
        return current
    }

    /// `t`, a tensor of the parent builder, as an input (or a constant) of this one.
    private func captureFromParent(_ t: Tensor) -> Tensor {
        if let constant = t.operation as? Constant { return constant.value.shape.isScalar ? self.constant(constant.value.scalar) : self.constant(constant.value) }
        if let id = captureOf[t.id] { return Tensor(builder: self, id: id) }
        var name = "captured\(captures.count)"
        while inputNames.contains(name) { name += "_" }
        inputNames.insert(name)
        let id = append(Graph.Node(operation: Input(), inputs: [], shape: t.shape))
        inputPorts.append(Graph.Port(name: name, node: id))
        captures.append((t, id))
        captureOf[t.id] = id
        return Tensor(builder: self, id: id)
    }

    /// `operation` with every slice step longer than the span it walks cut to that span
    /// (which selects the same single element), or nil when there is nothing to cut.
    ///
    /// A slice's shape rule computes `end - start + step - 1` and its view multiplies strides
    /// by steps; a step bounded by the extent keeps both within the operand's element count,
    /// where an arbitrary one (`x[0:10:Int.max]`) would overflow.
    private static func shortenedSteps(_ operation: some Operation) -> (any Operation)? {
        func shortened(_ slice: Slice) -> Slice? {
            var steps = slice.steps
            for axis in steps.indices where axis < slice.starts.count && axis < slice.ends.count && steps[axis] > 1 {
                let (span, overflow) = slice.ends[axis].subtractingReportingOverflow(slice.starts[axis])
                if !overflow, steps[axis] > max(span, 1) { steps[axis] = max(span, 1) }
            }
            return steps == slice.steps ? nil : Slice(starts: slice.starts, ends: slice.ends, steps: steps)
        }
        if let slice = operation as? Slice { return shortened(slice) }
        if let pad = operation as? PadSlice, let slice = shortened(pad.slice) { return PadSlice(slice: slice, shape: pad.shape) }
        return nil
    }

    /// `node`'s operation applied again to `inputs` of this builder, whose shapes are the shapes
    /// of the node's own operands (so its shape stands): an existing equal node, or the node
    /// itself (or a copy with these operands) appended. For passes that rebuild graphs.
    func reapply(_ node: Graph.Node, inputs: [Int]) -> Int {
        endView()
        let hash = HashConsTable.hash(node.operation, inputs)
        let found = tables.pointee.existing.find(hash) { id in
            tables.pointee.nodes[id].inputs == inputs && node.operation.isEqual(to: tables.pointee.nodes[id].operation)
        }
        if let id = found { return id }
        let id = append(node.inputs == inputs ? node : Graph.Node(operation: node.operation, inputs: inputs, shape: node.shape))
        tables.pointee.existing.insert(id, hash: hash)
        return id
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
        precondition(!isViewing, "a node appended to a view")
        let role = node.operation.role
        let uniform = Self.uniformValue(of: node, role: role, tables.pointee.uniformValues)
        tables.pointee.nodes.append(node)
        tables.pointee.roles.append(role)
        tables.pointee.uniformValues.append(uniform)
        return tables.pointee.nodes.count - 1
    }

    /// Each node's operation's role, kept as nodes are appended.
    var roles: [OperationRole] { _read { yield tables.pointee.roles } }

    /// For each node, the value of all its elements when it is a constant whose elements are
    /// all equal (bit for bit), or a broadcast or reshape of one; nil otherwise. Kept as nodes
    /// are appended, for the simplifier's rules, which ask it of every operand.
    var uniformValues: [Double?] { _read { yield tables.pointee.uniformValues } }

    private static func uniformValue(of node: Graph.Node, role: OperationRole, _ known: [Double?]) -> Double? {
        let operation = node.operation
        switch role {
        case .constant:
            guard let constant = operation as? Constant, let first = constant.value.scalars.first else { return nil }
            return constant.value.scalars.allSatisfy({ $0.bitPattern == first.bitPattern }) ? first : nil
        case .view where operation is BroadcastTo || operation is Reshape:
            return known[node.inputs[0]]
        default:
            return nil
        }
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
        let whole = Graph(nodes: nodes, inputs: inputPorts, outputs: outputs.map { Graph.Port(name: $0.0, node: $0.1.id) }, isHashConsed: true)
        let graph = whole.pruned()
        try Self.checkElementCounts(graph)
        return graph
    }

    /// Checks every node's shape (constants and filled tensors are not checked when made) and
    /// that all tensors together hold at most `Shape.maximumGraphElementCount` elements, so
    /// that a kernel's workspace size in bytes, a sum over some of them, cannot overflow.
    private static func checkElementCounts(_ graph: Graph) throws {
        var total = 0
        for node in graph.nodes {
            try node.shape.checkElementCount(of: node.operation.name)
            total += node.shape.count  // at most 2^40 each, and the sum is checked as it grows
            guard total <= Shape.maximumGraphElementCount else {
                throw NablaError.invalidArgument(
                    op: "graph",
                    reason: "its \(graph.nodes.count) tensors hold more than \(Shape.maximumGraphElementCount) (2^56) elements together, the most one graph may hold")
            }
        }
    }

    /// The graph computing the given outputs, in the order written.
    public func graph(outputs: KeyValuePairs<String, Tensor>) throws -> Graph {
        try graph(outputs: outputs.map { ($0.key, $0.value) })
    }
}
