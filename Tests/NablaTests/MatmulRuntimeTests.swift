import Dispatch
import Foundation
import Testing
@testable import Nabla

// The runtime's matrix product (nabla_matmul in runtime/nabla_runtime.c) against the
// interpreter, bit for bit: C[i][j] is 0.0 plus A[i][p] * B[p][j] for p = 0, 1, ..., k - 1 in
// order, each product and each sum rounded, whatever blocking the runtime does. The shapes reach
// every path of the C: 1 x 1 x 1, the register tiles (16 and 8 rows, 8 columns in a vector, the
// wider tiles of 1 to 7 leftover rows) and their edges (m, n not multiples of the tiles, masked
// last vectors), the blocks of 128 values of p (k on both sides of multiples of 128, large k),
// n == 1 (8 x 8 blocks transposed in registers, k below and above 16 and not a multiple of 8),
// m == 1, k == 1, and the products of benchmark P4 and P5. Inputs span many binades (so a
// changed order of the sums would change bits), or hold NaN, infinities, signed zeros, or
// values near overflow. Any NaN matches any NaN (its payload depends on operand order in the
// hardware).

/// Kinds of operands.
enum MatmulData: String, CaseIterable, Sendable {
    /// Uniform in [-1, 1] times 2^e, e uniform in -20...20: sums sensitive to their order.
    case binades
    /// As binades, with a few NaN, infinities and signed zeros in both operands.
    case special
    /// A of -0.0 and +0.0, B of mixed signs: every product a signed zero; the sums start from
    /// +0.0, so every element of C is +0.0.
    case signedZeros
    /// A in [-1, 1], B near the largest double: partial sums overflow or not depending on order.
    case nearOverflow

    func operands(_ aShape: Shape, _ bShape: Shape, using rng: inout SeededRandom) -> (TensorData, TensorData) {
        func binades(_ shape: Shape) -> TensorData {
            var t = TensorData.random(shape, in: -1...1, using: &rng)
            for i in t.scalars.indices { t.scalars[i] *= Foundation.pow(2, Double(Int.random(in: -20...20, using: &rng))) }
            return t
        }
        switch self {
        case .binades:
            return (binades(aShape), binades(bShape))
        case .special:
            var a = binades(aShape), b = binades(bShape)
            let values: [Double] = [.nan, .infinity, -.infinity, -0.0, 0.0]
            for (n, i) in stride(from: 3, to: a.scalars.count, by: max(97, a.scalars.count / 8)).enumerated() { a.scalars[i] = values[n % values.count] }
            for (n, i) in stride(from: 5, to: b.scalars.count, by: max(89, b.scalars.count / 8)).enumerated() { b.scalars[i] = values[(n + 2) % values.count] }
            return (a, b)
        case .signedZeros:
            var a = TensorData.random(aShape, in: -1...1, using: &rng), b = binades(bShape)
            for i in a.scalars.indices { a.scalars[i] = a.scalars[i] < 0.7 ? -0.0 : 0.0 }
            return (a, b)
        case .nearOverflow:
            var b = TensorData.random(bShape, in: -1...1, using: &rng)
            for i in b.scalars.indices { b.scalars[i] *= Double.greatestFiniteMagnitude }
            return (TensorData.random(aShape, in: -1...1, using: &rng), b)
        }
    }
}

/// The runtime's nabla_matmul, as registered for JIT kernels.
private let runtimeMatmul: @convention(c) (Int, Int, Int, UnsafePointer<Double>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?) -> Void = {
    let address = RuntimeSymbols.all.first { $0.0 == "nabla_matmul" }!.1
    return unsafeBitCast(address, to: (@convention(c) (Int, Int, Int, UnsafePointer<Double>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?) -> Void).self)
}()

/// nabla_matmul on row-major A (m x k) and B (k x n), into a C first filled with garbage.
private func callRuntime(_ m: Int, _ k: Int, _ n: Int, _ a: [Double], _ b: [Double]) -> [Double] {
    var c = [Double](repeating: 12345.678, count: m * n)
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            c.withUnsafeMutableBufferPointer { cp in runtimeMatmul(m, k, n, ap.baseAddress, bp.baseAddress, cp.baseAddress) }
        }
    }
    return c
}

@Suite("Matrix product runtime against the interpreter, bit for bit")
struct MatmulRuntimeTests {
    /// (m, k, n) of every kind of product the runtime blocks differently.
    static let shapes: [(Int, Int, Int)] = [
        // Tiny, k == 1, m == 1.
        (1, 1, 1), (1, 1, 2), (2, 1, 1), (1, 3, 1), (3, 5, 7), (5, 1, 9), (64, 1, 128), (17, 1, 3),
        (1, 1000, 100), (1, 300, 63), (1, 20, 64), (1, 130, 129), (1, 2000, 10),
        // Rows around the tiles of 16 and 8 and every leftover count, columns around vectors of 8
        // and the wider tiles of the leftover rows (up to 64 columns).
        (16, 40, 8), (16, 40, 16), (15, 33, 17), (17, 29, 9), (31, 20, 7), (33, 21, 15), (8, 19, 65),
        (7, 23, 57), (6, 18, 41), (5, 12, 23), (4, 30, 31), (3, 45, 33), (2, 9, 62), (9, 17, 63),
        (24, 7, 5), (47, 11, 129), (12, 3, 100),
        // k around the blocks of 128 and large.
        (16, 127, 24), (18, 128, 19), (20, 129, 16), (33, 300, 40), (9, 2000, 11),
        // Matrix times vector: k below 16 (scalar), 16 and above (transposed blocks) with a last
        // partial block of p, rows in blocks of 8 and leftover.
        (8, 8, 1), (9, 15, 1), (8, 16, 1), (24, 37, 1), (17, 100, 1), (1000, 100, 1), (40, 10, 1), (7, 50, 1),
        // Benchmark P4 (784-128-10 perceptron, batch 64) and P5 (n x 2 times 2 x n).
        (64, 784, 128), (784, 64, 128), (64, 128, 10), (64, 10, 128), (128, 64, 10), (100, 2, 100),
    ]

