#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A kernel whose sharded inputs are split by rows over the processes of a `Communicator`:
/// each process holds a contiguous block of rows (leading axis) of each sharded input, runs
/// native kernels on its block, and the processes combine their results so that every one of
/// them ends with the outputs of the whole data.
///
/// Nabla works out from the graph how each output combines (`combinations`):
/// - a sum or mean over the rows (a loss) and every gradient of one is summed over the
///   processes (`.summed`); so is such a sum plus a replicated term, as in
///   `mean((X @ w - y)^2) + lambda * sum(w^2)`, whose replicated term process 0 adds alone;
/// - a value that depends on the rows through such sums nonlinearly, such as `sum(X @ w)^2`
///   or `cholesky(X' @ X)`, is computed after the sums it needs (each process then computes it
///   alike: `.replicated`); every such dependence adds a stage, a kernel run and a sum over the
///   processes;
/// - a value with one row per data row (predictions, the gradient with respect to a sharded
///   input) is joined from the blocks in rank order (`.gathered`);
/// - anything else (a maximum over the rows, a row picked by index, an N x N matrix over the
///   rows) is refused with `NablaError.notSplittable`, naming the output and why.
///
/// A mean over rows divides by the global row count, as in the unsharded graph. Results equal
/// the unsharded kernel's up to the order of summation (blocks are summed separately, then
/// added up).
///
/// Rows need not divide evenly: the first `rowCount % size` processes hold one row more, and a
/// process may hold none. With a single row there is nothing to split: process 0 computes
/// every output and the others add zeros (every output is then `.summed`).
///
/// Calls are collective: every process makes the same calls in the same order, and a call
/// returns when all have made it. Calls on one kernel from several threads run one at a time.
public final class DataParallelKernel: @unchecked Sendable {
    /// How an output is combined over the processes.
    public enum Combination: Hashable, Sendable {
        /// Every process computes the same value.
        case replicated
        /// The sum of every process's partial value.
        case summed
        /// Every process's rows, joined along axis 0 in rank order.
        case gathered
    }

    /// The processes this kernel runs on.
    public let communicator: any Communicator
    /// The rows (of the sharded inputs' leading axis) this process holds.
    public let rows: Range<Int>
    /// Rows over all processes.
    public let rowCount: Int
    /// Names of the sharded inputs.
    public let shardedInputs: Set<String>
    /// Inputs in declaration order, with the shapes this process takes: its block of rows of
    /// each sharded input, the whole of the others.
    public let inputs: [(name: String, shape: Shape)]
    /// Outputs in order, with their shapes (those of the whole data) and how each combines.
    public let outputs: [(name: String, shape: Shape, combination: Combination)]
    /// Kernel runs per call, each followed by a sum over the processes.
    public var stageCount: Int { stages.count }
    /// Numbers summed over the processes per call.
    public let reducedCount: Int

    private let stages: [Stage]
    /// This process's ports, for the checks of the checked calls.
    private let signature: KernelSignature
    private let globalInputShapes: [Shape]
    private let reductionBuffer: UnsafeMutableBufferPointer<Double>
    private let summedOutputs: [(output: Int, offset: Int, count: Int)]
    private let gatheredOutputs: [(output: Int, local: UnsafeMutableBufferPointer<Double>, counts: [Int])]
    private let timing = Lock<Double>(0)
    private let calls = Lock<Void>(())

    /// One stage: a native kernel and where its buffers come from and go.
    private struct Stage {
        let kernel: Kernel
        let sources: [StageGraph.Source]
        let targets: [StageGraph.Target]
        let reduced: Range<Int>
        let inputPointers: UnsafeMutablePointer<UnsafePointer<Double>?>
        let outputPointers: UnsafeMutablePointer<UnsafeMutablePointer<Double>?>
        let workspace: Workspace
    }

