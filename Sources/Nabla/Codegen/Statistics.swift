/// What compilation did to a graph: node counts before and after each pass, how much was
/// fused, and the scratch memory the kernel needs.
public struct CompileStatistics: Sendable, CustomStringConvertible {
    /// Nodes of the graph as built (inputs and constants included).
    public var nodesBuilt: Int
    /// Nodes after simplification (constant folding, rewrites, CSE, DCE).
    public var nodesSimplified: Int
    /// Nodes replaced by a constant computed at compile time (all their operands were constants).
    public var foldedConstants: Int
    /// How often each rewrite rule fired.
    public var rewrites: [String: Int]
    /// Layout operations read in place rather than copied.
    public var foldedViews: Int
    /// Loops the fused elementwise and reduction nodes became, and how many nodes they hold.
    public var loops: Int
    /// Nodes inside those loops, in all.
    public var fusedNodes: Int
    /// Intermediate values written to the workspace.
    public var storedIntermediates: Int
    /// Scratch memory the kernel needs, in bytes (its workspace size).
    public var workspaceBytes: Int
    /// C functions the kernel is split into (1 unless the graph is large).
    public var functions: Int = 1
    /// Each loop (`fold`, `scan`, `map`, a Jacobian's loop over directions), in schedule order,
    /// each followed by the loops in its body: where it is (`[2, 0]`: the first loop in the body
    /// of the third), its steps, and the bytes it stores for a reverse pass (the carries before
    /// each step; per run of the body, for a loop inside one).
    public var loopSummaries: [LoopSummary] = []

    /// One loop of `loopSummaries`.
    public struct LoopSummary: Sendable, Equatable {
        /// Its index among the loops of each enclosing body, outermost first.
        public var path: [Int]
        /// Its number of steps.
        public var steps: Int
        /// Bytes it stores for a reverse pass.
        public var storedBytes: Int
    }

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
            "C functions:           \(functions)",
        ]
        for loop in loopSummaries {
            let label = "loop " + loop.path.map(String.init).joined(separator: ".") + ":"
            let indent = String(repeating: "  ", count: loop.path.count - 1)
            let padded = indent + label + String(repeating: " ", count: max(1, 23 - indent.count - label.count))
            lines.append(padded + "\(loop.steps) steps, \(loop.storedBytes) bytes stored for the reverse pass")
        }
        return lines.joined(separator: "\n")
    }
}

/// Runs the passes `emitC` runs and reports what they did.
public func compileStatistics(_ graph: Graph, options: CEmitOptions = .standalone) throws -> CompileStatistics {
    try Compilation(graph, options: options).statistics
}
