import Foundation
import Testing
@testable import Nabla

/// One operation under test: operand shapes, the range operands are drawn from, and how to
/// build the operation from operand tensors.
struct OpCase: CustomTestStringConvertible, Sendable {
    let name: String
    let shapes: [Shape]
    let range: ClosedRange<Double>
    let build: @Sendable ([Tensor]) throws -> Tensor
    var testDescription: String { "\(name) \(shapes.map(\.description).joined(separator: " "))" }

    init(_ name: String, _ shapes: [Shape], range: ClosedRange<Double> = -1...1, _ build: @escaping @Sendable ([Tensor]) throws -> Tensor) {
        self.name = name
        self.shapes = shapes
        self.range = range
        self.build = build
    }
}

let unaryShapes: [Shape] = [[], [5], [2, 3]]

let opCases: [OpCase] = {
    var cases: [OpCase] = []
    let unary: [(String, ClosedRange<Double>, @Sendable (Tensor) -> Tensor)] = [
        ("neg", -1...1, { -$0 }),
        ("sqrt", 0.5...2, { sqrt($0) }),
        ("exp", -1...1, { exp($0) }),
        ("log", 0.5...2, { log($0) }),
        ("sin", -2...2, { sin($0) }),
        ("cos", -2...2, { cos($0) }),
        ("tan", -1...1, { tan($0) }),
        ("tanh", -2...2, { tanh($0) }),
        ("sigmoid", -3...3, { sigmoid($0) }),
        ("relu", -1...1, { relu($0) }),
        ("abs", -1...1, { abs($0) }),
        ("softplus", -3...3, { softplus($0) }),
        ("square", -2...2, { square($0) }),
        ("pow 3", -2...2, { $0 ** 3 }),
        ("pow 0.5", 0.5...2, { $0 ** 0.5 }),
        ("pow -1", 0.5...2, { $0 ** -1 }),
        ("pow 2.5", 0.5...2, { $0 ** 2.5 }),
        ("sign", -1...1, { sign($0) }),
        ("not", -1...1, { not($0 .> 0) }),
        ("clip", -2...2, { clip($0, -0.5, 0.5) }),
        ("maximum with constant", -1...1, { maximum($0, 0.1) }),
    ]
    for (name, range, f) in unary {
        for shape in unaryShapes { cases.append(OpCase(name, [shape], range: range) { f($0[0]) }) }
    }
    let broadcastPairs: [[Shape]] = [[[3, 4], [3, 4]], [[3, 4], [4]], [[3, 1], [1, 4]], [[], [2, 3]], [[2, 3, 4], [3, 1]], [[5], []]]
    let binary: [(String, ClosedRange<Double>, @Sendable (Tensor, Tensor) throws -> Tensor)] = [
        ("add", -1...1, { try $0 + $1 }),
        ("sub", -1...1, { try $0 - $1 }),
        ("mul", -1...1, { try $0 * $1 }),
        ("div", 0.5...2, { try $0 / $1 }),
        ("pow", 0.5...2, { try $0 ** $1 }),
        ("maximum", -1...1, { try maximum($0, $1) }),
        ("minimum", -1...1, { try minimum($0, $1) }),
        ("less", -1...1, { try ($0 .< $1) * $0 }),
        ("greater_equal", -1...1, { try ($0 .>= $1) + $1 }),
        ("and", -1...1, { try and($0 .> 0, $1 .< 0) * $1 }),
        ("or", -1...1, { try or($0 .> 0, $1 .!= 0) * $0 }),
    ]
    for (name, range, f) in binary {
        for shapes in broadcastPairs { cases.append(OpCase(name, shapes, range: range) { try f($0[0], $0[1]) }) }
    }
    cases += [
        OpCase("scalar op tensor", [[3]]) { try 2.5 * $0[0] - 1 + 3 / ($0[0] + 4) },
        OpCase("matmul mm", [[3, 4], [4, 5]]) { try $0[0].matmul($0[1]) },
        OpCase("matmul mv", [[3, 4], [4]]) { try $0[0].matmul($0[1]) },
        OpCase("matmul vm", [[4], [4, 5]]) { try $0[0].matmul($0[1]) },
        OpCase("matmul vv", [[4], [4]]) { try $0[0].matmul($0[1]) },
        OpCase("matmul mm runtime", [[20, 30], [30, 10]]) { try $0[0].matmul($0[1]) },
        OpCase("matmul mv runtime", [[40, 30], [30]]) { try $0[0].matmul($0[1]) },
        OpCase("transpose 2d", [[3, 5]]) { $0[0].transposed },
        OpCase("transpose 3d", [[2, 3, 4]]) { try $0[0].transposed([2, 0, 1]) },
        OpCase("sum all", [[2, 3, 4]]) { sum($0[0]) },
        OpCase("sum axis 0", [[2, 3, 4]]) { try sum($0[0], axis: 0) },
        OpCase("sum axis -1", [[2, 3, 4]]) { try sum($0[0], axis: -1) },
        OpCase("sum axes 0 2", [[2, 3, 4]]) { try sum($0[0], axes: [0, 2]) },
        OpCase("sum of scalar", [[]]) { sum($0[0]) },
        OpCase("mean all", [[3, 4]]) { mean($0[0]) },
        OpCase("mean axis 1", [[3, 4]]) { try mean($0[0], axis: 1) },
        OpCase("reshape", [[2, 6]]) { try $0[0].reshaped([3, 4]) },
        OpCase("broadcast", [[3, 1]]) { try $0[0].broadcast(to: [2, 3, 4]) },
        OpCase("slice x[1:]", [[6]]) { try $0[0][.from(1)] },
        OpCase("slice x[:-1]", [[6]]) { try $0[0][.upTo(-1)] },
        OpCase("slice x[::2]", [[7]]) { try $0[0][.range(start: nil, end: nil, step: 2)] },
        OpCase("column A[:, 1]", [[3, 4]]) { try $0[0][.all, 1] },
        OpCase("row A[2]", [[3, 4]]) { try $0[0][2] },
        OpCase("block A[1:3, :-1]", [[4, 5]]) { try $0[0][.between(1, 3), .upTo(-1)] },
        OpCase("outer", [[3], [4]]) { try outer($0[0], $0[1]) },
        OpCase("concat axis 1", [[2, 3], [2, 2]]) { try concat($0, axis: 1) },
        OpCase("concat axis 0", [[3], [2], [1]]) { try concat($0, axis: 0) },
        OpCase("concat axis -1 broadcast", [[2, 1], [2, 3]]) { try concat([$0[0] * 2, sin($0[1])], axis: -1) },
        OpCase("where", [[3, 4], [4], [3, 1]]) { try Nabla.where($0[0] .> 0, $0[1], $0[2]) },
        OpCase("where of branches", [[5]], range: 0.5...2) { x in try Nabla.where(x[0] .> 1, log(x[0]), sqrt(x[0]) * x[0]) },
        OpCase("where scalar condition", [[], [2, 3]]) { try Nabla.where($0[0] .<= 0, sin($0[1]), $0[1] * $0[0]) },
        OpCase("max all", [[2, 3, 4]]) { max($0[0]) },
        OpCase("max axis 1", [[2, 3, 4]]) { try max($0[0], axis: 1) },
        OpCase("min axes 0 2", [[2, 3, 4]]) { try min($0[0], axes: [0, 2]) },
        OpCase("min axis -1", [[3, 5]]) { try min($0[0], axis: -1) },
        OpCase("max of scalar", [[]]) { max($0[0]) },
        OpCase("stack scalars", [[], []]) { try stack([$0[1], -$0[0] * $0[1], sin($0[0])]) },
        OpCase("stack vectors", [[3], [3]]) { try stack([$0[0], $0[1] * $0[0]]) },
        OpCase("fan-out", [[4]]) { x in try x[0] * sin(x[0]) + exp(x[0]) * x[0] },
        OpCase("rosenbrock", [[6]]) { x in
            let x = x[0]
            return try sum(100 * square(square(x[.upTo(-1)]) - x[.from(1)]) + square(x[.upTo(-1)] - 1))
        },
    ]
    return cases
}()

