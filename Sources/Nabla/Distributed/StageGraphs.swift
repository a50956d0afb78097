/// The graphs one process runs for a `RowSplitPlan`, one per stage: stage `s` computes, from
/// the process's inputs and the sums of earlier stages, the partial sums reduced after it and
/// the outputs that are ready. Each is an ordinary graph, compiled to an ordinary kernel.
struct StageGraph {
    /// Where a stage graph's input comes from.
    enum Source: Equatable {
        /// The data-parallel kernel's input at this index (this process's rows of a sharded one).
        case input(Int)
        /// A reduced partial sum, at this offset in the buffer of all reductions.
        case reduction(Int)
    }

    /// Where a stage graph's output goes.
    enum Target: Equatable {
        /// A partial sum, into the buffer of all reductions at this offset.
        case reduction(Int)
        /// The data-parallel kernel's output at this index (a replicated output).
        case output(Int)
        /// This process's rows of the output at this index, joined with the others' afterwards.
        case rows(ofOutput: Int)
    }

    let graph: Graph
    let sources: [Source]
    let targets: [Target]
}

extension StageGraph {
    /// The one stage of a graph that process 0 computes whole, every output a reduction that
    /// the other processes add zeros to.
    static func wholeOnFirstProcess(_ graph: Graph, isFirst: Bool) throws -> (stage: StageGraph, reductions: [Reduction]) {
        var offset = 0
        var reductions: [Reduction] = []
        var seen = Set<Int>()
        for port in graph.outputs where seen.insert(port.node).inserted {
            let count = graph.nodes[port.node].shape.count
            reductions.append(Reduction(node: port.node, stage: 0, offset: offset, count: count))
            offset += count
        }
        let names = ReservedNames(graph)
        let targets = reductions.map { Target.reduction($0.offset) }
        if isFirst {
            let outputs = reductions.map { Graph.Port(name: names.output(.reduction($0.offset), node: $0.node, graph), node: $0.node) }
            let whole = Graph(nodes: graph.nodes, inputs: graph.inputs, outputs: outputs, isHashConsed: graph.isHashConsed)
            return (StageGraph(graph: whole, sources: graph.inputs.indices.map { .input($0) }, targets: targets), reductions)
        }
        let builder = GraphBuilder()
        let zeros = reductions.map { (names.output(.reduction($0.offset), node: $0.node, graph), builder.filled(0, shape: graph.nodes[$0.node].shape)) }
        return (StageGraph(graph: try builder.graph(outputs: zeros), sources: [], targets: targets), reductions)
    }
}

/// A partial sum summed over the processes: the node, its stage and its place in the buffer
/// of all reductions.
struct Reduction {
    let node: Int
    let stage: Int
    let offset: Int
    let count: Int
}

extension RowSplitPlan {
    /// Every partial sum that is reduced (read reduced by some node, or a summed output), by
    /// stage then node, laid out one after another.
    func reductions(of graph: Graph) -> [Reduction] {
        var reduced = Set<Int>()
        for (id, decision) in decisions.enumerated() {
            for (operand, form) in zip(graph.nodes[id].inputs, decision.forms) where form.reduced { reduced.insert(operand) }
        }
        for (port, combination) in zip(graph.outputs, combinations) where combination == .summed { reduced.insert(port.node) }
        var offset = 0
        return reduced.sorted { (decisions[$0].stage, $0) < (decisions[$1].stage, $1) }.map { node in
            defer { offset += graph.nodes[node].shape.count }
            return Reduction(node: node, stage: decisions[node].stage, offset: offset, count: graph.nodes[node].shape.count)
        }
    }

    /// Stages, in order, each with the reductions that end it.
    var stageCount: Int { (decisions.map(\.stage).max() ?? 0) + 1 }