    /// Compiles `graph` for this process of `communicator`, with the inputs named in
    /// `sharding` split by rows.
    /// - Throws: `NablaError.notSplittable` for an output that cannot be computed from split
    ///   rows; `.invalidArgument` for sharded inputs that are unknown, scalars or of different
    ///   row counts; compilation errors as `Kernel` throws them.
    public init(_ graph: Graph, sharding: Set<String>, communicator: any Communicator, backend: Backend = .tcc) throws {
        for name in sharding.sorted() where !graph.inputs.contains(where: { $0.name == name }) {
            throw NablaError.invalidArgument(op: "shard", reason: "'\(name)' is not an input (the inputs: \(graph.inputs.map(\.name).joined(separator: ", ")))")
        }
        let rowCount = try RowSplitPlan.rowCount(graph, sharded: sharding)
        let block: Range<Int>, combinations: [Combination], reductions: [Reduction], stageGraphs: [(graph: StageGraph, stage: Int)]
        if rowCount == 1 {
            // One row: nothing to split. Process 0 computes the whole graph and the others add
            // zeros (at one row, a graph may broadcast its row axis, which a plan would refuse).
            block = RowSplitPlan.block(of: communicator.rank, size: communicator.size, rows: 1)
            let whole = try StageGraph.wholeOnFirstProcess(graph, isFirst: communicator.rank == 0)
            reductions = whole.reductions
            stageGraphs = [(whole.stage, 0)]
            combinations = Array(repeating: .summed, count: graph.outputs.count)
        } else {
            let plan = try RowSplitPlan(graph, sharded: sharding, rank: communicator.rank, size: communicator.size)
            block = plan.block
            reductions = plan.reductions(of: graph)
            stageGraphs = try (0..<plan.stageCount).compactMap { stage in
                try plan.stageGraph(stage, of: graph, reductions: reductions).map { ($0, stage) }
            }
            combinations = plan.combinations.map { combination -> Combination in
                switch combination {
                case .replicated: .replicated
                case .summed: .summed
                case .gathered: .gathered
                }
            }
        }
        self.communicator = communicator
        rows = block
        self.rowCount = rowCount
        shardedInputs = sharding
        globalInputShapes = graph.inputShapes
        inputs = graph.inputs.map { port in
            let shape = graph.nodes[port.node].shape
            return (port.name, sharding.contains(port.name) ? RowSplit.localized(shape, axis: 0, rows: block.count) : shape)
        }
        outputs = zip(graph.outputs, combinations).map { ($0.name, graph.nodes[$0.node].shape, $1) }
        signature = KernelSignature(inputs: inputs, outputs: outputs.map { ($0.name, $0.shape) }, workspaceBytes: 0)

        let total = reductions.last.map { $0.offset + $0.count } ?? 0
        reducedCount = total
        // At least one element, so that the buffer has an address even when nothing is summed.
        reductionBuffer = .allocate(capacity: max(total, 1))
        reductionBuffer.initialize(repeating: 0)
        var stages: [Stage] = []
        for (made, stage) in stageGraphs {
            let kernel = try Kernel(made.graph, backend: backend)
            let mine = reductions.filter { $0.stage == stage }
            let reduced = (mine.first?.offset ?? 0)..<(mine.last.map { $0.offset + $0.count } ?? 0)
            stages.append(Stage(
                kernel: kernel, sources: made.sources, targets: made.targets, reduced: reduced,
                inputPointers: .allocate(capacity: max(made.sources.count, 1)),
                outputPointers: .allocate(capacity: max(made.targets.count, 1)),
                workspace: kernel.makeWorkspace()))
        }
        self.stages = stages
        let slot = Dictionary(uniqueKeysWithValues: reductions.map { ($0.node, $0) })
        summedOutputs = graph.outputs.enumerated().compactMap { k, port in
            combinations[k] == .summed ? (k, slot[port.node]!.offset, slot[port.node]!.count) : nil
        }
        let size = communicator.size
        gatheredOutputs = graph.outputs.enumerated().compactMap { k, port in
            guard combinations[k] == .gathered else { return nil }
            let perRow = rowCount == 0 ? 0 : graph.nodes[port.node].shape.count / rowCount
            let counts = (0..<size).map { RowSplitPlan.block(of: $0, size: size, rows: rowCount).count * perRow }
            let local = UnsafeMutableBufferPointer<Double>.allocate(capacity: counts[communicator.rank])
            local.initialize(repeating: 0)
            return (k, local, counts)
        }
    }

    deinit {
        reductionBuffer.deallocate()
        for stage in stages {
            stage.inputPointers.deallocate()
            stage.outputPointers.deallocate()
        }
        for output in gatheredOutputs { output.local.deallocate() }
    }

    /// Seconds this process has spent in the communicator's sums and joins, over all calls:
    /// waiting for the other processes included.
    public var communicationSeconds: Double { timing.withLock { $0 } }

