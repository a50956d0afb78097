import ArgumentParser
import Dispatch
import Foundation
import Nabla

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time compiling and calling a graph file on each backend.",
        discussion: """
            For each backend: compile time (source text to callable kernel, in process, median of \
            several compiles), time per call of the whole file (median over timed batches after a \
            warm-up, through the unchecked path with preallocated buffers), time per call of the \
            forward outputs alone, their ratio, scratch bytes and node count. interp is the \
            Swift interpreter, the baseline; tcc is TinyCC; cc is the system C compiler at -O3 \
            (NABLA_CC overrides it). Inputs are uniform in [-1, 1] from --seed. Each measurement \
            takes about --seconds (at least one compile and a few calls).
            """)

    @OptionGroup var file: FileOptions

    @Option(help: "interp, tcc, cc or all.")
    var backend: BenchBackend = .all

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Option(help: "Time budget of each measurement, in seconds (more than 0, at most \(Int(Bench.maximumSeconds))).")
    var seconds: Double = 0.25

    /// The largest `--seconds`: an hour per measurement.
    static let maximumSeconds = 3600.0

    @Option(help: "Seed of the random inputs.")
    var seed: UInt64 = 1

    @OptionGroup var runtime: RuntimeOptions

    @Option(help: ArgumentHelp(
        "Time a data-parallel run under mpirun instead, these inputs split by rows over the processes.",
        valueName: "NAME[,NAME...]"))
    var shard: String?

    func validate() throws {
        guard seconds > 0, seconds <= Bench.maximumSeconds else {
            throw ValidationError("--seconds must be more than 0 and at most \(Int(Bench.maximumSeconds)), not \(seconds)")
        }
    }

    func run() throws {
        try runtime.apply()
        if let shard { return try benchSharded(shard) }
        // The text is read once: the file may be a pipe.
        let (program, text) = try file.loadWithText()
        // Every dim at its final value, so each timed compile builds the same graph.
        let dims = Dictionary(uniqueKeysWithValues: program.dims.map { ($0.name, $0.value) })
        let layout = file.jacobianLayout
        let fileName = file.file
        let parse = { try NablaProgram(source: text, fileName: fileName, dims: dims, jacobianLayout: layout) }

        var rng = SplitMix64(seed: seed)
        let inputs = program.graph.inputs.map { TensorData.random(program.graph.nodes[$0.node].shape, in: -1...1, using: &rng) }
        let forward = program.forwardGraph
        let timer = BenchTimer(seconds: seconds)

        var results: [BenchResult] = []
        for backend in backend.backends {
            let result = try reportingErrors { () throws -> BenchResult in
                switch backend {
                case .interp:
                    let compile = try timer.compiles { _ = try parse() }
                    let graph = program.graph
                    let call = timer.calls { _ = try! Interpreter.evaluate(graph, inputs: inputs) }
                    let forwardCall = forward.outputs.isEmpty ? nil : timer.calls { _ = try! Interpreter.evaluate(forward, inputs: inputs) }
                    return BenchResult(
                        backend: backend, compile: compile.median, compiles: compile.count, call: call, forward: forwardCall,
                        workspaceBytes: nil, nodes: graph.nodes.count, forwardNodes: forward.nodes.count)
                case .tcc, .cc, .all:  // .all is expanded by `backends`
                    let kind: Nabla.Backend = backend == .tcc ? .tcc : .cc
                    var kernel: Kernel?
                    let compile = try timer.compiles { kernel = try Kernel(parse().graph, backend: kind) }
                    let call = try UncheckedCall(kernel!, inputs: inputs)
                    let callTime = timer.calls { call() }
                    var forwardTime: Double?
                    if !forward.outputs.isEmpty {
                        let forwardCall = try UncheckedCall(Kernel(forward, backend: kind), inputs: inputs)
                        forwardTime = timer.calls { forwardCall() }
                    }
                    return BenchResult(
                        backend: backend, compile: compile.median, compiles: compile.count, call: callTime, forward: forwardTime,
                        workspaceBytes: kernel!.workspaceBytes, nodes: program.graph.nodes.count, forwardNodes: forward.nodes.count)
                }
            }
            results.append(result)
        }
        let baseline = results.first { $0.backend == .interp }?.call
        switch format {
        case .json: try writeStandardOutput(json(results, dims: program.dims, baseline: baseline) + "\n")
        case .text: try writeStandardOutput(table(results, dims: program.dims, baseline: baseline) + "\n")
        }
    }

    private func json(_ results: [BenchResult], dims: [(name: String, value: Int)], baseline: Double?) -> String {
        func number(_ value: Double?) -> String { value.map { String(format: "%.6g", $0) } ?? "null" }
        var lines = ["{"]
        lines.append("  \"file\": \(TensorText.jsonString(file.file)),")
        lines.append("  \"dims\": {" + dims.map { "\(TensorText.jsonString($0.name)): \($0.value)" }.joined(separator: ", ") + "},")
        lines.append("  \"seconds\": \(number(seconds)),")
        lines.append("  \"seed\": \(seed),")
        lines.append("  \"runtime\": \(TensorText.jsonString(KernelRuntime.origin.description)),")
        lines.append("  \"instruction_set\": \(TensorText.jsonString(KernelRuntime.instructionSet.rawValue)),")
        lines.append("  \"threads\": \(KernelRuntime.threadCount),")
        lines.append("  \"blas\": \(KernelRuntime.blas.map { TensorText.jsonString($0.description) } ?? "null"),")
        lines.append("  \"backends\": [")
        for (k, r) in results.enumerated() {
            let fields = [
                "\"backend\": \"\(r.backend.rawValue)\"",
                "\"compile_us\": \(number(r.compile * 1e6))",
                "\"compiles\": \(r.compiles)",
                "\"call_ns\": \(number(r.call * 1e9))",
                "\"forward_ns\": \(number(r.forward.map { $0 * 1e9 }))",
                "\"gradient_ratio\": \(number(r.ratio))",
                "\"workspace_bytes\": \(r.workspaceBytes.map(String.init) ?? "null")",
                "\"nodes\": \(r.nodes)",
                "\"forward_nodes\": \(r.forwardNodes)",
                "\"speedup_vs_interp\": \(number(baseline.map { $0 / r.call }))",
            ]
            lines.append("    {" + fields.joined(separator: ", ") + "}" + (k + 1 < results.count ? "," : ""))
        }
        lines.append("  ]")
        lines.append("}")
        return lines.joined(separator: "\n")
    }

    private func table(_ results: [BenchResult], dims: [(name: String, value: Int)], baseline: Double?) -> String {
        let dimText = dims.isEmpty ? "" : " (" + dims.map { "\($0.name)=\($0.value)" }.joined(separator: ", ") + ")"
        var rows = [["backend", "compile", "compiles", "call", "forward", "call/fwd", "scratch", "nodes", "vs interp"]]
        for r in results {
            rows.append([
                r.backend.rawValue, duration(r.compile), "\(r.compiles)", duration(r.call), r.forward.map(duration) ?? "-",
                r.ratio.map { String(format: "%.2f", $0) } ?? "-", r.workspaceBytes.map(bytes) ?? "-",
                "\(r.nodes) (\(r.forwardNodes))", baseline.map { ratio($0 / r.call) } ?? "-",
            ])
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max()! }
        var lines = [
            "\(file.file)\(dimText): medians, inputs seeded with \(seed); nodes of the whole graph (forward only)",
            "runtime: \(KernelRuntime.origin); instruction set \(KernelRuntime.instructionSet.rawValue); threads \(KernelRuntime.threadCount); BLAS \(KernelRuntime.blas.map(\.description) ?? "off")",
        ]
        for row in rows {
            // The first column left-aligned, numbers right-aligned.
            let cells = row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + pad : pad + cell
            }
            lines.append(cells.joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }
}

