/// Options for C emission.
public struct CEmitOptions: Sendable {
    /// Name of the kernel function; mangled into a C identifier.
    public var functionName: String
    /// Call Nabla's optimised runtime (`nabla_matmul`, the LU functions) for heavy work
    /// instead of inlining loops. JIT kernels do; standalone C does not, so it needs nothing
    /// but libm.
    public var useRuntime: Bool

    /// How generated C reaches runtime functions when `useRuntime` is set: by name (TinyCC
    /// links them), or through pointer variables the C defines and the loader fills after
    /// `dlopen` (shared libraries built by the system compiler).
    public var runtimeThroughPointers = false
    /// Simplify the graph first (constant folding, IEEE-safe algebraic rewrites, common
    /// subexpressions, dead code). Results are unchanged bit for bit.
    public var simplify: Bool
    /// Options for the simplifier (fast-math rewrites are off by default).
    public var simplifyOptions: SimplifyOptions
    /// At most this many copies of a fused loop's body per iteration (1: loops stay rolled).
    /// For compilers that do not unroll or keep values in registers across statements, such
    /// as TinyCC; results are the same bit for bit either way.
    public var unroll: Int = 1

    /// Options with the given entry-point name, runtime use and simplification;
    /// `runtimeThroughPointers` and `unroll` keep their defaults.
    public init(functionName: String = "nabla_kernel", useRuntime: Bool = false, simplify: Bool = true, simplifyOptions: SimplifyOptions = SimplifyOptions()) {
        self.functionName = functionName
        self.useRuntime = useRuntime
        self.simplify = simplify
        self.simplifyOptions = simplifyOptions
    }

    /// Self-contained C99 that needs only libm.
    public static let standalone = CEmitOptions()

    var target: KernelTarget { KernelTarget(useRuntime: useRuntime, unroll: max(1, unroll), parallel: useRuntime) }

    var linkage: LoopIR.RuntimeLinkage {
        useRuntime ? (runtimeThroughPointers ? .throughPointers : .byName) : .standalone
    }
}

/// Generated C for one graph, and what a caller needs to know to call it.
public struct CKernelSource: Sendable {
    /// The C translation unit.
    public let code: String
    /// The mangled name of the entry point
    /// `int NAME(const double *const *inputs, double *const *outputs, void *workspace)`.
    public let functionName: String
    /// Bytes of scratch memory the entry point needs at `workspace` (0: it may be NULL).
    public let workspaceBytes: Int
    /// Shapes of the inputs, in the order the entry point takes them.
    public let inputShapes: [Shape]
    /// Shapes of the outputs, in the order the entry point writes them.
    public let outputShapes: [Shape]
    /// Nabla's runtime functions the C calls (by name, or through pointer slots the loader
    /// fills; none for standalone C).
    public let runtimeFunctions: [String]

    /// A kernel's C and what a caller needs to call it (`emitC` writes these; C written by
    /// hand must follow the same entry-point convention).
    public init(code: String, functionName: String, workspaceBytes: Int, inputShapes: [Shape], outputShapes: [Shape],
                runtimeFunctions: [String] = []) {
        self.code = code
        self.functionName = functionName
        self.workspaceBytes = workspaceBytes
        self.inputShapes = inputShapes
        self.outputShapes = outputShapes
        self.runtimeFunctions = runtimeFunctions
    }

    /// The same kernel with `code` as its C.
    func replacingCode(with code: String) -> CKernelSource {
        CKernelSource(code: code, functionName: functionName, workspaceBytes: workspaceBytes,
                      inputShapes: inputShapes, outputShapes: outputShapes, runtimeFunctions: runtimeFunctions)
    }
}

/// A graph compiled once: simplified, scheduled, fused and planned (which values are stored,
/// where, and for how long), ready to be written as C for any compiler.
///
/// Everything code generation decides about the graph is decided here, once; `emit(_:)`
/// only shapes the C for a compiler (runtime calls, unrolling), so the tiers of a
/// `TieredKernel`, `nabla compile` and its statistics share one plan.
///
/// ```swift
/// let compilation = try Compilation(graph)
/// let c = try compilation.emit(.standalone)
/// print(compilation.statistics)
/// ```
public struct Compilation: Sendable {
    /// The graph as given.
    public let graph: Graph
    /// The graph the C computes: simplified (if asked) and scheduled.
    public let scheduled: Graph
    let simplification: SimplifyStatistics
    let plan: KernelPlan

