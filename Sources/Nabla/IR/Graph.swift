/// A static computation over f64 tensors: nodes in topological order, named inputs, named
/// outputs.
///
/// A graph is a value. Every transformation (differentiation, simplification, compilation)
/// takes a graph and returns a new one, so each can be tested alone and composed with the
/// others.
public struct Graph: Sendable, CustomStringConvertible {
    /// One node: an operation applied to earlier nodes, with its result's shape.
    ///
    /// Nodes are immutable objects, so graphs share them: passes copy and reorder nodes of
    /// graphs with millions of them, and a reference is one word to copy, where the operation
    /// existential, operand list and shape would be several.
    public final class Node: Sendable {
        /// The operation the node applies to its operands.
        public let operation: any Operation
        /// Indices of operand nodes; each is smaller than this node's own index.
        public let inputs: [Int]
        /// Shape of the node's result.
        public let shape: Shape

        /// A node applying `operation` to the nodes at `inputs`, with a result of `shape`; nothing is
        /// checked here (`GraphBuilder` checks the nodes it appends).
        public init(operation: any Operation, inputs: [Int], shape: Shape) {
            self.operation = operation
            self.inputs = inputs
            self.shape = shape
        }
    }

    /// A named input or output and the node it refers to.
    public struct Port: Sendable, Hashable {
        /// The input's or output's name, by which callers pass and read its values.
        public let name: String
        /// Index in `nodes` of the node it refers to.
        public let node: Int
    }

    /// Nodes in topological order.
    public internal(set) var nodes: [Node]
    /// Inputs, in declaration order; this is the order kernels take their input buffers in.
    public internal(set) var inputs: [Port]
    /// Outputs, in the order kernels write their output buffers.
    public internal(set) var outputs: [Port]
    /// True when no two nodes are ones a `GraphBuilder` would have shared (the same operation
    /// on the same operands): so for every graph a builder makes, and the passes keep it.
    /// Simplification then need not look for shared subexpressions while it changes nothing.
    var isHashConsed = false

    /// Shape of the named input.
    public func inputShape(_ name: String) throws -> Shape {
        guard let port = inputs.first(where: { $0.name == name }) else {
            throw NablaError.unknownName(kind: "input", name: name, known: inputs.map(\.name))
        }
        return nodes[port.node].shape
    }

    /// Shape of the named output.
    public func outputShape(_ name: String) throws -> Shape {
        guard let port = outputs.first(where: { $0.name == name }) else {
            throw NablaError.unknownName(kind: "output", name: name, known: outputs.map(\.name))
        }
        return nodes[port.node].shape
    }

    /// Input shapes in declaration order.
    public var inputShapes: [Shape] { inputs.map { nodes[$0.node].shape } }
    /// Output shapes in output order.
    public var outputShapes: [Shape] { outputs.map { nodes[$0.node].shape } }

    /// A listing with one line per node, for debugging and tests.
    public var description: String {
        var lines: [String] = []
        let inputNames = Dictionary(inputs.map { ($0.node, $0.name) }, uniquingKeysWith: { a, _ in a })
        for (i, node) in nodes.enumerated() {
            var text = "%\(i) = \(node.operation.description)"
            if let name = inputNames[i] { text += " \"\(name)\"" }
            if !node.inputs.isEmpty { text += "(" + node.inputs.map { "%\($0)" }.joined(separator: ", ") + ")" }
            text += " : \(node.shape)"
            lines.append(text)
        }
        for port in outputs { lines.append("output \"\(port.name)\" = %\(port.node)") }
        return lines.joined(separator: "\n")
    }
}

extension Graph {
    /// The same graph without nodes that no output needs. Inputs are all kept.
    public func pruned() -> Graph {
        var live = [Bool](repeating: false, count: nodes.count)
        for port in inputs { live[port.node] = true }
        for port in outputs { live[port.node] = true }
        for id in stride(from: nodes.count - 1, through: 0, by: -1) where live[id] {
            for operand in nodes[id].inputs { live[operand] = true }
        }
        // A graph already pruned (most are, as builders and passes make them) comes back as it is.
        if !live.contains(false) { return self }
        var newIndex = [Int](repeating: -1, count: nodes.count)
        var kept: [Node] = []
        kept.reserveCapacity(nodes.count)
        for (id, node) in nodes.enumerated() where live[id] {
            newIndex[id] = kept.count
            // Until the first node is dropped, indices do not change and nodes are shared.
            let moved = node.inputs.contains { newIndex[$0] != $0 }
            kept.append(moved ? Node(operation: node.operation, inputs: node.inputs.map { newIndex[$0] }, shape: node.shape) : node)
        }
        return Graph(
            nodes: kept, inputs: inputs.map { Port(name: $0.name, node: newIndex[$0.node]) },
            outputs: outputs.map { Port(name: $0.name, node: newIndex[$0.node]) }, isHashConsed: isHashConsed)
    }
}
