import Foundation
import Testing
@testable import Nabla

/// The recurrence y = 0.9 sin(y) + a (y0 given), unrolled by hand: the reference for loops.
private func unrolledRecurrence(_ y0: Double, _ a: Double, steps: Int) -> Double {
    var y = y0
    for _ in 0..<steps { y = 0.9 * Foundation.sin(y) + a }
    return y
}

@Suite("Loops: fold, scan and map")
struct LoopInterpreterTests {
    /// A fold of a scalar recurrence with a captured parameter: value, gradient (reverse mode)
    /// against finite differences, and forward mode.
    @Test func foldOfARecurrenceAndItsDerivatives() throws {
        let g = GraphBuilder()
        let y0 = try g.input("y0"), a = try g.input("a"), t = try g.input("t")
        let y = try fold(y0, steps: 20) { c, _ in try 0.9 * sin(c) + a }
        let grads = try gradient(of: y, wrt: [y0, a])
        let tangent = try jvp(of: y, wrt: [a], tangents: [t])
        let graph = try g.graph(outputs: ["y": y, "dy0": grads[0], "da": grads[1], "ty": tangent])
        let point = ["y0": TensorData(0.3), "a": TensorData(0.2), "t": TensorData(1)]
        let out = try Interpreter.evaluate(graph, inputs: point)
        #expect(out["y"]!.scalar == unrolledRecurrence(0.3, 0.2, steps: 20))
        let h = 1e-6
        let dy0 = (unrolledRecurrence(0.3 + h, 0.2, steps: 20) - unrolledRecurrence(0.3 - h, 0.2, steps: 20)) / (2 * h)
        let da = (unrolledRecurrence(0.3, 0.2 + h, steps: 20) - unrolledRecurrence(0.3, 0.2 - h, steps: 20)) / (2 * h)
        expectClose(out["dy0"]!.scalar, dy0, tolerance: 1e-7)
        expectClose(out["da"]!.scalar, da, tolerance: 1e-7)
        expectClose(out["ty"]!.scalar, da, tolerance: 1e-7)
    }
}