@Suite("Every operation: gradient against finite differences, kernel against interpreter")
struct OperationTests {
    /// Builds L = sum(w * op(inputs)) with a random weight w (so the cotangent is not all ones),
    /// and returns the graph with outputs "y", "L" and "dL/d<input>".
    static func graph(for c: OpCase, rng: inout SeededRandom) throws -> Graph {
        let g = GraphBuilder()
        let inputs = try c.shapes.enumerated().map { try g.input("x\($0.offset)", shape: $0.element) }
        let y = try c.build(inputs)
        let w = g.constant(TensorData.random(y.shape, in: 0.5...1.5, using: &rng))
        let L = try sum(w * y)
        let grads = try gradient(of: L, wrt: inputs)
        for (x, dx) in zip(inputs, grads) { #expect(dx.shape == x.shape, "gradient shape for \(c.testDescription)") }
        return try g.graph(outputs: [("y", y), ("L", L)] + grads.enumerated().map { ("dL/dx\($0.offset)", $0.element) })
    }

    @Test(arguments: opCases)
    func gradientMatchesFiniteDifferences(_ c: OpCase) throws {
        var rng = SeededRandom(seed: 42)
        let graph = try Self.graph(for: c, rng: &rng)
        var inputs: [String: TensorData] = [:]
        for (i, shape) in c.shapes.enumerated() { inputs["x\(i)"] = TensorData.random(shape, in: c.range, using: &rng) }
        let values = try Interpreter.evaluate(graph, inputs: inputs)
        for i in c.shapes.indices {
            let numeric = try finiteDifferenceGradient(graph, output: "L", wrt: "x\(i)", at: inputs)
            expectClose(values["dL/dx\(i)"]!.scalars, numeric, tolerance: 1e-6, "d/dx\(i) of \(c.testDescription)")
        }
    }

    @Test(arguments: opCases)
    func kernelMatchesInterpreter(_ c: OpCase) throws {
        var rng = SeededRandom(seed: 7)
        let graph = try Self.graph(for: c, rng: &rng)
        var inputs: [String: TensorData] = [:]
        for (i, shape) in c.shapes.enumerated() { inputs["x\(i)"] = TensorData.random(shape, in: c.range, using: &rng) }
        try expectKernelMatchesInterpreter(graph, inputs)
    }

    /// Forward mode: the tangent of the result along random operand tangents equals the
    /// central finite difference of the result along them.
    @Test(arguments: opCases)
    func tangentMatchesFiniteDifferences(_ c: OpCase) throws {
        var rng = SeededRandom(seed: 99)
        var point: [String: TensorData] = [:]
        for (i, shape) in c.shapes.enumerated() {
            point["x\(i)"] = TensorData.random(shape, in: c.range, using: &rng)
            point["t\(i)"] = TensorData.random(shape, in: -1...1, using: &rng)
        }
        try expectTangentMatchesFiniteDifferences(shapes: c.shapes, point: point, what: c.testDescription, c.build)
    }

    /// Random shapes and broadcasting patterns beyond the fixed table, for the binary ops.
    @Test(arguments: 0..<12)
    func randomBroadcastShapes(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(100 + seed))
        let rank = Int.random(in: 0...3, using: &rng)
        let full = Shape((0..<rank).map { _ in Int.random(in: 1...4, using: &rng) })
        func variant() -> Shape {
            let drop = Int.random(in: 0...rank, using: &rng)
            return Shape(full.dims.dropFirst(drop).map { Bool.random(using: &rng) ? 1 : $0 })
        }
        let a = variant(), b = variant()
        let c = OpCase("random", [a, b], range: 0.5...2) { x in try (x[0] * x[1] + x[0] / x[1]) ** (x[1] - x[0]) + x[0] }
        let graph = try Self.graph(for: c, rng: &rng)
        let inputs = ["x0": TensorData.random(a, in: c.range, using: &rng), "x1": TensorData.random(b, in: c.range, using: &rng)]
        let values = try expectKernelMatchesInterpreter(graph, inputs)
        for i in 0..<2 {
            let numeric = try finiteDifferenceGradient(graph, output: "L", wrt: "x\(i)", at: inputs)
            expectClose(values["dL/dx\(i)"]!.scalars, numeric, tolerance: 1e-6, "shapes \(a) \(b), d/dx\(i)")
        }
    }
}

