import Dispatch
import Foundation
import Nabla

extension Bench {
    /// `nabla bench --shard`: times a data-parallel kernel on every process of the MPI world.
    ///
    /// The processes make the same calls: process 0 sizes the batches and tells the others,
    /// each batch starts together (after a sum of one number), and process 0's clock, which
    /// includes waiting for the slowest, is the one reported. Also reported: the share of a
    /// call spent in the communicator (sums and joins, waiting included) and the time of the
    /// same sum alone.
    func benchSharded(_ list: String) throws {
        let world = try reportingErrors { try MPICommunicator.world() }
        var prepared: (program: NablaProgram, inputs: [TensorData], names: Set<String>)?
        var failure: Error?
        do {
            let names = try parseShardList(list)
            let program = try file.load()
            var rng = SplitMix64(seed: seed)
            let inputs = program.graph.inputs.map { TensorData.random(program.graph.nodes[$0.node].shape, in: -1...1, using: &rng) }
            // Planning fails alike on every process; checking here keeps failures before any timing.
            _ = try reportingErrors { try DataParallelKernel(program.graph, sharding: names, communicator: world) }
            prepared = (program, inputs, names)
        } catch {
            failure = error
        }
        agreeOrExit(world, failure)
        let (program, inputs, names) = prepared!
        var results: [ShardedResult] = []
        for backend in backend.backends where backend != .interp {
            results.append(try measureSharded(program, inputs, names, world, backend: backend == .tcc ? .tcc : .cc))
        }
        if world.rank == 0 {
            let dims = program.dims.map { "\($0.name)=\($0.value)" }.joined(separator: ", ")
            let rows = results.first?.rows ?? 0
            let largest = results.first?.largestBlock ?? 0
            switch format {
            case .text:
                var lines = ["\(file.file)\(dims.isEmpty ? "" : " (\(dims))"): data-parallel over \(world.size) process\(world.size == 1 ? "" : "es"), \(rows) rows (largest block \(largest)); process 0's medians of \(ShardedResult.batches) batches"]
                lines.append("backend  compile   call  in communication  sum alone  numbers summed  stages")
                for r in results {
                    lines.append([r.backend.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0), duration(r.compile), duration(r.call),
                                  String(format: "%.1f%%", 100 * r.communicationShare), duration(r.sumAlone), "\(r.reduced)", "\(r.stages)"].joined(separator: "  "))
                }
                try writeStandardOutput(lines.joined(separator: "\n") + "\n")
            case .json:
                func number(_ value: Double) -> String { String(format: "%.6g", value) }
                let entries = results.map { r in
                    "    {\"backend\": \"\(r.backend.rawValue)\", \"compile_us\": \(number(r.compile * 1e6)), \"call_ns\": \(number(r.call * 1e9)), \"communication_share\": \(number(r.communicationShare)), \"sum_alone_ns\": \(number(r.sumAlone * 1e9)), \"reduced\": \(r.reduced), \"stages\": \(r.stages)}"
                }
                let text = """
                {
                  "file": \(TensorText.jsonString(file.file)),
                  "processes": \(world.size),
                  "rows": \(rows),
                  "largest_block": \(largest),
                  "threads": \(KernelRuntime.threadCount),
                  "instruction_set": \(TensorText.jsonString(KernelRuntime.instructionSet.rawValue)),
                  "backends": [
                \(entries.joined(separator: ",\n"))
                  ]
                }
                """
                try writeStandardOutput(text + "\n")
            }
        }
        world.finalize()
        withExtendedLifetime(program) { Foundation.exit(0) }
    }

    /// Compiles and times one backend on every process.
    private func measureSharded(_ program: NablaProgram, _ inputs: [TensorData], _ names: Set<String>, _ world: MPICommunicator, backend: Nabla.Backend) throws -> ShardedResult {
        let compileStart = world.time
        let kernel = try reportingErrors { try DataParallelKernel(program.graph, sharding: names, communicator: world, backend: backend) }
        let compile = world.time - compileStart
        // This process's rows of each sharded input, the whole of the others.
        let local: [[Double]] = zip(inputs, kernel.inputs).map { value, input in
            guard names.contains(input.name) else { return value.scalars }
            let perRow = value.scalars.count / max(kernel.rowCount, 1)
            return Array(value.scalars[(kernel.rows.lowerBound * perRow)..<(kernel.rows.upperBound * perRow)])
        }
        let inputPointers = local.map { values -> UnsafeMutablePointer<Double> in
            let buffer = UnsafeMutablePointer<Double>.allocate(capacity: max(values.count, 1))
            buffer.initialize(from: values, count: values.count)
            return buffer
        }
        let outputPointers = kernel.outputs.map { UnsafeMutablePointer<Double>.allocate(capacity: max($0.shape.count, 1)) }
        defer {
            for pointer in inputPointers { pointer.deallocate() }
            for pointer in outputPointers { pointer.deallocate() }
        }
        let ins: [UnsafePointer<Double>?] = inputPointers.map { UnsafePointer($0) }
        let outs: [UnsafeMutablePointer<Double>?] = outputPointers
        let call = { kernel.callUnchecked(inputs: ins, outputs: outs) }
        var one = [0.0]
        func together() { one.withUnsafeMutableBufferPointer { world.allreduceSum($0) } }

        // Warm up, then process 0 sizes batches of about a twentieth of the budget.
        for _ in 0..<3 { call() }
        together()
        let warm = world.time
        for _ in 0..<3 { call() }
        var size = [world.rank == 0 ? Double(max(1, min(Int(seconds / 20 / max((world.time - warm) / 3, 1e-9)), 1_000_000))) : 0]
        size.withUnsafeMutableBufferPointer { world.allreduceSum($0) }
        let batch = Int(size[0])

        var calls: [Double] = [], shares: [Double] = [], sums: [Double] = []
        var scratch = [Double](repeating: 0, count: kernel.reducedCount)
        for _ in 0..<ShardedResult.batches {
            together()
            let communicated = kernel.communicationSeconds
            let start = world.time
            for _ in 0..<batch { call() }
            let spent = world.time - start
            calls.append(spent / Double(batch))
            shares.append((kernel.communicationSeconds - communicated) / spent)
            together()
            let sumStart = world.time
            for _ in 0..<batch { scratch.withUnsafeMutableBufferPointer { world.allreduceSum($0) } }
            sums.append((world.time - sumStart) / Double(batch))
        }
        var largest = [Double](repeating: 0, count: world.size)
        largest[world.rank] = Double(kernel.rows.count)
        largest.withUnsafeMutableBufferPointer { world.allreduceSum($0) }
        return ShardedResult(
            backend: backend, compile: compile, call: median(calls), communicationShare: median(shares), sumAlone: median(sums),
            reduced: kernel.reducedCount, stages: kernel.stageCount, rows: kernel.rowCount, largestBlock: Int(largest.max() ?? 0))
    }
}

/// One backend's data-parallel figures on process 0, in seconds.
struct ShardedResult {
    static let batches = 9
    let backend: Nabla.Backend
    let compile: Double
    let call: Double
    let communicationShare: Double
    let sumAlone: Double
    let reduced: Int
    let stages: Int
    let rows: Int
    let largestBlock: Int
}

private func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}
