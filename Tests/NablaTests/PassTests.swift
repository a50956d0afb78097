import Foundation
import Testing
@testable import Nabla

/// A graph for exercising one rule, with the name of the rule expected to fire.
struct RuleCase: CustomTestStringConvertible, Sendable {
    let rule: String
    let build: @Sendable (Tensor, Tensor) throws -> Tensor
    var testDescription: String { rule }
}

/// Inputs where IEEE corner cases live: signed zeros, infinities, NaN, ordinary values.
let cornerValues: [Double] = [0.0, -0.0, 1.5, -2.25, .infinity, -.infinity, .nan, 1e308]

let ruleCases: [RuleCase] = [
    RuleCase(rule: "x * 1 -> x") { x, _ in x * 1 },
    RuleCase(rule: "x / 1 -> x") { x, _ in x / 1 },
    RuleCase(rule: "x * -1 -> -x") { x, _ in -1 * x },
    RuleCase(rule: "x + -0 -> x") { x, _ in x + -0.0 },
    RuleCase(rule: "x - +0 -> x") { x, _ in x - 0.0 },
    RuleCase(rule: "-(-x) -> x") { x, _ in -(-x) },
    RuleCase(rule: "c * (2^k * x) -> (c * 2^k) * x") { x, _ in 100 * (2 * x) },
    RuleCase(rule: "c * (2^k * x) -> (c * 2^k) * x") { x, _ in (x * -4) * 1.5 },
    RuleCase(rule: "f(broadcast(a), b) -> f(a, b)") { x, s in try s.broadcast(to: x.shape) * x },
    RuleCase(rule: "reshape(x) to its own shape -> x") { x, _ in try x.builder.apply(Reshape(shape: x.shape), [x]) },
    RuleCase(rule: "reshape(reshape(x)) -> reshape(x)") { x, _ in try x.reshaped([2, 4]).reshaped([4, 2]) },
    RuleCase(rule: "broadcast(broadcast(x)) -> broadcast(x)") { _, s in try s.broadcast(to: [8]).broadcast(to: [3, 8]) },
    RuleCase(rule: "broadcast(reshape(scalar)) -> broadcast(scalar)") { _, s in try s.reshaped([1]).broadcast(to: [8]) },
    RuleCase(rule: "transpose(transpose(x)) -> transpose(x)") { x, _ in try x.reshaped([2, 2, 2]).transposed([1, 2, 0]).transposed([2, 0, 1]) },
    RuleCase(rule: "where(constant c, a, b) -> a or b") { x, s in try Nabla.where(x.builder.constant(1), sin(x), s) },
    RuleCase(rule: "where(constant c, a, b) -> a or b") { x, s in try Nabla.where(x.builder.constant(0), x, sin(s)) },
    RuleCase(rule: "where(c, a, a) -> a") { x, s in try Nabla.where(x .> s, sin(x), sin(x)) },
    RuleCase(rule: "identity transpose -> x") { x, _ in try x.builder.apply(Transpose(permutation: [0]), [x]) },
]

let fastMathCases: [RuleCase] = [
    RuleCase(rule: "x + 0 -> x") { x, _ in x + 0 },
    RuleCase(rule: "x * 0 -> 0") { x, _ in x * 0 },
    RuleCase(rule: "x - x -> 0") { x, _ in try x - x },
    RuleCase(rule: "0 - x -> -x") { x, _ in 0 - x },
]