    /// Runs the graph passes: simplification (unless `simplify` is false), scheduling, fusion
    /// and memory planning.
    /// - Throws: `NablaError` from the simplifier (a rewrite that would change a shape).
    public init(_ graph: Graph, simplify: Bool = true, simplifyOptions: SimplifyOptions = SimplifyOptions()) throws {
        self.graph = graph
        guard simplify else {
            simplification = SimplifyStatistics(nodesBefore: graph.nodes.count, nodesAfter: graph.nodes.count)
            scheduled = graph.scheduledLate()
            plan = KernelPlan(graph: scheduled)
            return
        }
        // Simplification leaves many large graphs as they are (a builder already shared their
        // equal nodes and folded their scalar constants): such a graph is planned on another
        // thread while it is simplified, and that plan is kept when nothing changed.
        // Once simplification changes a node, the guess stops at its next phase.
        let changed = Lock(false)
        let guess = graph.nodes.count >= Self.planWhileSimplifyingMinimum && graph.isHashConsed
            ? OtherThread { Self.planned(graph.pruned(), unless: { changed.withLock { $0 } }) } : nil
        let (simplified, statistics): (Graph, SimplifyStatistics)
        do {
            (simplified, statistics) = try simplifyWithStatistics(graph, options: simplifyOptions) {
                changed.withLock { $0 = true }
            }
        } catch {
            changed.withLock { $0 = true }
            _ = guess?.join()
            throw error
        }
        simplification = statistics
        if let guess, statistics.keptTheGraph, let guessed = guess.join() {
            (scheduled, plan) = guessed
        } else {
            // A guess stops on its own, soon.
            (scheduled, plan) = Self.planned(simplified, unless: { false })!
        }
    }

    /// Graphs of at least this many nodes are planned while they are simplified; for smaller
    /// ones a thread costs more than it saves.
    static let planWhileSimplifyingMinimum = 1 << 16

    /// The scheduled graph and its plan, or nil when `stopped` says true between two phases.
    private static func planned(_ graph: Graph, unless stopped: () -> Bool) -> (Graph, KernelPlan)? {
        let scheduled = graph.scheduledLate()
        if stopped() { return nil }
        return KernelPlan(graph: scheduled, unless: stopped).map { (scheduled, $0) }
    }

    /// The passes `options` asks for (its `simplify` and `simplifyOptions`).
    public init(_ graph: Graph, options: CEmitOptions) throws {
        try self.init(graph, simplify: options.simplify, simplifyOptions: options.simplifyOptions)
    }

    /// The kernel as a loop IR program, shaped for `options` (its function name, runtime use
    /// and unrolling; the simplification options are this compilation's).
    /// - Throws: `NablaError.invalidArgument` for a function name the C cannot use
    ///   (`checkFunctionName`).
    public func program(_ options: CEmitOptions) throws -> LoopIR.Program {
        try checkFunctionName(options.functionName)
        var lowering = KernelLowering(plan: plan, target: options.target)
        return try lowering.program(name: cIdentifier(options.functionName))
    }

    /// C99 for the kernel, shaped for `options` (see `program(_:)`).
    ///
    /// The entry point is `int NAME(const double *const *inputs, double *const *outputs,
    /// void *workspace)`: `inputs[i]` points at input `i`'s elements (row-major) in declaration
    /// order, `outputs[j]` at room for output `j`'s, and `workspace` at `workspaceBytes` bytes of
    /// scratch aligned to 8 bytes, which only one call may use at a time. Output buffers must
    /// not overlap inputs or each other. It returns 0. The function keeps no state of its own,
    /// so calls with separate workspaces may run concurrently.
    ///
    /// No text from the graph's names reaches the C: identifiers are derived from node indices.
    public func emit(_ options: CEmitOptions) throws -> CKernelSource {
        let program = try program(options)
        let code: String
        do {
            code = try LoopIR.renderC(program, runtime: options.linkage)
        } catch let error as LoopIR.RenderError {
            throw internalError(error.description)
        }
        let runtime = options.useRuntime ? LoopIR.functionsCalled(by: program.parts.flatMap(\.statements) + program.parts.flatMap(\.subprogramStatements)).filter {
            if case .runtime = $0.origin { return true } else { return false }
        }.map(\.name) : []
        return CKernelSource(
            code: code, functionName: program.name, workspaceBytes: program.workspaceDoubles * 8,
            inputShapes: scheduled.inputShapes, outputShapes: scheduled.outputShapes, runtimeFunctions: runtime)
    }

    /// Whether the kernel is written as several C functions (graphs of many thousands of
    /// nodes), which `emitUnits(_:_:)` can hand over one at a time.
    public var isSplit: Bool { plan.parts.count > 1 }