@Suite("Reverse mode")
struct ReverseModeTests {
    @Test func unreachableInputsGetZeroGradients() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3])
        let unused = try g.input("unused", shape: [2, 2])
        let L = sum(sin(x))
        let grads = try gradient(of: L, wrt: [x, unused])
        let graph = try g.graph(outputs: ["dx": grads[0], "du": grads[1]])
        let out = try Kernel(graph)(["x": TensorData(shape: [3], scalars: [0.1, 0.2, 0.3]), "unused": TensorData(repeating: 5, shape: [2, 2])])
        #expect(out["du"]!.shape == [2, 2])
        #expect(out["du"]!.scalars == [0, 0, 0, 0])
        #expect(out["dx"]!.scalars == [0.1, 0.2, 0.3].map(cos))
    }

    @Test func fanOutAccumulates() throws {
        // L = x * x * x used through three paths: dL/dx = 3 x^2.
        let g = GraphBuilder()
        let x = try g.input("x")
        let L = try x * x * x
        let graph = try g.graph(outputs: ["dL/dx": gradient(of: L, wrt: x)])
        let out = try Kernel(graph)(["x": TensorData(1.7)])
        expectClose(out["dL/dx"]!.scalar, 3 * 1.7 * 1.7, tolerance: 1e-15)
    }

    @Test func vectorJacobianProductWithCotangent() throws {
        // y = A x (non-scalar output): v^T dy/dx = A^T v, v^T dy/dA = v x^T.
        var rng = SeededRandom(seed: 3)
        let g = GraphBuilder()
        let A = try g.input("A", shape: [3, 2]), x = try g.input("x", shape: [2]), v = try g.input("v", shape: [3])
        let y = try A.matmul(x)
        let grads = try vjp(of: y, wrt: [x, A], cotangent: v)
        let graph = try g.graph(outputs: ["gx": grads[0], "gA": grads[1]])
        let a = TensorData.random([3, 2], using: &rng), xv = TensorData.random([2], using: &rng), vv = TensorData.random([3], using: &rng)
        let out = try expectKernelMatchesInterpreter(graph, ["A": a, "x": xv, "v": vv])
        let gx = (0..<2).map { j in (0..<3).reduce(0.0) { $0 + a[$1, j] * vv.scalars[$1] } }
        let gA = (0..<3).flatMap { i in (0..<2).map { j in vv.scalars[i] * xv.scalars[j] } }
        expectClose(out["gx"]!.scalars, gx, tolerance: 1e-14)
        expectClose(out["gA"]!.scalars, gA, tolerance: 1e-14)
    }

    @Test func gradientOfNonScalarThrows() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3])
        #expect(throws: NablaError.self) { try gradient(of: sin(x), wrt: x) }
    }

    @Test func derivativeGraphDifferentiatesAgain() throws {
        // f = x^4: f'' = 12 x^2, f''' = 24 x, through the builder and through graph transforms.
        let g = GraphBuilder()
        let x = try g.input("x")
        let f = x ** 4
        let d1 = try gradient(of: f, wrt: x)
        let d2 = try gradient(of: d1, wrt: x)
        let d3 = try gradient(of: d2, wrt: x)
        let out = try Kernel(g.graph(outputs: ["d2": d2, "d3": d3]))(["x": TensorData(1.3)])
        expectClose(out["d2"]!.scalar, 12 * 1.3 * 1.3, tolerance: 1e-14)
        expectClose(out["d3"]!.scalar, 24 * 1.3, tolerance: 1e-14)

        let base = try g.graph(outputs: ["f": f])
        let once = try base.appendingGradients(of: "f", wrt: ["x"])
        let twice = try once.appendingGradients(of: "df/dx", wrt: ["x"])
        #expect(twice.outputs.map(\.name) == ["f", "df/dx", "ddf/dx/dx"])
        let values = try Kernel(twice)(["x": TensorData(1.3)])
        expectClose(values["ddf/dx/dx"]!.scalar, 12 * 1.3 * 1.3, tolerance: 1e-14)
    }

    @Test func forwardValuesAreShared() throws {
        // The gradient of exp reuses exp's own node rather than computing exp again.
        let g = GraphBuilder()
        let x = try g.input("x", shape: [4])
        let L = sum(exp(x))
        let graph = try g.graph(outputs: ["L": L, "dL/dx": gradient(of: L, wrt: x)])
        #expect(graph.nodes.filter { $0.operation is Exp }.count == 1)
    }
}

