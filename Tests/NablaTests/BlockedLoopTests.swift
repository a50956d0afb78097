import Dispatch
import Foundation
import Synchronization
import Testing
@testable import Nabla

/// Large loops in blocks (`LoopIR.ReductionBlocks`, `LoopIR.ParallelLoop`): a sum of many
/// terms into one element adds them block by block on every path, so the interpreter, TinyCC,
/// cc and standalone C agree bit for bit whatever the thread count; kernels run the blocks of
/// large loops on the runtime's thread pool.
@Suite("Loops in blocks")
struct BlockedLoopTests {
    typealias Blocks = LoopIR.ReductionBlocks

    @Test func theBlocksOfATensor() throws {
        #expect(Blocks(extents: []) == nil)
        #expect(Blocks(extents: [16_384]) == nil)
        #expect(Blocks(extents: [1, 100_000]) == nil)
        let two = try #require(Blocks(extents: [16_385]))
        #expect((two.rowsPerBlock, two.count) == (16_384, 2))
        #expect(two.elements(of: 1) == 16_384..<16_385)
        let seven = try #require(Blocks(extents: [100_000]))
        #expect((seven.rowsPerBlock, seven.count) == (16_384, 7))
        // Rows longer than a block: a row each.
        let rows = try #require(Blocks(extents: [3, 10_000]))
        #expect((rows.rowsPerBlock, rows.count, rows.rowSize) == (1, 3, 10_000))
        #expect(rows.elements(of: 2) == 20_000..<30_000)
        let narrow = try #require(Blocks(extents: [20_000, 3]))
        #expect((narrow.rowsPerBlock, narrow.count) == (5_461, 4))
        #expect(narrow.elements(of: 3) == 49_149..<60_000)
        // Never more than 256 blocks: larger tensors get larger blocks.
        let huge = try #require(Blocks(extents: [256 * 16_384 + 1]))
        #expect((huge.rowsPerBlock, huge.count) == (16_385, 256))
        // The blocks cover every element once, in order.
        for blocks in [two, seven, rows, narrow, huge] {
            var next = 0
            for b in 0..<blocks.count {
                let range = blocks.elements(of: b)
                #expect(range.lowerBound == next && !range.isEmpty)
                next = range.upperBound
            }
            #expect(next == blocks.rows * blocks.rowSize)
        }
    }

    /// 2^53 then ones: added one by one, every one is lost (2^53 + 1 rounds to 2^53); in blocks,
    /// the second block's ones add up to 16384 first, which 2^53 + 16384 keeps.
    @Test func theInterpreterAddsInBlocks() throws {
        let n = 2 * 16_384
        var scalars = [Double](repeating: 1, count: n)
        scalars[0] = 0x1p53
        let g = GraphBuilder()
        let x = try g.input("x", shape: [n])
        let graph = try g.graph(outputs: ["s": sum(x)])
        let inputs = ["x": try TensorData(shape: [n], scalars: scalars)]
        let one = try #require(Interpreter.evaluate(graph, inputs: inputs)["s"]).scalar
        #expect(one == 0x1p53 + 16_384)
        #expect(scalars.reduce(0, +) == 0x1p53, "the order matters for these terms")
        for kernel in [try Kernel(graph), try Kernel(graph, backend: .cc)] {
            #expect(try kernel(inputs)["s"]!.scalar == one)
        }
    }

    /// Graphs whose loops are cut into blocks, each with inputs spread over many binades (so
    /// that any other order would change bits).
    static let cases: [String] = [
        "sum 16385", "sum 49159", "sum 4194305", "rosenbrock 100000", "transposed 300x200", "columns and total 40000x2",
        "elementwise 100000", "mean and variance 70000", "rows 5x30000", "fold 40000", "split 30000",
    ]