/// Backends `nabla bench` can time.
enum BenchBackend: String, ExpressibleByArgument, CaseIterable {
    case interp, tcc, cc, all

    var backends: [BenchBackend] { self == .all ? [.interp, .tcc, .cc] : [self] }
}

/// One backend's figures, in seconds.
struct BenchResult {
    let backend: BenchBackend
    /// Median compile time and how many compiles it is the median of.
    let compile: Double
    let compiles: Int
    /// Median time per call of the whole graph, and of its forward outputs alone.
    let call: Double
    let forward: Double?
    let workspaceBytes: Int?
    let nodes: Int
    let forwardNodes: Int

    /// Value-and-derivatives time over forward-only time.
    var ratio: Double? { forward.map { call / $0 } }
}

/// Measurements bounded by a time budget each.
struct BenchTimer {
    let seconds: Double

    /// Runs `body` at least three times (once if that alone exceeds the budget) and until the
    /// budget is spent, at most 50 times; returns the median time and the count.
    func compiles(_ body: () throws -> Void) throws -> (median: Double, count: Int) {
        var times: [Double] = []
        let start = now()
        while true {
            let t0 = now()
            try body()
            times.append(now() - t0)
            let spent = now() - start
            if times.count >= 50 || (spent >= seconds && (times.count >= 3 || times[0] >= seconds)) { break }
        }
        return (median(times), times.count)
    }