@Suite("Errors are thrown, never trapped")
struct ErrorTests {
    @Test func broadcastMismatchNamesBothShapesAndTheOp() throws {
        let g = GraphBuilder()
        let a = try g.input("a", shape: [3]), b = try g.input("b", shape: [4])
        do {
            _ = try a + b
            Issue.record("expected a shape error")
        } catch let error as NablaError {
            #expect(error == .shapeMismatch(op: "add", shapes: [[3], [4]], reason: "the shapes do not broadcast"))
            #expect(error.description.contains("[3] and [4]"))
        }
    }

    @Test func matmulMismatch() throws {
        let g = GraphBuilder()
        let a = try g.input("a", shape: [2, 3]), b = try g.input("b", shape: [4, 5])
        #expect(throws: NablaError.shapeMismatch(op: "matmul", shapes: [[2, 3], [4, 5]], reason: "inner dimensions differ (3 and 4)")) {
            try a.matmul(b)
        }
        let s = try g.input("s")
        #expect(throws: NablaError.self) { try s.matmul(b) }
    }

    @Test func badAxesAndSlices() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [2, 3])
        #expect(throws: NablaError.self) { try sum(x, axis: 2) }
        #expect(throws: NablaError.self) { try sum(x, axes: [0, 0]) }
        #expect(throws: NablaError.self) { try x[5] }
        #expect(throws: NablaError.self) { try x[0, 0, 0] }
        #expect(throws: NablaError.self) { try x.reshaped([4]) }
        #expect(throws: NablaError.self) { try x.transposed([0, 0]) }
        #expect(throws: NablaError.self) { try x.broadcast(to: [3, 3]) }
    }

    @Test func duplicateAndUnknownNames() throws {
        let g = GraphBuilder()
        let x = try g.input("theta")
        #expect(throws: NablaError.duplicateName(kind: "input", name: "theta")) { try g.input("theta") }
        let graph = try g.graph(outputs: ["y": sin(x)])
        let kernel = try Kernel(graph)
        do {
            _ = try kernel(["thetaa": TensorData(1)])
            Issue.record("expected an unknown-name error")
        } catch let error as NablaError {
            #expect(error.description == "unknown input 'thetaa'; did you mean 'theta'?")
        }
        #expect(throws: NablaError.self) { try g.graph(outputs: [("y", x), ("y", x)]) }
    }

    @Test func mixedBuildersAreRejected() throws {
        let a = try GraphBuilder().input("a"), b = try GraphBuilder().input("b")
        #expect(throws: NablaError.mixedBuilders(op: "add")) { try a + b }
    }

    @Test func wrongBufferSizesAreRejected() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3])
        let kernel = try Kernel(g.graph(outputs: ["y": sin(x)]))
        #expect(throws: NablaError.self) { try kernel([[1, 2]]) }
        #expect(throws: NablaError.self) { try kernel([[1, 2, 3], [4]]) }
        #expect(throws: NablaError.self) { try kernel(["x": TensorData(repeating: 0, shape: [4])]) }
        var input = [1.0, 2, 3]
        var output = [0.0, 0]
        input.withUnsafeBufferPointer { i in
            output.withUnsafeMutableBufferPointer { o in
                _ = #expect(throws: NablaError.sizeMismatch(what: "output 'y' (shape [3])", expected: 3, got: 2)) {
                    try kernel.call(inputs: [i], outputs: [o])
                }
            }
        }
        // An output buffer that overlaps an input is refused rather than silently corrupted.
        input.withUnsafeMutableBufferPointer { buffer in
            _ = #expect(throws: NablaError.self) { try kernel.call(inputs: [UnsafeBufferPointer(buffer)], outputs: [buffer]) }
        }
        _ = output
    }

    @Test func cCompileErrorsCarryTheLine() throws {
        let source = CKernelSource(
            code: "int f(const double *const *i, double *const *o, void *w) {\n    return undefined_name;\n}\n",
            functionName: "f", workspaceBytes: 0, inputShapes: [], outputShapes: [])
        do {
            _ = try Kernel(source: source, inputNames: [], outputNames: [])
            Issue.record("expected a compilation error")
        } catch let NablaError.compilation(message, line, sourceLine) {
            #expect(line == 2)
            #expect(message.contains("undefined_name"))
            #expect(sourceLine == "return undefined_name;")
        }
    }
}

