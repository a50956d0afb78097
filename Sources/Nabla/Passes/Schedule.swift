extension Graph {
    /// The same graph with each scalar computation moved down to just before its first reader
    /// (the rest keep their order), when it reads only scalars. A scalar read off one loop's sum then no longer sits
    /// between that loop and a later loop that could join it, so more elementwise work shares
    /// loops. Values do not change: only independent nodes swap places. Tensors stay where they
    /// are, so buffer lifetimes do not grow.
    func scheduledLate() -> Graph {
        let count = nodes.count
        guard count > 1 else { return self }
        // Scalar arithmetic on scalars: moving it holds no tensor's buffer longer. Leaves
        // (inputs, constants) move with their readers too, so a graph of scalars keeps its order.
        let sinks = nodes.map { node in
            node.inputs.isEmpty || (node.shape.rank == 0 && node.inputs.allSatisfy { nodes[$0].shape.rank == 0 })
        }
        // The tensor node (or the end) a sinking scalar is placed just before: the earliest
        // anchor among its readers, found in one backward pass.
        var anchor = Array(0..<count)
        for i in sinks.indices where sinks[i] { anchor[i] = count }
        for i in stride(from: count - 1, through: 0, by: -1) {
            for operand in nodes[i].inputs where sinks[operand] { anchor[operand] = min(anchor[operand], anchor[i]) }
        }
        let order = Self.order(anchor: anchor, sinks: sinks)
        if order.elementsEqual(0..<count) { return self }
        var newIndex = [Int](repeating: 0, count: count)
        for (position, old) in order.enumerated() { newIndex[old] = position }
        let reordered = order.map { old in
            Node(operation: nodes[old].operation, inputs: nodes[old].inputs.map { newIndex[$0] }, shape: nodes[old].shape)
        }
        return Graph(
            nodes: reordered, inputs: inputs.map { Port(name: $0.name, node: newIndex[$0.node]) },
            outputs: outputs.map { Port(name: $0.name, node: newIndex[$0.node]) }, isHashConsed: isHashConsed)
    }

    /// Nodes by anchor, sinks before the node they are anchored at, each group in index order:
    /// a counting sort, linear in the node count.
    private static func order(anchor: [Int], sinks: [Bool]) -> [Int] {
        let count = anchor.count
        var starts = [Int](repeating: 0, count: count + 2)
        for i in 0..<count where sinks[i] { starts[anchor[i] + 1] += 1 }
        for a in 0...count { starts[a + 1] += starts[a] }
        var bucket = [Int](repeating: 0, count: starts[count + 1])
        var next = starts
        for i in 0..<count where sinks[i] {
            bucket[next[anchor[i]]] = i
            next[anchor[i]] += 1
        }
        var order: [Int] = []
        order.reserveCapacity(count)
        for a in 0...count {
            order += bucket[starts[a]..<starts[a + 1]]
            if a < count && !sinks[a] { order.append(a) }
        }
        return order
    }
}
