/// Evaluates graphs in Swift, node by node.
///
/// The interpreter is the reference every compiled kernel is tested against, and the baseline
/// in benchmarks. It shares each operation's definition (`Operation.evaluate`) with nothing
/// else, so a bug in code generation cannot hide in it.
public enum Interpreter {
    /// Evaluates every output of `graph` for the given named inputs.
    /// - Throws: `NablaError.unknownName` for a missing or unexpected input,
    ///   `.shapeMismatch` for an input of the wrong shape.
    public static func evaluate(_ graph: Graph, inputs named: [String: TensorData]) throws -> [String: TensorData] {
        for name in named.keys where !graph.inputs.contains(where: { $0.name == name }) {
            throw NablaError.unknownName(kind: "input", name: name, known: graph.inputs.map(\.name))
        }
        var ordered: [TensorData] = []
        for port in graph.inputs {
            guard let value = named[port.name] else {
                throw NablaError.unknownName(kind: "input", name: port.name, known: Array(named.keys).sorted())
            }
            ordered.append(value)
        }
        let results = try evaluate(graph, inputs: ordered)
        var byName: [String: TensorData] = [:]
        for (port, value) in zip(graph.outputs, results) { byName[port.name] = value }
        return byName
    }

    /// Evaluates every output of `graph` for inputs given in declaration order; returns outputs
    /// in output order.
    public static func evaluate(_ graph: Graph, inputs: [TensorData]) throws -> [TensorData] {
        guard inputs.count == graph.inputs.count else {
            throw NablaError.countMismatch(what: "inputs", expected: graph.inputs.count, got: inputs.count)
        }
        var values = [TensorData?](repeating: nil, count: graph.nodes.count)
        for (port, value) in zip(graph.inputs, inputs) {
            let shape = graph.nodes[port.node].shape
            guard value.shape == shape else {
                throw NablaError.shapeMismatch(op: "input '\(port.name)'", shapes: [value.shape, shape], reason: "given data does not have the declared shape")
            }
            values[port.node] = value
        }
        // Release each value after its last use so large graphs do not hold every intermediate.
        var lastUse = Array(0..<graph.nodes.count)
        for (i, node) in graph.nodes.enumerated() { for operand in node.inputs { lastUse[operand] = i } }
        for port in graph.outputs { lastUse[port.node] = graph.nodes.count }
        for (i, node) in graph.nodes.enumerated() where values[i] == nil {
            let operands = node.inputs.map { values[$0]! }
            values[i] = node.operation.evaluate(operands, shape: node.shape)
            for operand in node.inputs where lastUse[operand] == i { values[operand] = nil }
        }
        return graph.outputs.map { values[$0.node]! }
    }
}
