import Foundation
import Testing
@testable import Nabla

/// The tests' seeded generator: Nabla's own, so "random" data is the same in every run.
typealias SeededRandom = SplitMix64

/// Largest elementwise |a - b| / max(|a|, |b|, floor), the relative error with a floor for
/// values near zero.
func maxRelativeError(_ a: [Double], _ b: [Double], floor: Double = 1e-300) -> Double {
    precondition(a.count == b.count, "sizes \(a.count) and \(b.count)")
    var worst = 0.0
    for (x, y) in zip(a, b) {
        if x == y || (x.isNaN && y.isNaN) { continue }
        // NaN against a number, or an infinity against anything else, is a total mismatch.
        if x.isNaN || y.isNaN || x.isInfinite || y.isInfinite { return .infinity }
        let scale = max(abs(x), abs(y), floor)
        worst = max(worst, abs(x - y) / scale)
    }
    return worst
}

/// Expects every element of `actual` within `tolerance` of `expected`, relative to the larger
/// magnitude or to `floor` for small values.
func expectClose(
    _ actual: [Double], _ expected: [Double], tolerance: Double, floor: Double = 1,
    _ what: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, "\(what()): sizes differ", sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    let error = maxRelativeError(actual, expected, floor: floor)
    #expect(error <= tolerance, "\(what()): relative error \(error) > \(tolerance)\nactual   \(actual.prefix(12))\nexpected \(expected.prefix(12))", sourceLocation: sourceLocation)
}

func expectClose(
    _ actual: Double, _ expected: Double, tolerance: Double, floor: Double = 1,
    _ what: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    expectClose([actual], [expected], tolerance: tolerance, floor: floor, what(), sourceLocation: sourceLocation)
}

/// Central finite-difference gradient of the scalar output `output` of `graph` with respect to
/// input `variable`, evaluated with the interpreter.
func finiteDifferenceGradient(
    _ graph: Graph, output: String, wrt variable: String, at inputs: [String: TensorData], step: Double = 1e-6
) throws -> [Double] {
    var point = inputs
    let base = inputs[variable]!
    var gradient = [Double](repeating: 0, count: base.scalars.count)
    for i in 0..<base.scalars.count {
        let h = step * max(1, abs(base.scalars[i]))
        var plus = base, minus = base
        plus.scalars[i] += h
        minus.scalars[i] -= h
        point[variable] = plus
        let fPlus = try Interpreter.evaluate(graph, inputs: point)[output]!.scalar
        point[variable] = minus
        let fMinus = try Interpreter.evaluate(graph, inputs: point)[output]!.scalar
        gradient[i] = (fPlus - fMinus) / (2 * h)
    }
    return gradient
}