    /// The kernel's C as separate translation units (`LoopIR.SplitUnits`): each part's unit,
    /// then the entry point's, passed to `consume` as soon as it is written, so a compiler can
    /// work on one while the next is lowered. Returns the source with all units in one file.
    /// - Precondition: `options` does not reach the runtime through pointers (cc's C is one
    ///   unit, from `emit(_:)`).
    public func emitUnits(_ options: CEmitOptions, _ consume: (String) throws -> Void) throws -> CKernelSource {
        var code = ""
        let split = try splitUnits(options) { write in
            let unit = try write()
            try consume(unit)
            code += unit
        }
        return split.replacingCode(with: code)
    }

    /// Lowers the parts in order and hands `hand` the work that writes each unit's C, then the
    /// entry point's; the work may run on another thread, in the order handed (the TinyCC
    /// tier's compiling thread: lowering and writing then take about as long as each other).
    /// `emitUnits` runs it at once. Returns the source without its code, which is the units'
    /// text one after another.
    func splitUnits(_ options: CEmitOptions, _ hand: (@escaping @Sendable () throws -> String) throws -> Void) throws -> CKernelSource {
        try checkFunctionName(options.functionName)
        var lowering = KernelLowering(plan: plan, target: options.target)
        let skeleton = lowering.skeleton(name: cIdentifier(options.functionName))
        let units = LoopIR.SplitUnits(skeleton, runtime: options.linkage)
        var runtime: [String] = []
        var seen = Set<String>()
        for k in 0..<plan.parts.count {
            let part = try lowering.part(k)
            if options.useRuntime {
                for f in LoopIR.functionsCalled(by: part.statements + part.subprogramStatements) where seen.insert(f.name).inserted {
                    if case .runtime = f.origin { runtime.append(f.name) }
                }
            }
            try hand {
                do {
                    return try units.part(k, part)
                } catch let error as LoopIR.RenderError {
                    throw internalError(error.description)
                }
            }
        }
        let partCount = plan.parts.count
        try hand { units.entry(partCount: partCount) }
        return CKernelSource(
            code: "", functionName: skeleton.name, workspaceBytes: skeleton.workspaceDoubles * 8,
            inputShapes: scheduled.inputShapes, outputShapes: scheduled.outputShapes, runtimeFunctions: runtime.sorted())
    }

    /// What the passes did: node counts, fusion, scratch memory.
    public var statistics: CompileStatistics {
        let nodes = scheduled.nodes
        let groups = plan.grouping.groups.filter { !$0.members.isEmpty && $0.shape.rank > 0 }
        return CompileStatistics(
            nodesBuilt: graph.nodes.count, nodesSimplified: scheduled.nodes.count,
            foldedConstants: simplification.foldedConstants, rewrites: simplification.rewrites,
            foldedViews: nodes.indices.filter { plan.facts.roles[$0] == .view && !plan.materialized[$0] }.count,
            loops: groups.count, fusedNodes: groups.reduce(0) { $0 + $1.members.count },
            storedIntermediates: plan.memory.offsets.compactMap { $0 }.count,
            workspaceBytes: plan.workspaceDoubles * 8, functions: plan.parts.count,
            loopSummaries: Self.loopSummaries(plan))
    }

    /// The loops of `plan` and, after each, those of its body (walked with a stack, sorted by
    /// where they are).
    private static func loopSummaries(_ plan: KernelPlan) -> [CompileStatistics.LoopSummary] {
        var summaries: [CompileStatistics.LoopSummary] = []
        var pending: [(plan: KernelPlan, path: [Int])] = [(plan, [])]
        while let (current, path) = pending.popLast() {
            var index = 0
            for (i, node) in current.graph.nodes.enumerated() {
                guard type(of: node.operation) == Scan.self, let scan = node.operation as? Scan else { continue }
                let stored = scan.pieces.history.reduce(0) { $0 + $1.shape.count } * 8
                summaries.append(CompileStatistics.LoopSummary(path: path + [index], steps: scan.steps, storedBytes: stored))
                if let body = current.loops[i]?.body { pending.append((body, path + [index])) }
                index += 1
            }
        }
        return summaries.sorted { $0.path.lexicographicallyPrecedes($1.path) }
    }
}

/// Writes one C99 function computing every output of `graph` (see `Compilation.emit(_:)`).
public func emitC(_ graph: Graph, options: CEmitOptions = .standalone) throws -> CKernelSource {
    try Compilation(graph, options: options).emit(options)
}
