import Dispatch
import Foundation
import Testing
@testable import Nabla

@Suite("Thread safety")
struct ConcurrencyTests {
    /// Each thread builds and compiles its own graph (a different constant in each, so a mix-up
    /// between threads would show in the result) while the others compile too.
    @Test func compileFromManyThreadsAtOnce() throws {
        let threads = 16
        let failures = Lock<[String]>([])
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            do {
                for round in 0..<5 {
                    let g = GraphBuilder()
                    let x = try g.input("x", shape: [8])
                    let c = Double(t * 100 + round)
                    let L = sum(sin(x) * c)
                    let kernel = try Kernel(g.graph(outputs: ["L": L, "dL/dx": gradient(of: L, wrt: x)]))
                    let xs = (0..<8).map { Double($0) * 0.1 }
                    let out = try kernel([xs])
                    let expectedL = xs.reduce(0) { $0 + sin($1) * c }
                    let expectedG = xs.map { cos($0) * c }
                    if Swift.abs(out[0][0] - expectedL) > 1e-9 * max(1, Swift.abs(expectedL)) || zip(out[1], expectedG).contains(where: { Swift.abs($0 - $1) > 1e-9 * max(1, Swift.abs($1)) }) {
                        failures.withLock { $0.append("thread \(t) round \(round): \(out)") }
                    }
                }
            } catch {
                failures.withLock { $0.append("thread \(t): \(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
    }

    /// Split kernels (TinyCC compiles their units on a thread of its own while the caller
    /// lowers the next part) built from several threads at once: each agrees with the
    /// interpreter bit for bit.
    @Test func compileSplitKernelsFromSeveralThreads() throws {
        let graphs = try (0..<4).map { try recurrenceGraph(steps: 900 + 50 * $0) }
        #expect(try graphs.allSatisfy { try Compilation($0).isSplit })
        let inputs = ["y0": TensorData(0.4), "a": TensorData(0.8)]
        let references = try graphs.map { try Interpreter.evaluate($0, inputs: inputs) }
        let failures = Lock<[String]>([])
        DispatchQueue.concurrentPerform(iterations: graphs.count) { t in
            do {
                let out = try Kernel(graphs[t])(inputs)
                for (name, value) in references[t] where !sameBits(out[name]!.scalars, value.scalars) {
                    failures.withLock { $0.append("graph \(t) \(name): \(out[name]!.scalars) vs \(value.scalars)") }
                }
            } catch {
                failures.withLock { $0.append("graph \(t): \(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
    }

    /// One kernel called from many threads at once, each with its own inputs, through the
    /// checked path (shared workspace pool) and the unchecked path (own workspace).
    @Test func callOneKernelFromManyThreadsAtOnce() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [16, 16]), x = try g.input("x", shape: [16])
        let L = try 0.5 * sum(square(A.matmul(sin(x)) - 1))
        let graph = try g.graph(outputs: ["L": L, "dL/dx": gradient(of: L, wrt: x)])
        let kernel = try Kernel(graph)
        #expect(kernel.workspaceBytes > 0)
        let failures = Lock<Int>(0)
        let checks = Lock<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            var rng = SeededRandom(seed: UInt64(t))
            let a = TensorData.random([16, 16], using: &rng), xv = TensorData.random([16], using: &rng)
            let expected = try! Interpreter.evaluate(graph, inputs: ["A": a, "x": xv])
            let workspace = kernel.makeWorkspace()
            var outL = [0.0], outG = [Double](repeating: 0, count: 16)
            for i in 0..<300 {
                if i % 2 == 0 {
                    let out = try! kernel(["A": a, "x": xv])
                    if out != expected { failures.withLock { $0 += 1 } }
                } else {
                    a.scalars.withUnsafeBufferPointer { ap in
                        xv.scalars.withUnsafeBufferPointer { xp in
                            outL.withUnsafeMutableBufferPointer { lp in
                                outG.withUnsafeMutableBufferPointer { gp in
                                    let ins: [UnsafePointer<Double>?] = [ap.baseAddress, xp.baseAddress]
                                    let outs: [UnsafeMutablePointer<Double>?] = [lp.baseAddress, gp.baseAddress]
                                    kernel.callUnchecked(inputs: ins, outputs: outs, workspace: workspace.pointer)
                                }
                            }
                        }
                    }
                    if outL != expected["L"]!.scalars || outG != expected["dL/dx"]!.scalars { failures.withLock { $0 += 1 } }
                }
                checks.withLock { $0 += 1 }
            }
        }
        #expect(checks.withLock { $0 } == 8 * 300)
        #expect(failures.withLock { $0 } == 0)
    }
}