@Suite("Simplification passes")
struct PassTests {
    static func graph(_ c: RuleCase) throws -> Graph {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [8]), s = try g.input("s")
        return try g.graph(outputs: ["y": c.build(x, s)])
    }

    static let inputs: [String: TensorData] = ["x": try! TensorData(shape: [8], scalars: cornerValues), "s": TensorData(-0.0)]

    /// Each IEEE-safe rule fires, shrinks the graph, and leaves every result bit-identical,
    /// signed zeros, infinities and NaN included.
    @Test(arguments: ruleCases)
    func safeRuleFiresAndPreservesEveryBit(_ c: RuleCase) throws {
        let graph = try Self.graph(c)
        let (simplified, statistics) = try simplifyWithStatistics(graph)
        #expect(statistics.rewrites[c.rule, default: 0] >= 1, "rules fired: \(statistics.rewrites)")
        #expect(simplified.nodes.count < graph.nodes.count)
        let before = try Interpreter.evaluate(graph, inputs: Self.inputs)["y"]!
        let after = try Interpreter.evaluate(simplified, inputs: Self.inputs)["y"]!
        #expect(before.shape == after.shape)
        #expect(before.scalars.map(\.bitPattern) == after.scalars.map(\.bitPattern) || zip(before.scalars, after.scalars).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) })
    }

    /// Fast-math rules stay off by default (they would change a corner case) and fire when
    /// asked for.
    @Test(arguments: fastMathCases)
    func fastMathRuleOnlyWhenAsked(_ c: RuleCase) throws {
        let graph = try Self.graph(c)
        let (_, strict) = try simplifyWithStatistics(graph)
        #expect(strict.rewrites[c.rule] == nil)
        let (fast, statistics) = try simplifyWithStatistics(graph, options: SimplifyOptions(fastMath: true))
        #expect(statistics.rewrites[c.rule, default: 0] >= 1)
        let root = { (g: Graph) in g.nodes[g.outputs[0].node].operation.name }
        #expect(root(fast) != root(graph))
        // On ordinary finite values the result is the same.
        let finite: [String: TensorData] = ["x": try TensorData(shape: [8], scalars: [1, 2, 3, -4, 5, 6, 7, 8]), "s": TensorData(2)]
        #expect(try Interpreter.evaluate(graph, inputs: finite)["y"] == Interpreter.evaluate(fast, inputs: finite)["y"])
        // And the corner case it is unsafe for does change (or is NaN-sensitive), which is why it is opt-in.
        let strictValues = try Interpreter.evaluate(graph, inputs: Self.inputs)["y"]!.scalars
        let fastValues = try Interpreter.evaluate(fast, inputs: Self.inputs)["y"]!.scalars
        #expect(zip(strictValues, fastValues).contains { $0.bitPattern != $1.bitPattern })
    }

    /// Merging constant factors only where it is exact: not below 1 (0.001 * (2 * 1e308) is
    /// inf, 0.002 * 1e308 is not), not for 2^-k (halving a subnormal rounds), not for 3.
    @Test func constantFactorsMergeOnlyWhenExact() throws {
        let rule = "c * (2^k * x) -> (c * 2^k) * x"
        let unsafe: [@Sendable (Tensor) -> Tensor] = [{ 0.001 * (2 * $0) }, { 3 * (0.5 * $0) }, { 3 * (3 * $0) }]
        for build in unsafe {
            let g = GraphBuilder()
            let x = try g.input("x", shape: [8])
            let (_, statistics) = try simplifyWithStatistics(try g.graph(outputs: ["y": build(x)]))
            #expect(statistics.rewrites[rule] == nil)
        }
        #expect(0.001 * (2 * 1e308) != 0.002 * 1e308)
        let tiny = Double.leastNonzeroMagnitude
        #expect(3 * (0.5 * tiny) != 1.5 * tiny)
    }

    @Test func constantFoldingUsesTheInterpretersArithmetic() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3])
        let c = try g.constant(TensorData(shape: [3], scalars: [0.1, 0.2, 0.3]))
        let folded = try sin(c) * exp(c) + c / 3
        let graph = try g.graph(outputs: ["y": x * folded])
        let (simplified, statistics) = try simplifyWithStatistics(graph)
        #expect(statistics.foldedConstants >= 4)
        #expect(simplified.nodes.count == 3)  // x, the folded constant, the product
        let input = ["x": try TensorData(shape: [3], scalars: [1, -1, 2])]
        #expect(try Interpreter.evaluate(graph, inputs: input) == Interpreter.evaluate(simplified, inputs: input))
    }

    @Test func broadcastsAreNotFoldedIntoLargeConstants() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [1000])
        let graph = try g.graph(outputs: ["y": x * g.filled(2, shape: [1000])])
        let simplified = try simplify(graph)
        #expect(!simplified.nodes.contains { ($0.operation as? Constant)?.value.shape.count ?? 0 > 1 })
    }

    @Test func derivativeGraphsShrinkAndKeepTheirValues() throws {
        // The seed function and Rosenbrock: fewer nodes after simplification, same results.
        for (path, dims) in [(example("seed-function.nabla"), [String: Int]()), (example("rosenbrock.nabla"), ["N": 10])] {
            let program = try NablaProgram(contentsOfFile: path, dims: dims)
            let (simplified, statistics) = try simplifyWithStatistics(program.graph)
            #expect(statistics.nodesAfter < statistics.nodesBefore, "\(path): \(statistics.nodesBefore) -> \(statistics.nodesAfter)")
            var rng = SeededRandom(seed: 8)
            var inputs: [String: TensorData] = [:]
            for port in program.graph.inputs { inputs[port.name] = .random(program.graph.nodes[port.node].shape, using: &rng) }
            #expect(try Interpreter.evaluate(program.graph, inputs: inputs) == Interpreter.evaluate(simplified, inputs: inputs))
        }
    }

    /// Simplification reads a builder's graph in place while it changes nothing, and rebuilds
    /// from the first node that changes: the same graph, node for node, as rebuilding all of
    /// it (what it does for a graph that may repeat nodes), on every example file.
    @Test func readingInPlaceGivesWhatRebuildingGives() throws {
        for path in exampleFiles() {
            let program = try NablaProgram(contentsOfFile: path)
            #expect(program.graph.isHashConsed)
            var unmarked = program.graph
            unmarked.isHashConsed = false
            for options in [SimplifyOptions(), SimplifyOptions(fastMath: true)] {
                let (inPlace, statistics) = try simplifyWithStatistics(program.graph, options: options)
                let (rebuilt, expected) = try simplifyWithStatistics(unmarked, options: options)
                #expect(inPlace.description == rebuilt.description, "\(path)")
                #expect(statistics.rewrites == expected.rewrites && statistics.foldedConstants == expected.foldedConstants, "\(path)")
            }
        }
    }

    /// A graph simplification leaves as it is comes back with the very same nodes; one whose
    /// last node changes keeps every node before it.
    @Test func anUnchangedGraphIsNotCopied() throws {
        let g = GraphBuilder()
        let x = try g.input("x"), a = try g.input("a")
        var y = x
        for _ in 0..<50 { y = try 0.5 * sin(y) + a }
        let graph = try g.graph(outputs: ["y": y])
        let (same, statistics) = try simplifyWithStatistics(graph)
        #expect(statistics.rewrites.isEmpty && statistics.foldedConstants == 0)
        #expect(same.nodes.count == graph.nodes.count && zip(same.nodes, graph.nodes).allSatisfy { $0 === $1 })
        let changed = try simplify(try g.graph(outputs: ["y": y * 1]))
        #expect(changed.nodes.count == graph.nodes.count && zip(changed.nodes, graph.nodes).allSatisfy { $0 === $1 })
        #expect(changed.outputs[0].node == graph.outputs[0].node)
    }

    /// The builder computes scalar operations on scalar constants as it goes, with the
    /// interpreter's arithmetic; tensor constants are left to simplification.
    @Test func theBuilderFoldsScalarConstants() throws {
        let g = GraphBuilder()
        let folded = try sin(g.constant(0.5)) * g.constant(3) + g.constant(1)
        #expect((folded.operation as? Constant)?.value.scalar == Foundation.sin(0.5) * 3 + 1)
        let vector = try g.constant(TensorData(shape: [2], scalars: [1, 2]))
        #expect(try (vector * g.constant(2)).operation is Multiply)
    }

    @Test func commonSubexpressionsAndDeadCodeGo() throws {
        // Built without the builder's own sharing: two equal sin nodes and a dead exp.
        let x = Graph.Node(operation: Input(), inputs: [], shape: [2])
        let nodes = [x, Graph.Node(operation: Sin(), inputs: [0], shape: [2]), Graph.Node(operation: Sin(), inputs: [0], shape: [2]),
                     Graph.Node(operation: Exp(), inputs: [0], shape: [2]), Graph.Node(operation: Add(), inputs: [1, 2], shape: [2])]
        let graph = Graph(nodes: nodes, inputs: [Graph.Port(name: "x", node: 0)], outputs: [Graph.Port(name: "y", node: 4)])
        let simplified = try simplify(graph)
        #expect(simplified.nodes.count == 3)
        #expect(simplified.nodes.filter { $0.operation is Sin }.count == 1)
        #expect(!simplified.nodes.contains { $0.operation is Exp })
    }
}

