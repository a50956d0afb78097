extension Graph {
    /// The same graph with each scalar computation moved down to just before its first reader
    /// (the rest keep their order), when it reads only scalars. A scalar read off one loop's sum then no longer sits
    /// between that loop and a later loop that could join it, so more elementwise work shares
    /// loops. Values do not change: only independent nodes swap places. Tensors stay where they
    /// are, so buffer lifetimes do not grow.
    func scheduledLate() -> Graph {
        let count = nodes.count
        guard count > 1 else { return self }
        // Scalar arithmetic on scalars: moving it holds no tensor's buffer longer.
        let sinks = nodes.map { node in
            node.shape.rank == 0 && !node.inputs.isEmpty && node.inputs.allSatisfy { nodes[$0].shape.rank == 0 }
        }
        var consumers = [[Int]](repeating: [], count: count)
        for (i, node) in nodes.enumerated() { for operand in node.inputs { consumers[operand].append(i) } }
        // The tensor node (or the end) a sinking scalar is placed just before.
        var anchor = Array(0..<count)
        for i in stride(from: count - 1, through: 0, by: -1) where sinks[i] {
            anchor[i] = consumers[i].map { anchor[$0] }.min() ?? count
        }
        let order = (0..<count).sorted { a, b in
            (anchor[a], sinks[a] ? 0 : 1, a) < (anchor[b], sinks[b] ? 0 : 1, b)
        }
        if order.elementsEqual(0..<count) { return self }
        var newIndex = [Int](repeating: 0, count: count)
        for (position, old) in order.enumerated() { newIndex[old] = position }
        let reordered = order.map { old in
            Node(operation: nodes[old].operation, inputs: nodes[old].inputs.map { newIndex[$0] }, shape: nodes[old].shape)
        }
        return Graph(
            nodes: reordered, inputs: inputs.map { Port(name: $0.name, node: newIndex[$0.node]) },
            outputs: outputs.map { Port(name: $0.name, node: newIndex[$0.node]) })
    }
}