    /// Median seconds per call of `body`: a warm-up of a tenth of the budget, then batches
    /// sized to about a twentieth of it, until the budget is spent and at least five batches
    /// ran (or twice the budget is spent).
    func calls(_ body: () -> Void) -> Double {
        let warmStart = now()
        var warmCalls = 0
        repeat {
            body()
            warmCalls += 1
        } while now() - warmStart < seconds / 10
        let perCall = (now() - warmStart) / Double(warmCalls)
        let batch = max(1, min(Int((seconds / 20) / max(perCall, 1e-9)), 100_000_000))
        var samples: [Double] = []
        let start = now()
        repeat {
            let t0 = now()
            for _ in 0..<batch { body() }
            samples.append((now() - t0) / Double(batch))
        } while now() - start < seconds || (samples.count < 5 && now() - start < 2 * seconds)
        return median(samples)
    }

    private func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// A kernel with its inputs, outputs and workspace allocated once, called through the
/// unchecked path.
final class UncheckedCall {
    private let kernel: Kernel
    private let workspace: Workspace
    private let buffers: [UnsafeMutablePointer<Double>]
    private let inputPointers: UnsafeMutablePointer<UnsafePointer<Double>?>
    private let outputPointers: UnsafeMutablePointer<UnsafeMutablePointer<Double>?>

    init(_ kernel: Kernel, inputs: [TensorData]) throws {
        guard inputs.count == kernel.inputs.count else {
            throw NablaError.countMismatch(what: "inputs", expected: kernel.inputs.count, got: inputs.count)
        }
        self.kernel = kernel
        workspace = kernel.makeWorkspace()
        inputPointers = .allocate(capacity: max(kernel.inputs.count, 1))
        outputPointers = .allocate(capacity: max(kernel.outputs.count, 1))
        var owned: [UnsafeMutablePointer<Double>] = []
        for (k, value) in inputs.enumerated() {
            let buffer = UnsafeMutablePointer<Double>.allocate(capacity: max(value.scalars.count, 1))
            buffer.initialize(repeating: 0, count: max(value.scalars.count, 1))
            for (i, x) in value.scalars.enumerated() { buffer[i] = x }
            owned.append(buffer)
            inputPointers[k] = UnsafePointer(buffer)
        }
        for (k, output) in kernel.outputs.enumerated() {
            let buffer = UnsafeMutablePointer<Double>.allocate(capacity: max(output.shape.count, 1))
            buffer.initialize(repeating: 0, count: max(output.shape.count, 1))
            owned.append(buffer)
            outputPointers[k] = buffer
        }
        buffers = owned
    }

    func callAsFunction() {
        kernel.callUnchecked(inputs: inputPointers, outputs: outputPointers, workspace: workspace.pointer)
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        inputPointers.deallocate()
        outputPointers.deallocate()
    }
}

/// "812 ns", "12.3 us", "1.23 ms", "2.05 s": three significant digits.
func duration(_ seconds: Double) -> String {
    let (value, unit): (Double, String) =
        seconds < 1e-6 ? (seconds * 1e9, "ns") : seconds < 1e-3 ? (seconds * 1e6, "us") : seconds < 1 ? (seconds * 1e3, "ms") : (seconds, "s")
    let digits = value >= 100 ? 0 : value >= 10 ? 1 : 2
    return String(format: "%.\(digits)f", value) + " " + unit
}

/// "1.00x", "12.5x", "1091x".
func ratio(_ value: Double) -> String {
    String(format: value >= 100 ? "%.0fx" : value >= 10 ? "%.1fx" : "%.2fx", value)
}

/// "0 B", "800 B", "7.8 KiB", "1.5 MiB".
func bytes(_ count: Int) -> String {
    if count < 1024 { return "\(count) B" }
    if count < 1024 * 1024 { return String(format: "%.1f KiB", Double(count) / 1024) }
    return String(format: "%.1f MiB", Double(count) / (1024 * 1024))
}
