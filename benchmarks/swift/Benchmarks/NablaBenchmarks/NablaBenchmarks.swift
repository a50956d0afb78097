// P1 and P2 (N = 100, 1000), value and gradient together, through Nabla's Swift API and, for
// comparison, through Swift's `_Differentiation` (`valueWithGradient`).
//
// Nabla: the graph files in benchmarks/problems are compiled once with `NablaProgram` and
// `Kernel` (TinyCC, in process); the timed loop calls `callUnchecked` on preallocated buffers.
// A separate benchmark times compilation itself (source text to callable kernel).
import _Differentiation
import Benchmark
import Foundation
import Nabla

// MARK: - Problems written with _Differentiation

@differentiable(reverse)
func seedFunction(_ x: Double) -> Double {
    let s = x * x
    return (s + exp(s)).squareRoot() + sin(s - 1)
}

@differentiable(reverse)
func rosenbrock(_ x: [Double]) -> Double {
    var total = 0.0
    for i in withoutDerivative(at: 0..<(x.count - 1)) {
        let a = x[i] * x[i] - x[i + 1]
        let b = x[i] - 1
        total += 100 * a * a + b * b
    }
    return total
}

// MARK: - Nabla set-up

/// benchmarks/problems, found from this file's location.
let problemsDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // NablaBenchmarks
    .deletingLastPathComponent()  // Benchmarks
    .deletingLastPathComponent()  // swift
    .deletingLastPathComponent()  // benchmarks
    .appendingPathComponent("problems")

func problemSource(_ name: String) -> String {
    let url = problemsDirectory.appendingPathComponent(name)
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
        fatalError("cannot read \(url.path)")
    }
    return text
}

/// A compiled kernel with its input, output and workspace buffers, ready for `callUnchecked`.
final class PreparedKernel {
    let kernel: Kernel
    let inputBuffers: [UnsafeMutableBufferPointer<Double>]
    let outputBuffers: [UnsafeMutableBufferPointer<Double>]
    let inputPointers: UnsafeMutablePointer<UnsafePointer<Double>?>
    let outputPointers: UnsafeMutablePointer<UnsafeMutablePointer<Double>?>
    let workspace: Workspace

    init(file: String, dims: [String: Int], seed: UInt64 = 1) throws {
        let program = try NablaProgram(source: problemSource(file), fileName: file, dims: dims)
        kernel = try Kernel(program.graph)
        var generator = SplitMix64(seed: seed)
        inputBuffers = kernel.inputs.map { input in
            let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(input.shape.count, 1))
            for i in buffer.indices { buffer[i] = Double.random(in: -1...1, using: &generator) }
            return buffer
        }
        outputBuffers = kernel.outputs.map { output in
            let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(output.shape.count, 1))
            buffer.initialize(repeating: 0)
            return buffer
        }
        inputPointers = .allocate(capacity: max(inputBuffers.count, 1))
        outputPointers = .allocate(capacity: max(outputBuffers.count, 1))
        for (i, buffer) in inputBuffers.enumerated() { inputPointers[i] = UnsafePointer(buffer.baseAddress!) }
        for (i, buffer) in outputBuffers.enumerated() { outputPointers[i] = buffer.baseAddress! }
        workspace = kernel.makeWorkspace()
    }

    /// The first input's elements, to feed the same point to `_Differentiation`.
    var firstInput: [Double] { Array(inputBuffers[0]) }

    @inline(__always)
    func call() {
        kernel.callUnchecked(inputs: inputPointers, outputs: outputPointers, workspace: workspace.pointer)
    }

    deinit {
        inputBuffers.forEach { $0.deallocate() }
        outputBuffers.forEach { $0.deallocate() }
        inputPointers.deallocate()
        outputPointers.deallocate()
    }
}

func prepared(_ file: String, _ dims: [String: Int] = [:]) -> PreparedKernel {
    do {
        return try PreparedKernel(file: file, dims: dims)
    } catch {
        fatalError("cannot compile \(file) \(dims): \(error)")
    }
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000
    )

    // P1: f(x) = sqrt(x^2 + exp(x^2)) + sin(x^2 - 1) and f'(x).
    Benchmark("P1 nabla callUnchecked") { benchmark in
        let p = prepared("p1-seed.nabla")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            p.call()
            blackHole(p.outputBuffers[1][0])
        }
    }
    Benchmark("P1 _Differentiation valueWithGradient") { benchmark in
        var x = 0.5
        for _ in benchmark.scaledIterations {
            let result = valueWithGradient(at: x, of: seedFunction)
            blackHole(result.gradient)
            x = blackHoleIdentity(x)
        }
    }

    // P2: chained Rosenbrock, value and gradient, N = 100 and 1000.
    for n in [100, 1000] {
        Benchmark("P2 N=\(n) nabla callUnchecked") { benchmark in
            let p = prepared("p2-rosenbrock.nabla", ["N": n])
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                p.call()
                blackHole(p.outputBuffers[1][0])
            }
        }
        Benchmark(
            "P2 N=\(n) _Differentiation valueWithGradient",
            configuration: .init(scalingFactor: .one)
        ) { benchmark in
            let x = prepared("p2-rosenbrock.nabla", ["N": n]).firstInput
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let result = valueWithGradient(at: x, of: rosenbrock)
                blackHole(result.gradient)
            }
        }
    }

    // Compile time: graph-file text to a callable kernel (parse, differentiate, emit C, TinyCC).
    for n in [100, 1000] {
        Benchmark(
            "P2 N=\(n) nabla compile (source to kernel)",
            configuration: .init(scalingFactor: .one, maxDuration: .seconds(2), maxIterations: 200)
        ) { benchmark in
            let source = problemSource("p2-rosenbrock.nabla")
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let program = try NablaProgram(source: source, fileName: "p2-rosenbrock.nabla", dims: ["N": n])
                blackHole(try Kernel(program.graph))
            }
        }
    }
}

@inline(never)
func blackHoleIdentity(_ x: Double) -> Double { x }
