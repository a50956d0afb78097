import Foundation
import Nabla
import Testing

// This file imports Nabla without @testable: what it uses is what code outside the module sees.

@Suite("The public API, as another module sees it")
struct PublicAPITests {
    /// Every operation type has a public initialiser, so graphs can be built with `apply`; the
    /// result is the graph the operators and functions build.
    @Test func operationsAppliedByHandMatchTheOperators() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [2, 3]), y = try g.input("y", shape: [3])
        var t = try g.apply(Add(), [x, y])
        t = try g.apply(Multiply(), [t, g.apply(Sin(), [x])])
        t = try g.apply(PowConstant(exponent: 3), [t])
        t = try g.apply(Transpose(permutation: [1, 0]), [t])
        t = try g.apply(Reshape(shape: [6]), [t])
        t = try g.apply(Slice(starts: [1], ends: [5], steps: [2]), [t])
        t = try g.apply(Concat(axis: 0), [t, g.apply(Sum(axes: [0]), [x])])
        let m = try g.apply(MatMul(), [g.apply(BroadcastTo(shape: [2, 3]), [y]), g.apply(Exp(), [y])])
        let byHand = try g.apply(Sum(axes: [0]), [t])
        let f = try byHand + g.apply(Sum(axes: [0]), [m])

        let h = GraphBuilder()
        let x2 = try h.input("x", shape: [2, 3]), y2 = try h.input("y", shape: [3])
        let u = try (((x2 + y2) * sin(x2)) ** 3).transposed([1, 0]).reshaped([6])[.range(start: 1, end: 5, step: 2)]
        let v = try concat([u, sum(x2, axes: [0])], axis: 0)
        let w = try y2.broadcast(to: [2, 3]).matmul(exp(y2))
        let reference = try sum(v) + sum(w)

        let inputs = ["x": try TensorData(shape: [2, 3], scalars: [0.1, -0.4, 0.7, 1.2, -0.9, 0.3]), "y": try TensorData(shape: [3], scalars: [0.5, -0.25, 0.8])]
        let a = try Kernel(g.graph(outputs: ["f": f]))(inputs)["f"]!
        let b = try Kernel(h.graph(outputs: ["f": reference]))(inputs)["f"]!
        #expect(a.scalar.bitPattern == b.scalar.bitPattern, "\(a.scalar) vs \(b.scalar)")
        #expect(try Interpreter.evaluate(g.graph(outputs: ["f": f]), inputs: inputs)["f"]!.scalar.bitPattern == a.scalar.bitPattern)
    }
}

@Suite("Errors")
struct ErrorKindTests {
    /// A broken invariant inside Nabla is its own case, rendered as a bug to report; user
    /// errors keep their own cases and messages.
    @Test func internalErrorsAreTheirOwnCase() {
        let bug = NablaError.internalInconsistency("the pullback of foo returned shape [2] for an operand of shape [3]")
        #expect("\(bug)".hasPrefix("internal error (a bug in Nabla; please report it): "))
        let user = NablaError.shapeMismatch(op: "add", shapes: [[2], [3]], reason: "shapes do not broadcast")
        #expect("\(user)" == "shape mismatch in add: [2] and [3]: shapes do not broadcast")
        #expect(bug != user)
    }
}

@Suite("Derivative checks with missing values")
struct DerivativeCheckInputTests {
    /// A derivative output missing from `computed`, or a direction missing from the inputs, is
    /// an error naming it, not a crash.
    @Test func missingValuesAreErrors() throws {
        let program = try NablaProgram(source: "input x\ninput v\noutput f = sin(x)\ngrad f wrt x\njvp f wrt x along v\n", fileName: "t.nabla")
        let inputs = ["x": TensorData(0.3), "v": TensorData(1)]
        #expect(throws: NablaError.self) { try DerivativeCheck.check(program, at: inputs, computed: [:]) }
        let computed = ["df/dx": TensorData(0.95), "df/dx.v": TensorData(0.95)]
        #expect(throws: NablaError.self) { try DerivativeCheck.check(program, at: ["x": TensorData(0.3)], computed: computed) }
        let results = try DerivativeCheck.check(program, at: inputs, computed: computed, tolerance: 1e-1)
        #expect(results.count == 2 && results.allSatisfy(\.passed))
    }
}
