import Dispatch
import Synchronization
import Foundation
import Testing
@testable import Nabla

/// The runtime's thread pool (runtime/nabla_parallel.c): large matrix products split by rows
/// over `KernelRuntime.threadCount` threads give the serial bits, for any count, and kernels
/// called from many threads at once while the pool is in use stay right.
///
/// The count is process-wide and other suites run at the same time; they only see it change
/// how fast their products run, never what they compute, which is what this suite checks.
@Suite("Runtime threads")
struct ThreadTests {
    /// A graph whose kernel calls the runtime's product at sizes above the split threshold
    /// (tiled, with leftover rows and columns) and one below it, and the product's gradient.
    static func productGraph() throws -> (Graph, [String: TensorData]) {
        let g = GraphBuilder()
        let a = try g.input("A", shape: [203, 150]), b = try g.input("B", shape: [150, 97])
        let v = try g.input("v", shape: [150])
        let c = try a.matmul(b)
        let loss = try sum(sin(c)) + sum(a.matmul(v))
        let graph = try g.graph(outputs: ["C": c, "loss": loss, "dA": gradient(of: loss, wrt: a), "dB": gradient(of: loss, wrt: b)])
        // Many binades, so a changed summation order would change bits.
        let inputs = inputsOverManyBinades(graph, seed: 41)
        return (graph, inputs)
    }

    @Test func everyThreadCountGivesTheInterpretersBits() throws {
        let (graph, inputs) = try Self.productGraph()
        try expectSameBitsOnEveryThreadCount(graph, inputs, reference: try Interpreter.evaluate(graph, inputs: inputs),
                                             kernels: [("tcc", try Kernel(graph)), ("cc", try Kernel(graph, backend: .cc))], counts: [1, 2, 3, 7])
    }

    /// Products with too few rows to split (a row vector, three rows) times tall matrices, and
    /// the gradient of a least-squares fit over many rows (whose A^T e is such a product, next
    /// to a product split by rows and a loop in blocks): the same bits for any thread count.
    @Test func productsWithFewRowsGiveTheSameBits() throws {
        let g = GraphBuilder()
        let v = try g.input("v", shape: [60_000]), b = try g.input("B", shape: [60_000, 10])
        let a = try g.input("A", shape: [3, 30_000]), c = try g.input("C", shape: [30_000, 7])
        let theta = try g.input("theta", shape: [10])
        let e = try b.matmul(theta) - v
        let loss = try sum(e * e)
        let graph = try g.graph(outputs: ["vB": v.matmul(b), "AC": a.matmul(c), "dtheta": gradient(of: loss, wrt: theta)])
        let inputs = inputsOverManyBinades(graph, seed: 43)
        try expectSameBitsOnEveryThreadCount(graph, inputs, reference: try Interpreter.evaluate(graph, inputs: inputs),
                                             kernels: [("tcc", try Kernel(graph)), ("cc", try Kernel(graph, backend: .cc))], counts: [1, 2, 3, 7])
    }

    /// P5 in its LU and its Cholesky forms at n = 200: the gradients' solves with 200
    /// right-hand sides (A^-T from the LU factors, triangular solves) are split by columns.
    @Test(arguments: ["benchmarks/problems/p5-gp.nabla", "benchmarks/problems/p5-gp-cholesky.nabla"])
    func solvesWithManyRightHandSidesGiveTheSameBits(_ file: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let program = try NablaProgram(contentsOfFile: root.appendingPathComponent(file).path, dims: ["n": 200])
        var rng = SeededRandom(seed: 5)
        var inputs: [String: TensorData] = [:]
        for port in program.graph.inputs { inputs[port.name] = .random(program.graph.nodes[port.node].shape, in: -1...1, using: &rng) }
        let reference = try Interpreter.evaluate(program.graph, inputs: inputs)
        let kernels = [("tcc", try Kernel(program.graph)), ("cc", try Kernel(program.graph, backend: .cc))]
        let original = KernelRuntime.threadCount
        defer { KernelRuntime.threadCount = original }
        for count in [1, 2, 3] {
            KernelRuntime.threadCount = count
            for (tier, kernel) in kernels {
                let outputs = try kernel(inputs)
                for port in program.graph.outputs {
                    let got = outputs[port.name]!.scalars, want = reference[port.name]!.scalars
                    #expect(sameBits(got, want), "\(file), \(tier), \(count) threads, \(port.name): \(firstDifference(got, want))")
                }
            }
        }
    }