    /// Runs the kernel with no checks.
    ///
    /// `inputs` holds one pointer per input (declaration order) to its elements, with this
    /// process's rows only of a sharded input (`inputs[i].shape`; a process without rows may
    /// pass nil); `outputs` one pointer per output to room for the whole output. Allocates
    /// nothing. A collective call: every process must make it.
    public func callUnchecked(inputs: UnsafePointer<UnsafePointer<Double>?>, outputs: UnsafePointer<UnsafeMutablePointer<Double>?>) {
        calls.withLock { _ in
            var waited = 0.0
            for stage in stages {
                for (k, source) in stage.sources.enumerated() {
                    switch source {
                    case .input(let i): stage.inputPointers[k] = inputs[i]
                    case .reduction(let offset): stage.inputPointers[k] = UnsafePointer(reductionBuffer.baseAddress! + offset)
                    }
                }
                for (k, target) in stage.targets.enumerated() {
                    switch target {
                    case .reduction(let offset): stage.outputPointers[k] = reductionBuffer.baseAddress! + offset
                    case .output(let i): stage.outputPointers[k] = outputs[i]
                    case .rows(let i): stage.outputPointers[k] = gatheredOutputs.first { $0.output == i }!.local.baseAddress
                    }
                }
                stage.kernel.callUnchecked(inputs: stage.inputPointers, outputs: stage.outputPointers, workspace: stage.workspace.pointer)
                if !stage.reduced.isEmpty {
                    let start = monotonicSeconds()
                    communicator.allreduceSum(UnsafeMutableBufferPointer(rebasing: reductionBuffer[stage.reduced]))
                    waited += monotonicSeconds() - start
                }
            }
            for summed in summedOutputs {
                outputs[summed.output]!.update(from: reductionBuffer.baseAddress! + summed.offset, count: summed.count)
            }
            for gathered in gatheredOutputs {
                let start = monotonicSeconds()
                let total = gathered.counts.reduce(0, +)
                communicator.allgather(UnsafeBufferPointer(gathered.local), into: UnsafeMutableBufferPointer(start: outputs[gathered.output], count: total), counts: gathered.counts)
                waited += monotonicSeconds() - start
            }
            timing.withLock { $0 += waited }
        }
    }

    /// Runs the kernel on caller-owned buffers after checking every count and size: this
    /// process's rows of each sharded input, the whole of the others, room for whole outputs.
    /// - Throws: `NablaError.countMismatch` or `.sizeMismatch` naming the offending buffer.
    public func call(inputs inputBuffers: [UnsafeBufferPointer<Double>], outputs outputBuffers: [UnsafeMutableBufferPointer<Double>]) throws {
        try signature.check(inputs: inputBuffers, outputs: outputBuffers)
        withUnsafeTemporaryAllocation(of: UnsafePointer<Double>?.self, capacity: max(inputs.count, 1)) { ins in
            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Double>?.self, capacity: max(outputs.count, 1)) { outs in
                for (i, buffer) in inputBuffers.enumerated() { ins[i] = buffer.baseAddress }
                for (i, buffer) in outputBuffers.enumerated() { outs[i] = buffer.baseAddress }
                callUnchecked(inputs: UnsafePointer(ins.baseAddress!), outputs: UnsafePointer(outs.baseAddress!))
            }
        }
    }

    /// Runs the kernel on named inputs and returns every output by name. A sharded input may
    /// be given whole (every process passing the same data; each keeps its rows) or as this
    /// process's rows.
    /// - Throws: `NablaError.unknownName` for a missing or unexpected input, `.shapeMismatch`
    ///   for an input of neither shape.
    public func callAsFunction(_ named: [String: TensorData]) throws -> [String: TensorData] {
        for name in named.keys where !inputs.contains(where: { $0.name == name }) {
            throw NablaError.unknownName(kind: "input", name: name, known: inputs.map(\.name))
        }
        var arrays: [[Double]] = []
        for (input, global) in zip(inputs, globalInputShapes) {
            guard let value = named[input.name] else {
                throw NablaError.unknownName(kind: "input", name: input.name, known: Array(named.keys).sorted())
            }
            if value.shape == input.shape {
                arrays.append(value.scalars)
            } else if shardedInputs.contains(input.name) && value.shape == global {
                let perRow = global.count / max(rowCount, 1)
                arrays.append(Array(value.scalars[(rows.lowerBound * perRow)..<(rows.upperBound * perRow)]))
            } else {
                let expected = shardedInputs.contains(input.name) ? [global, input.shape] : [input.shape]
                throw NablaError.shapeMismatch(op: "input '\(input.name)'", shapes: [value.shape] + expected, reason: "given data does not have the declared shape" + (expected.count == 2 ? " (whole, or this process's rows)" : ""))
            }
        }
        let results = try withBuffers(arrays) { inputBuffers in
            try withOutputArrays(counts: outputs.map(\.shape.count)) { outputBuffers in
                try call(inputs: inputBuffers, outputs: outputBuffers)
            }
        }
        var byName: [String: TensorData] = [:]
        for (output, scalars) in zip(outputs, results) { byName[output.name] = TensorData(unchecked: output.shape, scalars) }
        return byName
    }
}

private func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}