@Suite("C emission")
struct EmissionTests {
    @Test func constantsRoundTripExactly() throws {
        let values: [Double] = [0.1, 1.0 / 3, -2.5e-308, .leastNonzeroMagnitude, 1.7976931348623157e308, -0.0, 123456789.123456789, .pi, 1e16, -1e-5]
        let g = GraphBuilder()
        let c = g.constant(try TensorData(shape: [values.count], scalars: values))
        let x = try g.input("x")
        let graph = try g.graph(outputs: ["y": try c * x, "s": x * values[1]])
        let out = try Kernel(graph)(["x": TensorData(1)])
        #expect(out["y"]!.scalars.map(\.bitPattern) == values.map(\.bitPattern))
        #expect(out["s"]!.scalar.bitPattern == values[1].bitPattern)
    }

    @Test func nonFiniteConstants() throws {
        let g = GraphBuilder()
        let x = try g.input("x")
        let graph = try g.graph(outputs: ["inf": x + .infinity, "ninf": x - .infinity, "nan": x * .nan])
        let out = try Kernel(graph)(["x": TensorData(1)])
        #expect(out["inf"]!.scalar == .infinity)
        #expect(out["ninf"]!.scalar == -.infinity)
        #expect(out["nan"]!.scalar.isNaN)
    }