@Suite("Compile statistics")
struct StatisticsTests {
    @Test func statisticsReportEachPass() throws {
        let program = try NablaProgram(contentsOfFile: example("rosenbrock.nabla"), dims: ["N": 100])
        let statistics = try compileStatistics(program.graph)
        #expect(statistics.nodesBuilt == program.graph.nodes.count)
        #expect(statistics.nodesSimplified < statistics.nodesBuilt)
        #expect(statistics.rewrites["x * 1 -> x", default: 0] > 0)
        #expect(statistics.loops > 0 && statistics.fusedNodes > statistics.loops)
        #expect(statistics.foldedViews >= 2)
        #expect(statistics.workspaceBytes == (try emitC(program.graph)).workspaceBytes)
        // Writing to a device must not replace it (an atomic rename once turned /dev/null into a
        // regular file).
        let cli = try runNabla(["compile", example("rosenbrock.nabla"), "--stats", "-o", "/dev/null"])
        let attributes = try FileManager.default.attributesOfItem(atPath: "/dev/null")
        #expect(attributes[.type] as? FileAttributeType == .typeCharacterSpecial)
        #expect(cli.status == 0)
        #expect(cli.err.contains("after simplification:"))
        #expect(cli.err.contains("fused loops:"))
        #expect(cli.err.contains("scratch:"))
    }
}
