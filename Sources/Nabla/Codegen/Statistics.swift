/// What compilation did to a graph: node counts before and after each pass, how much was
/// fused, and the scratch memory the kernel needs.
public struct CompileStatistics: Sendable, CustomStringConvertible {
    /// Nodes of the graph as built (inputs and constants included).
    public var nodesBuilt: Int
    /// Nodes after simplification (constant folding, rewrites, CSE, DCE).
    public var nodesSimplified: Int
    public var foldedConstants: Int
    /// How often each rewrite rule fired.
    public var rewrites: [String: Int]
    /// Layout operations read in place rather than copied.
    public var foldedViews: Int
    /// Loops the fused elementwise and reduction nodes became, and how many nodes they hold.
    public var loops: Int
    public var fusedNodes: Int
    /// Intermediate values written to the workspace.
    public var storedIntermediates: Int
    public var workspaceBytes: Int

    public var description: String {
        var lines = [
            "nodes as built:        \(nodesBuilt)",
            "after simplification:  \(nodesSimplified) (\(foldedConstants) constants folded, \(rewrites.values.reduce(0, +)) rewrites)",
        ]
        for (rule, count) in rewrites.sorted(by: { $0.key < $1.key }) { lines.append("  \(count) x \(rule)") }
        lines += [
            "views read in place:   \(foldedViews)",
            "fused loops:           \(loops) holding \(fusedNodes) nodes",
            "stored intermediates:  \(storedIntermediates)",
            "scratch:               \(workspaceBytes) bytes",
        ]
        return lines.joined(separator: "\n")
    }
}

/// Runs the passes `emitC` runs and reports what they did.
public func compileStatistics(_ graph: Graph, options: CEmitOptions = .standalone) throws -> CompileStatistics {
    let (simplified, simplification) = options.simplify
        ? try simplifyWithStatistics(graph, options: options.simplifyOptions)
        : (graph, SimplifyStatistics(nodesBefore: graph.nodes.count, nodesAfter: graph.nodes.count))
    let scheduled = simplified.scheduledLate()
    let storage = StoragePlan(graph: scheduled, carryPads: options.unroll > 1)
    let fusion = storage.fusion
    let nodes = scheduled.nodes
    let groups = fusion.groups.filter { !$0.members.isEmpty }
    return CompileStatistics(
        nodesBuilt: graph.nodes.count, nodesSimplified: simplified.nodes.count,
        foldedConstants: simplification.foldedConstants, rewrites: simplification.rewrites,
        foldedViews: nodes.indices.filter { nodes[$0].operation is any StridedView && !fusion.materialized[$0] }.count,
        loops: groups.filter { $0.shape.rank > 0 }.count,
        fusedNodes: groups.filter { $0.shape.rank > 0 }.reduce(0) { $0 + $1.members.count },
        storedIntermediates: storage.memory.offsets.compactMap { $0 }.count,
        workspaceBytes: storage.memory.size * 8)
}