    @Test func noUserTextInGeneratedC() throws {
        let g = GraphBuilder()
        let x = try g.input("evil */ #include <stdio.h>", shape: [2])
        let graph = try g.graph(outputs: ["out\"; system(\"rm\")": sin(x)])
        let source = try emitC(graph)
        #expect(!source.code.contains("evil"))
        #expect(!source.code.contains("system"))
        #expect(!source.code.contains("#include"))
        #expect(cIdentifier("a.b-c") == "a_2Eb_2Dc")
        #expect(cIdentifier("9lives") == "_39lives")
        #expect(cIdentifier("1F") != cIdentifier("n\u{1F}"))
        #expect(cIdentifier("a_b") != cIdentifier("a_2Eb") && cIdentifier("a_b") == "a__b")
    }

    @Test func emissionIsDeterministic() throws {
        func build() throws -> String {
            let g = GraphBuilder()
            let A = try g.input("A", shape: [3, 3]), x = try g.input("x", shape: [3])
            let L = try sum(square(A.matmul(x) - 1))
            return try emitC(g.graph(outputs: ["L": L, "g": gradient(of: L, wrt: [A, x])[0]])).code
        }
        #expect(try build() == build())
    }

    @Test func workspaceIsReusedAcrossAChain() throws {
        // Twenty matrix products in a chain: each result must be stored (products are not
        // fused), but at most a couple of them are live at once.
        let g = GraphBuilder()
        let A = try g.input("A", shape: [30, 30])
        var y = try g.input("x", shape: [30, 30])
        for _ in 0..<20 { y = try sin(A.matmul(y)) }
        let graph = try g.graph(outputs: ["y": sum(y)])
        let source = try emitC(graph)
        let buffer = 30 * 30 * 8
        #expect(source.workspaceBytes <= 2 * buffer + 128)
        #expect(source.workspaceBytes >= buffer)
        // Elementwise steps alone need no buffer at all: they fuse into one loop.
        let h = GraphBuilder()
        var z = try h.input("x", shape: [1000])
        for i in 0..<20 { z = i % 2 == 0 ? sin(z) : exp(z) * 0.5 }
        #expect(try emitC(h.graph(outputs: ["z": sum(z)])).workspaceBytes == 0)
        var rng = SeededRandom(seed: 12)
        try expectKernelMatchesInterpreter(graph, ["A": .random([30, 30], in: -0.2...0.2, using: &rng), "x": .random([30, 30], using: &rng)])
    }

    @Test func outputsAliasingInputsAndEachOther() throws {
        // An input passed straight through, one node exported twice, a constant output.
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3])
        let y = sin(x)
        let graph = try g.graph(outputs: [("x", x), ("y", y), ("y again", y), ("c", g.constant(2))])
        let out = try expectKernelMatchesInterpreter(graph, ["x": TensorData(shape: [3], scalars: [1, 2, 3])])
        #expect(out["x"]!.scalars == [1, 2, 3])
        #expect(out["y again"]! == out["y"]!)
        #expect(out["c"]!.scalar == 2)
    }

    @Test func emptyTensors() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [0, 3])
        let graph = try g.graph(outputs: ["s": sum(x), "y": exp(x), "g": gradient(of: sum(x), wrt: x)])
        let out = try expectKernelMatchesInterpreter(graph, ["x": TensorData(shape: [0, 3], scalars: [])])
        #expect(out["s"]!.scalar == 0)
    }
}