    /// Calls the runtime directly (also shapes too small for kernels to call it), for every kind
    /// of operands.
    @Test func runtimeMatchesTheInterpreter() throws {
        var rng = SeededRandom(seed: 2024)
        for (m, k, n) in Self.shapes {
            for data in MatmulData.allCases {
                let aShape: Shape = [m, k], bShape: Shape = [k, n]
                let (a, b) = data.operands(aShape, bShape, using: &rng)
                let reference = MatMul().evaluate([a, b], shape: [m, n]).scalars
                let c = callRuntime(m, k, n, a.scalars, b.scalars)
                let same = sameBits(c, reference)
                #expect(same, "\(m) x \(k) x \(n), \(data.rawValue): \(firstDifference(c, reference))")
                if data == .signedZeros {
                    let positiveZeros = c.allSatisfy { $0.bitPattern == (0.0).bitPattern }
                    #expect(positiveZeros, "\(m) x \(k) x \(n): sums start from +0.0")
                }
            }
        }
    }

    /// With k == 0 the product is all zeros; with m or n zero nothing is written.
    @Test func emptyProducts() {
        #expect(callRuntime(3, 0, 5, [], []) == [Double](repeating: 0, count: 15))
        #expect(callRuntime(4, 0, 1, [], []) == [Double](repeating: 0, count: 4))
        #expect(callRuntime(0, 3, 4, [], [Double](repeating: 1, count: 12)) == [])
        #expect(callRuntime(2, 3, 0, [Double](repeating: 1, count: 6), []) == [])
    }

    /// One graph with a product of every shape (vectors for m == 1 and n == 1 as well as
    /// matrices), compiled by TinyCC and by cc: kernels call the runtime (above a size) and
    /// must match the interpreter bit for bit.
    @Test(arguments: MatmulData.allCases)
    func kernelsMatchTheInterpreter(data: MatmulData) throws {
        let g = GraphBuilder()
        var outputs: [(String, Tensor)] = []
        var shapes: [String: Shape] = [:]
        for (index, (m, k, n)) in Self.shapes.enumerated() {
            // m == 1 and n == 1 products both ways: as [k] @ [k, n] and [1, k] @ [k, n], etc.
            let aShape: Shape = m == 1 && index % 2 == 0 ? [k] : [m, k]
            let bShape: Shape = n == 1 && index % 2 == 0 ? [k] : [k, n]
            let a = try g.input("A\(index)", shape: aShape), b = try g.input("B\(index)", shape: bShape)
            shapes["A\(index)"] = aShape
            shapes["B\(index)"] = bShape
            outputs.append(("C\(index) \(m)x\(k)x\(n)", try a.matmul(b)))
        }
        let graph = try g.graph(outputs: outputs)
        var rng = SeededRandom(seed: 7 + UInt64(MatmulData.allCases.firstIndex(of: data)!))
        var inputs: [String: TensorData] = [:]
        for index in Self.shapes.indices {
            let (a, b) = data.operands(shapes["A\(index)"]!, shapes["B\(index)"]!, using: &rng)
            inputs["A\(index)"] = a
            inputs["B\(index)"] = b
        }
        let reference = try Interpreter.evaluate(graph, inputs: inputs)
        for (name, kernel) in [("tcc", try Kernel(graph)), ("cc", try Kernel(graph, backend: .cc))] {
            let callsRuntime = kernel.source.code.contains("nabla_matmul")
            #expect(callsRuntime, "\(name) kernel calls the runtime")
            let out = try kernel(inputs)
            for port in graph.outputs {
                let r = reference[port.name]!.scalars, c = out[port.name]!.scalars
                let same = sameBits(c, r)
                #expect(same, "\(data.rawValue), \(name), \(port.name): \(firstDifference(c, r))")
            }
        }
    }

    /// The runtime keeps no state between calls: many threads multiplying at once (different
    /// shapes, so different paths) each get their own exact product.
    @Test func productsOnManyThreadsAtOnce() {
        let cases: [(Int, Int, Int)] = [(64, 784, 128), (33, 300, 40), (1000, 100, 1), (1, 1000, 100), (100, 2, 100), (7, 23, 57)]
        let failures = Lock<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 12) { t in
            let (m, k, n) = cases[t % cases.count]
            var rng = SeededRandom(seed: UInt64(300 + t))
            let (a, b) = MatmulData.binades.operands([m, k], [k, n], using: &rng)
            let reference = MatMul().evaluate([a, b], shape: [m, n]).scalars
            for round in 0..<5 where !sameBits(callRuntime(m, k, n, a.scalars, b.scalars), reference) {
                failures.withLock { $0.append("thread \(t), round \(round), \(m) x \(k) x \(n)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
    }
}