    /// An LU factor large enough for its trailing updates to be split by rows (n = 600), with
    /// its solve and the gradient through logdet (A^-T: 600 right-hand sides).
    @Test func aLargeLUFactorGivesTheSameBits() throws {
        let source = """
            dim n = 600
            input A: [n, n]
            input b: [n]
            M = A + n * eye(n)
            output f = logdet(M) + sum(solve(M, b))
            grad f wrt A, b
            """
        let program = try NablaProgram(source: source, fileName: "large-lu.nabla")
        var rng = SeededRandom(seed: 9)
        var inputs: [String: TensorData] = [:]
        for port in program.graph.inputs { inputs[port.name] = .random(program.graph.nodes[port.node].shape, in: -1...1, using: &rng) }
        let reference = try Interpreter.evaluate(program.graph, inputs: inputs)
        let kernel = try Kernel(program.graph)
        let original = KernelRuntime.threadCount
        defer { KernelRuntime.threadCount = original }
        for count in [1, 2, 3] {
            KernelRuntime.threadCount = count
            let outputs = try kernel(inputs)
            for port in program.graph.outputs {
                let got = outputs[port.name]!.scalars, want = reference[port.name]!.scalars
                #expect(sameBits(got, want), "\(count) threads, \(port.name): \(firstDifference(got, want))")
            }
        }
    }

    @Test func concurrentCallersWhileThePoolIsBusy() throws {
        let (graph, inputs) = try Self.productGraph()
        let reference = try Interpreter.evaluate(graph, inputs: inputs)
        let kernel = try Kernel(graph)
        let original = KernelRuntime.threadCount
        KernelRuntime.threadCount = 2
        defer { KernelRuntime.threadCount = original }
        let callers = 6, rounds = 4
        let results = Mutex<[[String: TensorData]]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: callers) { _ in
            for _ in 0..<rounds {
                do {
                    let outputs = try kernel(inputs)
                    results.withLock { $0.append(outputs) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        let all = results.withLock { $0 }
        #expect(all.count == callers * rounds)
        for outputs in all {
            for port in graph.outputs {
                #expect(sameBits(outputs[port.name]!.scalars, reference[port.name]!.scalars), "\(port.name)")
            }
        }
    }

    @Test func belowOneRestoresTheDefault() {
        let original = KernelRuntime.threadCount
        defer { KernelRuntime.threadCount = original }
        KernelRuntime.threadCount = 5
        #expect(KernelRuntime.threadCount == 5)
        KernelRuntime.threadCount = 0
        let expected = ProcessInfo.processInfo.environment["NABLA_THREADS"].flatMap(Int.init) ?? min(64, ProcessInfo.processInfo.activeProcessorCount)
        #expect(KernelRuntime.threadCount == expected)
        KernelRuntime.threadCount = 1000
        #expect(KernelRuntime.threadCount == 64)
    }

    @Test func theCommandLineTakesAndChecksTheCount() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = root.appendingPathComponent("benchmarks/problems/p4-mlp.nabla").path
        let bench = try runNabla(["bench", file, "--backend", "tcc", "--seconds", "0.01", "--threads", "2"])
        #expect(bench.status == 0, "\(bench.err)")
        #expect(bench.out.contains("threads 2"), "\(bench.out)")
        let fromEnvironment = try runNabla(["bench", file, "--backend", "tcc", "--seconds", "0.01", "--format", "json"], settingEnvironment: ["NABLA_THREADS": "3"])
        #expect(fromEnvironment.out.contains("\"threads\": 3"), "\(fromEnvironment.out)")
        let one = try runNabla(["run", file, "--seed", "2", "--format", "json", "--threads", "1"])
        let two = try runNabla(["run", file, "--seed", "2", "--format", "json", "--threads", "2"])
        #expect(one.status == 0 && two.status == 0 && one.out == two.out)
        let badOption = try runNabla(["run", file, "--seed", "2", "--threads", "0"])
        #expect(badOption.status == 2 && badOption.err.contains("--threads must be from 1 to 64"), "\(badOption.err)")
        let badVariable = try runNabla(["run", file, "--seed", "2"], settingEnvironment: ["NABLA_THREADS": "two"])
        #expect(badVariable.status == 2 && badVariable.err.contains("NABLA_THREADS must be a whole number from 1 to 64, got 'two'"), "\(badVariable.err)")
    }
}