    /// The graph this process runs in `stage`, or nil when it has nothing to compute there.
    func stageGraph(_ stage: Int, of graph: Graph, reductions: [Reduction]) throws -> StageGraph? {
        let slotOf = Dictionary(uniqueKeysWithValues: reductions.map { ($0.node, $0.offset) })
        var targets: [(node: Int, target: StageGraph.Target)] = reductions.filter { $0.stage == stage }.map { ($0.node, .reduction($0.offset)) }
        for (k, port) in graph.outputs.enumerated() where outputStages[k] == stage {
            switch combinations[k] {
            case .replicated: targets.append((port.node, .output(k)))
            case .gathered where localRows > 0: targets.append((port.node, .rows(ofOutput: k)))
            case .gathered, .summed: break
            }
        }
        if targets.isEmpty { return nil }
        let names = ReservedNames(graph)
        var builder = LocalBuilder(plan: self, graph: graph, needed: neededNodes(graph, for: targets.map(\.node)))
        let graphBuilder = builder.builder
        var reducedInputs: [Int: Tensor] = [:]
        var sources: [StageGraph.Source] = []
        let inputIndex = Dictionary(graph.inputs.enumerated().map { ($0.element.node, $0.offset) }, uniquingKeysWith: { a, _ in a })
        try builder.build(
            input: { builder, id, shape in
                let index = inputIndex[id]!
                sources.append(.input(index))
                return try builder.input(graph.inputs[index].name, shape: shape)
            },
            reduced: { node in
                if let tensor = reducedInputs[node] { return tensor }
                let tensor = try graphBuilder.input(names.reduced(node), shape: graph.nodes[node].shape)
                sources.append(.reduction(slotOf[node]!))
                reducedInputs[node] = tensor
                return tensor
            })
        let outputs = targets.map { (names.output($0.target, node: $0.node, graph), builder.tensors[$0.node]!) }
        return StageGraph(graph: try builder.builder.graph(outputs: outputs), sources: sources, targets: targets.map(\.target))
    }

    /// A loop body's graph on this process: the same inputs in the same order (split ones with
    /// this process's rows), the same outputs, replicated outputs read as partial sums (zero
    /// except on the first process) when `promoting` says so.
    /// - Throws: `NablaError.notSplittable` when the body would need a sum over the processes
    ///   inside the loop.
    func localBody(_ graph: Graph, promoting: [Bool]) throws -> Graph {
        for (id, decision) in decisions.enumerated() where decision.forms.contains(where: \.reduced) {
            throw NablaError.notSplittable(output: graph.outputs.first.map(\.name) ?? "", reason: "\(graph.nodes[id].operation.name) in a loop body would need a sum over the processes at every step")
        }
        var needed = neededNodes(graph, for: graph.outputs.map(\.node))
        for port in graph.inputs { needed[port.node] = true }
        var builder = LocalBuilder(plan: self, graph: graph, needed: needed)
        try builder.build(input: { builder, id, shape in try builder.input("input\(id)", shape: shape) }, reduced: { _ in
            throw NablaError.internalInconsistency("a loop body reads a reduced value")
        })
        let outputs = zip(graph.outputs, promoting).map { port, promoted in
            let value = builder.tensors[port.node]!
            return (port.name, promoted && !isFirstProcess ? builder.builder.filled(0, shape: value.shape) : value)
        }
        return try builder.builder.graph(outputs: outputs)
    }

    /// Which nodes a stage computes to get `targets`: reduced operands come in as inputs, and
    /// on a process without rows a sum over the rows is zero, so neither needs its operands.
    private func neededNodes(_ graph: Graph, for targets: [Int]) -> [Bool] {
        var needed = [Bool](repeating: false, count: graph.nodes.count)
        for node in targets { needed[node] = true }
        for id in graph.nodes.indices.reversed() where needed[id] {
            let decision = decisions[id]
            if decision.sumsRows && localRows == 0 { continue }
            for (operand, form) in zip(graph.nodes[id].inputs, decision.forms) where !form.reduced { needed[operand] = true }
        }
        return needed
    }
}

extension RowSplit {
    /// `shape` with `rows` at `axis`.
    static func localized(_ shape: Shape, axis: Int, rows: Int) -> Shape {
        var dims = shape.dims
        dims[axis] = rows
        return Shape(dims)
    }
}