/// Compiles `graph` with TinyCC and expects every output to match the interpreter to 1e-12
/// relative (the kernel and the interpreter sum in the same order, so they usually agree to
/// the last bit). Returns the interpreter's outputs.
@discardableResult
func expectKernelMatchesInterpreter(
    _ graph: Graph, _ inputs: [String: TensorData], tolerance: Double = 1e-12,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> [String: TensorData] {
    let reference = try Interpreter.evaluate(graph, inputs: inputs)
    let kernel = try Kernel(graph)
    let compiled = try kernel(inputs)
    for port in graph.outputs {
        let r = reference[port.name]!, c = compiled[port.name]!
        #expect(r.shape == c.shape, "output \(port.name)", sourceLocation: sourceLocation)
        expectClose(c.scalars, r.scalars, tolerance: tolerance, floor: 1e-300, "kernel vs interpreter, output \(port.name)", sourceLocation: sourceLocation)
    }
    // The standalone form (loops inlined, no runtime calls) must agree too.
    let standalone = try Kernel(
        source: emitC(graph, options: .standalone), inputNames: graph.inputs.map(\.name), outputNames: graph.outputs.map(\.name))
    let inlined = try standalone(inputs)
    for port in graph.outputs {
        expectClose(inlined[port.name]!.scalars, reference[port.name]!.scalars, tolerance: tolerance, floor: 1e-300, "standalone kernel vs interpreter, output \(port.name)", sourceLocation: sourceLocation)
    }
    return reference
}

/// Solves M s = r by Gaussian elimination with partial pivoting (plain Swift, for checks).
func solveLinear(_ M: [[Double]], _ r: [Double]) -> [Double] {
    var a = M, b = r
    let n = b.count
    for col in 0..<n {
        let pivot = (col..<n).max { Swift.abs(a[$0][col]) < Swift.abs(a[$1][col]) }!
        a.swapAt(col, pivot)
        b.swapAt(col, pivot)
        for row in (col + 1)..<n {
            let factor = a[row][col] / a[col][col]
            for k in col..<n { a[row][k] -= factor * a[col][k] }
            b[row] -= factor * b[col]
        }
    }
    var s = [Double](repeating: 0, count: n)
    for row in stride(from: n - 1, through: 0, by: -1) {
        var acc = b[row]
        for k in (row + 1)..<n { acc -= a[row][k] * s[k] }
        s[row] = acc / a[row][row]
    }
    return s
}

/// Builds `y = build(inputs)` and its forward-mode tangent along inputs "t0", "t1", ..., then
/// expects the kernel to match the interpreter and the tangent to match the central finite
/// difference of y along the tangents. `point` holds "x0", "x1", ... and "t0", "t1", ...
func expectTangentMatchesFiniteDifferences(
    shapes: [Shape], point: [String: TensorData], what: String, _ build: ([Tensor]) throws -> Tensor,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let g = GraphBuilder()
    let inputs = try shapes.enumerated().map { try g.input("x\($0.offset)", shape: $0.element) }
    let directions = try shapes.enumerated().map { try g.input("t\($0.offset)", shape: $0.element) }
    let y = try build(inputs)
    let ty = try jvp(of: y, wrt: inputs, tangents: directions)
    #expect(ty.shape == y.shape, sourceLocation: sourceLocation)
    let graph = try g.graph(outputs: ["y": y, "ty": ty])
    let values = try expectKernelMatchesInterpreter(graph, point, sourceLocation: sourceLocation)
    let h = 1e-6
    var plus = point, minus = point
    for i in shapes.indices {
        let x = point["x\(i)"]!, t = point["t\(i)"]!
        plus["x\(i)"] = try TensorData(shape: x.shape, scalars: zip(x.scalars, t.scalars).map { $0 + h * $1 })
        minus["x\(i)"] = try TensorData(shape: x.shape, scalars: zip(x.scalars, t.scalars).map { $0 - h * $1 })
    }
    let yp = try Interpreter.evaluate(graph, inputs: plus)["y"]!.scalars
    let ym = try Interpreter.evaluate(graph, inputs: minus)["y"]!.scalars
    let numeric = zip(yp, ym).map { ($0 - $1) / (2 * h) }
    expectClose(values["ty"]!.scalars, numeric, tolerance: 1e-6, "tangent of \(what)", sourceLocation: sourceLocation)
}

/// The same bits, or both NaN (a NaN's sign and payload depend on operand order in the
/// hardware, which compilers choose).
func sameBits(_ a: [Double], _ b: [Double]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
}

/// The first index where `a` and `b` differ (bits, NaN matching NaN), for messages.
func firstDifference(_ a: [Double], _ b: [Double]) -> String {
    guard a.count == b.count else { return "sizes \(a.count) and \(b.count)" }
    for i in a.indices where !(a[i].bitPattern == b[i].bitPattern || (a[i].isNaN && b[i].isNaN)) {
        return "element \(i): \(a[i]) vs \(b[i])"
    }
    return "none"
}


/// Seeded inputs in [-1, 1] for every input of `graph`.
func seededInputs(_ graph: Graph, seed: UInt64) -> [String: TensorData] {
    var rng = SeededRandom(seed: seed)
    var inputs: [String: TensorData] = [:]
    for port in graph.inputs { inputs[port.name] = TensorData.random(graph.nodes[port.node].shape, in: -1...1, using: &rng) }
    return inputs
}

/// Random inputs for every input of `graph`, uniform in [-1, 1] times powers of two in
/// 2^-binades...2^binades: values over many binades, so that adding them in another order
/// would change bits.
func inputsOverManyBinades(_ graph: Graph, seed: UInt64, binades: Int = 20) -> [String: TensorData] {
    var rng = SeededRandom(seed: seed)
    var inputs: [String: TensorData] = [:]
    for port in graph.inputs {
        var t = TensorData.random(graph.nodes[port.node].shape, in: -1...1, using: &rng)
        for i in t.scalars.indices { t.scalars[i] *= Foundation.pow(2, Double(Int.random(in: -binades...binades, using: &rng))) }
        inputs[port.name] = t
    }
    return inputs
}

/// Calls every kernel at every runtime thread count (`KernelRuntime.threadCount`, restored
/// after) and expects each output to have `reference`'s bits.
func expectSameBitsOnEveryThreadCount(
    _ graph: Graph, _ inputs: [String: TensorData], reference: [String: TensorData], kernels: [(String, any CompiledKernel)],
    counts: [Int], label: String = "", sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let original = KernelRuntime.threadCount
    defer { KernelRuntime.threadCount = original }
    for count in counts {
        KernelRuntime.threadCount = count
        #expect(KernelRuntime.threadCount == count, sourceLocation: sourceLocation)
        for (tier, kernel) in kernels {
            let outputs = try kernel(inputs)
            for port in graph.outputs {
                let got = outputs[port.name]!.scalars, want = reference[port.name]!.scalars
                #expect(sameBits(got, want), "\(label)\(tier), \(count) threads, \(port.name): \(firstDifference(got, want))",
                        sourceLocation: sourceLocation)
            }
        }
    }
}
