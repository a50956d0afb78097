import Foundation
import Testing
@testable import Nabla

/// The loop IR's passes and renderer, each alone on hand-written IR, and the planning phases
/// each alone on small graphs.
@Suite("Loop IR passes and the C renderer")
struct LoopIRTests {
    typealias E = LoopIR.Expression
    typealias S = LoopIR.Statement
    let i = LoopIR.Index(0, [.init(.flat, 1)])

    func render(_ statements: [S]) -> String {
        var out = CText()
        for s in statements { LoopIR.write(s, to: &out) }
        return out.text
    }

    @Test func statementsAndExpressionsRender() {
        let x = E.load(.input(0), LoopIR.Index(1, [.init(.flat, 1)]))
        let body: [S] = [
            .constant(.value(3), .call(.sin, x) * .literal(-2)),
            .accumulate(.variable(.scalar(7)), .variable(.value(3)) / .literal(.infinity)),
            .assign(.element(.output(1), i), -.variable(.value(3))),
        ]
        let text = render([.loop(LoopIR.Loop(.flat, to: 10, body: body))])
        #expect(text == """
            for (long i = 0; i < 10; i++) {
                const double v3 = (sin(in0[1 + i]) * (-2.0));
                s7 += (v3 / (1.0 / 0.0));
                out1[i] = (-v3);
            }

            """)
    }

    @Test func aWholeProgramDeclaresWhatItUses() throws {
        let program = LoopIR.Program(
            name: "k", inputCount: 2, outputCount: 1, workspaceDoubles: 8, scratchOffsets: [4: 0],
            constants: [LoopIR.ConstantArray(id: 2, scalars: [1, 2])],
            parts: [LoopIR.Function(statements: [
                .assign(.element(.scratch(4), LoopIR.Index(0)), .load(.input(1), LoopIR.Index(0)) + .load(.constant(2), LoopIR.Index(1))),
                .assign(.element(.output(0), LoopIR.Index(0)), .call(Sigmoid.helper, .load(.scratch(4), LoopIR.Index(0)))),
            ])])
        let c = try LoopIR.renderC(program, runtime: .standalone)
        // Only what is used: input 1 (not 0), the scratch buffer, the helper and what it calls.
        #expect(c.contains("const double *const in1 = inputs[1];") && !c.contains("in0"))
        #expect(c.contains("double *const b4 = ws + 0;"))
        #expect(c.contains("double exp(double);") && c.contains("static double nabla_sigmoid(double x)"))
        #expect(c.contains("static const double nabla_c2[2] = {"))
        // A helper's callees are declared before it.
        #expect(c.range(of: "double exp(double);")!.lowerBound < c.range(of: "static double nabla_sigmoid")!.lowerBound)
    }

    @Test func standaloneCannotCallARuntimeFunctionWithoutAStandaloneForm() {
        let program = LoopIR.Program(
            name: "k", inputCount: 0, outputCount: 0, workspaceDoubles: 0, scratchOffsets: [:], constants: [],
            parts: [LoopIR.Function(statements: [.call(MatMul.runtime, [.integer(1)])])])
        #expect(throws: LoopIR.RenderError.noStandaloneForm("nabla_matmul")) { try LoopIR.renderC(program, runtime: .standalone) }
        #expect((try? LoopIR.renderC(program, runtime: .byName))?.contains("void nabla_matmul(long m") == true)
    }

    @Test func invariantLoadsAreHoistedOnlyWhenTheLoopRunsAndDoesNotWriteThem() {
        let invariant = E.load(.input(0), LoopIR.Index(5))
        let body: [S] = [.assign(.element(.output(0), i), invariant * .load(.input(1), i))]
        var next = 0
        let (declarations, loop) = LoopIR.hoistInvariantLoads(LoopIR.Loop(.flat, to: 8, body: body), next: &next)
        #expect(declarations == [.constant(.hoisted(0), invariant)])
        #expect(loop.body == [.assign(.element(.output(0), i), .variable(.hoisted(0)) * .load(.input(1), i))])
        // A loop that may not run keeps its loads; so does one that writes the buffer.
        #expect(LoopIR.hoistInvariantLoads(LoopIR.Loop(.flat, to: 0, body: body), next: &next).declarations.isEmpty)
        let writes: [S] = [.assign(.element(.input(0), i), invariant)]
        #expect(LoopIR.hoistInvariantLoads(LoopIR.Loop(.flat, to: 8, body: writes), next: &next).declarations.isEmpty)
    }

    @Test func repeatedLoadsAreLoadedOnce() {
        let x = E.load(.input(0), i)
        let body: [S] = [.constant(.value(1), x * x), .assign(.element(.output(0), i), .variable(.value(1)) + x)]
        let cached = LoopIR.cacheRepeatedLoads(body)
        #expect(cached == [
            .constant(.cached(0), x),
            .constant(.value(1), .variable(.cached(0)) * .variable(.cached(0))),
            .assign(.element(.output(0), i), .variable(.value(1)) + .variable(.cached(0))),
        ])
    }

    @Test func unrollingCopiesTheBodyAndKeepsTheRemainderRolled() throws {
        let body: [S] = [
            .constant(.value(1), .call(.exp, .load(.input(0), i))),
            .assign(.element(.output(0), i), .variable(.value(1))),
            .accumulate(.variable(.scalar(2)), .variable(.value(1))),
        ]
        let statements = try #require(LoopIR.unrolled(LoopIR.Loop(.flat, to: 10, mayUnroll: true, body: body), lanes: 4))
        #expect(statements.first == .counter(.flat, start: 0))
        guard case let .loop(main) = statements[1], case let .loop(rest) = statements[2] else {
            Issue.record("expected an unrolled loop and a remainder: \(statements)")
            return
        }
        #expect(main.width == 4 && main.step == 4 && main.start == nil)
        #expect(rest.width == 1 && rest.start == nil && rest.body == body)
        // Four copies of the definition, four stores, one chained sum.
        let definitions = main.body.filter { if case .declare(.value(1, _), _, _) = $0 { return true } else { return false } }
        #expect(definitions.count == 4)
        #expect(main.body.filter { if case .assign(.variable(.scalar(2)), _) = $0 { return true } else { return false } }.count == 1)
        // Not for bodies it cannot copy: a mutable local.
        #expect(LoopIR.unrolled(LoopIR.Loop(.flat, to: 10, body: [.declare(.value(1), .literal(0), mutable: true)]), lanes: 4) == nil)
    }

    @Test func flatteningNeedsContiguousOrConstantIndices() {
        let extents = [3, 4]
        let contiguous = LoopIR.Index(offset: 0, counters: [.axis(0), .axis(1)], strides: [4, 1])
        let broadcast = LoopIR.Index(offset: 2, counters: [.axis(0), .axis(1)], strides: [0, 0])
        let transposed = LoopIR.Index(offset: 0, counters: [.axis(0), .axis(1)], strides: [1, 3])
        let body: [S] = [.assign(.element(.output(0), contiguous), .load(.input(0), broadcast))]
        #expect(LoopIR.flattened(body, extents: extents) == [.assign(.element(.output(0), LoopIR.Index(0, [.init(.flat, 1)])), .load(.input(0), LoopIR.Index(2)))])
        #expect(LoopIR.flattened([.assign(.element(.output(0), contiguous), .load(.input(0), transposed))], extents: extents) == nil)
    }
}

@Suite("Planning phases")
struct PlanningPhaseTests {
    /// y = sin(x[1:]) * 2, s = sum(y), t = y @ y (a consumer that needs memory).
    func sample() throws -> Graph {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [9])
        let y = try sin(x[.from(1)]) * 2
        return try g.graph(outputs: ["s": sum(y), "t": y.matmul(y)])
    }

    @Test func viewFoldingReadsSlicesInPlace() throws {
        let graph = try sample()
        let facts = GraphFacts(graph)
        let views = ViewFolding(facts)
        let slice = graph.nodes.indices.first { graph.nodes[$0].operation is Slice }!
        #expect(views.access[slice] == Access(base: graph.inputs[0].node, offset: 1, strides: [1]))
        #expect(!views.stored[slice])
    }

    @Test func groupingAndStorage() throws {
        let graph = try sample()
        let facts = GraphFacts(graph)
        let views = ViewFolding(facts)
        let grouping = LoopGrouping(facts, views)
        let sinNode = graph.nodes.indices.first { graph.nodes[$0].operation is Sin }!
        let y = graph.nodes.indices.first { graph.nodes[$0].operation is Multiply }!
        let s = graph.outputs[0].node
        #expect(grouping.group[sinNode] != nil && grouping.group[sinNode] == grouping.group[y] && grouping.group[y] == grouping.group[s])
        let storage = StorageDecision(facts, views, grouping)
        // y feeds the product, which needs memory; sin(x) lives in the loop; the sum is an output.
        #expect(storage.materialized[y] && !storage.materialized[sinNode] && storage.materialized[s])
        let lifetimes = Lifetimes(facts, grouping, storage, views.access)
        // The loop writes y at its last member (the sum); the product reads it later.
        #expect(lifetimes.point[y] == s && lifetimes.lastUse[y] == graph.outputs[1].node)
    }

    @Test func memoryIsReusedOnceAValueIsDead() {
        // Four buffers of 8 doubles, each read only by the next node: two slots suffice.
        let g = GraphBuilder()
        let graph = try! g.graph(outputs: ["x": g.input("x", shape: [8])])
        let plan = MemoryPlan(graph: Graph(nodes: Array(repeating: graph.nodes[0], count: 4), inputs: [], outputs: []),
                              needsBuffer: [true, true, true, true], point: [0, 1, 2, 3], lastUse: [1, 2, 3, 3])
        #expect(plan.size == 16)
        #expect(Set(plan.offsets.compactMap { $0 }).count == 2)
    }

    @Test func partsSplitLongSchedules() throws {
        let graph = try recurrenceGraph(steps: 400)
        let compilation = try Compilation(graph, simplify: false)
        let facts = GraphFacts(compilation.scheduled)
        let views = ViewFolding(facts)
        let grouping = LoopGrouping(facts, views)
        let parts = KernelParts(facts, grouping, StorageDecision(facts, views, grouping), size: 500)
        #expect(parts.count >= facts.count / 500 - 1 && parts.count > 2)
        #expect(parts.part(of: 0) == 0 && parts.part(of: facts.count) == parts.count - 1)
    }
}