/// Rebuilds the needed nodes of a graph for one process: each as its decision says (the
/// operation for this process's rows, operands reduced, cut to the rows or read as partial
/// sums), in node order.
private struct LocalBuilder {
    let plan: RowSplitPlan
    let graph: Graph
    let needed: [Bool]
    let builder = GraphBuilder()
    /// The rebuilt tensor of each needed node.
    var tensors: [Tensor?]

    init(plan: RowSplitPlan, graph: Graph, needed: [Bool]) {
        self.plan = plan
        self.graph = graph
        self.needed = needed
        tensors = Array(repeating: nil, count: graph.nodes.count)
    }

    /// Builds every needed node; `input` declares an input node of the given (local) shape,
    /// `reduced` gives the reduced value of a partial-sum node.
    mutating func build(input: (GraphBuilder, Int, Shape) throws -> Tensor, reduced: (Int) throws -> Tensor) throws {
        for id in graph.nodes.indices where needed[id] {
            let node = graph.nodes[id], decision = plan.decisions[id]
            if node.operation is Input {
                let local = decision.placement == .rows(axis: 0) ? RowSplit.localized(node.shape, axis: 0, rows: plan.localRows) : localShape(node.shape, decision.placement)
                tensors[id] = try input(builder, id, local)
            } else if let constant = node.operation as? Constant {
                tensors[id] = builder.constant(constant.value)
            } else if decision.sumsRows && plan.localRows == 0 {
                tensors[id] = builder.filled(0, shape: node.shape)
            } else {
                var operands: [Tensor] = []
                for (operand, form) in zip(node.inputs, decision.forms) {
                    let value = form.reduced ? try reduced(operand) : tensors[operand]!
                    if form.promoted && !plan.isFirstProcess {
                        operands.append(builder.filled(0, shape: value.shape))
                    } else {
                        operands.append(try form.sliceAxis.map { try rowsOf(value, axis: $0) } ?? value)
                    }
                }
                let operation: any Operation = decision.local ?? node.operation
                tensors[id] = try builder.apply(operation, operands)
            }
        }
    }

    /// The shape an input placed as `placement` has on this process.
    private func localShape(_ shape: Shape, _ placement: RowPlacement) -> Shape {
        if case .rows(let axis) = placement { return RowSplit.localized(shape, axis: axis, rows: plan.localRows) }
        return shape
    }

    /// This process's block of rows of a replicated value, along `axis`.
    private func rowsOf(_ value: Tensor, axis: Int) throws -> Tensor {
        var starts = [Int](repeating: 0, count: value.shape.rank), ends = value.shape.dims
        starts[axis] = plan.block.lowerBound
        ends[axis] = plan.block.upperBound
        return try builder.apply(Slice(starts: starts, ends: ends, steps: Array(repeating: 1, count: ends.count)), [value])
    }
}

/// Names for the inputs and outputs stage graphs add (reduced sums and partial sums), chosen
/// so that no name of the graph begins like them.
private struct ReservedNames {
    let reducedPrefix: String, partialPrefix: String

    init(_ graph: Graph) {
        let taken = graph.inputs.map(\.name) + graph.outputs.map(\.name)
        func free(_ stem: String) -> String {
            var prefix = stem
            while taken.contains(where: { $0.hasPrefix(prefix) }) { prefix += "_" }
            return prefix
        }
        reducedPrefix = free("reduced_")
        partialPrefix = free("partial_")
    }

    func reduced(_ node: Int) -> String { reducedPrefix + String(node) }

    /// The name of the stage output for `target`, computed by `node`.
    func output(_ target: StageGraph.Target, node: Int, _ graph: Graph) -> String {
        switch target {
        // By node: an empty partial sum shares its offset with the next.
        case .reduction: partialPrefix + String(node)
        case .output(let k), .rows(ofOutput: let k): graph.outputs[k].name
        }
    }
}