    static func graph(_ name: String) throws -> Graph {
        let g = GraphBuilder()
        let size = name.split(separator: " ").last!
        let dims = size.split(separator: "x").map { Int($0)! }
        switch name.split(separator: " ").first! {
        case "sum":
            let x = try g.input("x", shape: Shape(dims))
            let f = try sum(sin(x) * x)
            return try g.graph(outputs: ["f": f, "df/dx": gradient(of: f, wrt: x)])
        case "rosenbrock":
            let n = dims[0]
            let x = try g.input("x", shape: [n])
            let head = try x[.range(start: 0, end: n - 1, step: 1)], tail = try x[.range(start: 1, end: n, step: 1)]
            let f = try sum(100 * (tail - head * head) * (tail - head * head) + (1 - head) * (1 - head))
            return try g.graph(outputs: ["f": f, "df/dx": gradient(of: f, wrt: x)])
        case "transposed":
            let a = try g.input("A", shape: Shape(dims)), b = try g.input("B", shape: Shape([dims[1], dims[0]]))
            let f = try sum(a.transposed([1, 0]) * b)
            return try g.graph(outputs: ["f": f, "df/dA": gradient(of: f, wrt: a)])
        case "columns":
            let a = try g.input("A", shape: Shape(dims))
            let y = exp(a * 0.5)
            return try g.graph(outputs: ["total": sum(y), "columns": sum(y, axes: [0])])
        case "elementwise":
            let x = try g.input("x", shape: Shape(dims))
            let y = try sin(x) * 2 + x * x
            return try g.graph(outputs: ["y": y, "dy": gradient(of: sum(y * y), wrt: x)])
        case "mean":
            let x = try g.input("x", shape: Shape(dims))
            let mean = sum(x) / Double(dims[0])
            let variance = try sum((x - mean) * (x - mean))
            return try g.graph(outputs: ["variance": variance, "d/dx": gradient(of: variance, wrt: x)])
        case "rows":
            let a = try g.input("A", shape: Shape(dims))
            let r = try sum(tanh(a), axes: [1])
            return try g.graph(outputs: ["rows": r, "total": sum(r * r)])
        case "fold":
            // Parallel loops inside a loop's body (a subprogram of its own).
            let x = try g.input("x", shape: Shape(dims)), c0 = try g.input("c0")
            let c = try fold(c0, steps: 3) { c, k in try tanh(c * 0.5 + sum(sin(x) * c) * 1e-4 + k * 0.1) }
            return try g.graph(outputs: ["c": c, "dc/dx": gradient(of: c, wrt: x), "dc/dc0": gradient(of: c, wrt: c0)])
        case "split":
            // A kernel split into parts (TinyCC compiles them unit by unit), some with parallel loops.
            let x = try g.input("x", shape: Shape(dims)), y0 = try g.input("y0")
            var y = y0
            for k in 0..<1500 {
                y = 0.999 * sin(y) + 0.001
                if k % 500 == 0 { y = try y + sum(x * x * y) * 1e-6 }
            }
            let graph = try g.graph(outputs: ["y": y, "dy/dx": gradient(of: y, wrt: x)])
            #expect(try Compilation(graph).isSplit)
            return graph
        default:
            throw NablaError.invalidArgument(op: "test", reason: "no case \(name)")
        }
    }

    static func inputs(_ graph: Graph, seed: UInt64) -> [String: TensorData] {
        inputsOverManyBinades(graph, seed: seed, binades: 30)
    }

    @Test(arguments: cases)
    func everyPathAndThreadCountGivesTheInterpretersBits(_ name: String) throws {
        let graph = try Self.graph(name)
        let inputs = Self.inputs(graph, seed: 7)
        let reference = try Interpreter.evaluate(graph, inputs: inputs)
        let standalone = try Kernel(source: emitC(graph, options: .standalone), inputNames: graph.inputs.map(\.name),
                                    outputNames: graph.outputs.map(\.name))
        let kernels: [(String, any CompiledKernel)] = [("tcc", try Kernel(graph)), ("cc", try Kernel(graph, backend: .cc)), ("standalone", standalone)]
        try expectSameBitsOnEveryThreadCount(graph, inputs, reference: reference, kernels: kernels, counts: [1, 2, 3], label: name + ", ")
    }

    /// The JIT kernels of large loops call the thread pool, small ones do not; standalone C
    /// never does, and keeps its sums in blocks.
    @Test func largeLoopsRunOnThePool() throws {
        for name in ["rosenbrock 100000", "elementwise 100000", "mean and variance 70000", "transposed 300x200"] {
            let graph = try Self.graph(name)
            var options = CEmitOptions(useRuntime: true)
            for unroll in [1, 8] {
                options.unroll = unroll
                let code = try emitC(graph, options: options).code
                #expect(code.contains("nabla_parallel("), "\(name), unroll \(unroll)")
            }
            let standalone = try emitC(graph, options: .standalone).code
            #expect(!standalone.contains("nabla_parallel(6"), "\(name)")
        }
        let small = try Self.smallGraph()
        #expect(try !emitC(small, options: CEmitOptions(useRuntime: true)).code.contains("nabla_parallel("))
        // A sum of many terms in standalone C: its blocks, in order.
        let code = try emitC(Self.graph("sum 49159"), options: .standalone).code
        #expect(code.contains("for (long g = 0; g < 4; g++)"))
    }

    static func smallGraph() throws -> Graph {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [1000])
        let f = try sum(sin(x) * x)
        return try g.graph(outputs: ["f": f, "df/dx": gradient(of: f, wrt: x)])
    }

    /// Eight threads call kernels whose loops run on the pool at once: the pool serves one
    /// call at a time and the others run their blocks themselves; every result is right.
    @Test func concurrentCallersGetTheInterpretersBits() throws {
        let graph = try Self.graph("rosenbrock 100000")
        let inputs = (0..<8).map { Self.inputs(graph, seed: UInt64(20 + $0)) }
        let references = try inputs.map { try Interpreter.evaluate(graph, inputs: $0) }
        let kernels = [try Kernel(graph), try Kernel(graph, backend: .cc)]
        let failures = Mutex(0)
        let original = KernelRuntime.threadCount
        defer { KernelRuntime.threadCount = original }
        KernelRuntime.threadCount = 2
        DispatchQueue.concurrentPerform(iterations: 16) { call in
            let k = call % 8
            do {
                let outputs = try kernels[call % 2](inputs[k])
                for port in graph.outputs where !sameBits(outputs[port.name]!.scalars, references[k][port.name]!.scalars) {
                    failures.withLock { $0 += 1 }
                }
            } catch {
                failures.withLock { $0 += 1 }
            }
        }
        #expect(failures.withLock { $0 } == 0)
    }
}
