import Foundation
import Testing
@testable import Nabla

/// Realistic expressions written in the builder's notation. Besides checking values, this file
/// keeps the operator overloads honest about type-checking time: the whole of
/// `realisticExpressions` type-checks in about 20 ms (measured with
/// `-Xfrontend -debug-time-function-bodies`); a regression shows up as a slow test build.
@Suite("Swift builder")
struct BuilderTests {
    @Test func realisticExpressions() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [10])
        let y = try g.input("y", shape: [20])
        let Phi = try g.input("Phi", shape: [20, 10])
        let theta = try g.input("theta", shape: [10])
        let A0 = try g.input("A0", shape: [5, 10]), b0 = try g.input("b0", shape: [5])
        let L = try 0.5 * sum(square(y - Phi.matmul(theta)))
        let f = try sqrt(x ** 2 + exp(x ** 2)) + sin(x ** 2 - 1)
        let r = try sum(100 * (x[.upTo(-1)] ** 2 - x[.from(1)]) ** 2 + (x[.upTo(-1)] - 1) ** 2)
        let h = try sigmoid(A0.matmul(x) + b0)
        let q = try 0.5 * sum((h - 0.3) ** 2) + 2 * sum(f) / 3 - r * 0.01 + L * L / (1 + L)
        #expect(L.shape == .scalar && f.shape == [10] && r.shape == .scalar && h.shape == [5] && q.shape == .scalar)

        var rng = SeededRandom(seed: 11)
        let inputs: [String: TensorData] = [
            "x": .random([10], using: &rng), "y": .random([20], using: &rng), "Phi": .random([20, 10], using: &rng),
            "theta": .random([10], using: &rng), "A0": .random([5, 10], using: &rng), "b0": .random([5], using: &rng),
        ]
        let graph = try g.graph(outputs: ["r": r, "f": f])
        let out = try expectKernelMatchesInterpreter(graph, inputs)
        let xs = inputs["x"]!.scalars
        let rosenbrock = (0..<9).reduce(0.0) { (s: Double, i: Int) -> Double in
            s + 100 * pow(xs[i] * xs[i] - xs[i + 1], 2) + pow(xs[i] - 1, 2)
        }
        expectClose(out["r"]!.scalar, rosenbrock, tolerance: 1e-13)
        expectClose(out["f"]!.scalars, xs.map { sqrt($0 * $0 + exp($0 * $0)) + sin($0 * $0 - 1) }, tolerance: 1e-14)
    }

    @Test func graphKeepsDeclaredInputsAndPrunesDeadNodes() throws {
        let g = GraphBuilder()
        let a = try g.input("a"), b = try g.input("b", shape: [2])
        _ = exp(a) * 3  // dead
        let graph = try g.graph(outputs: ["s": sin(a)])
        #expect(graph.inputs.map(\.name) == ["a", "b"])
        #expect(graph.inputShapes == [.scalar, [2]])
        #expect(graph.nodes.count == 3)
        #expect(graph.description.contains("sin(%0)"))
        _ = b
    }

    @Test func equalSubexpressionsAreBuiltOnce() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3])
        let a = sin(x), b = sin(x)
        #expect(a.id == b.id)
        #expect(g.constant(2).id == g.constant(2).id)
        #expect(g.constant(0.0).id != g.constant(-0.0).id)
    }
}
