import Foundation
import Testing
@testable import Nabla

/// Number of `for` loops in generated C.
func loopCount(_ code: String) -> Int { code.components(separatedBy: "for (long").count - 1 }

@Suite("Loop fusion")
struct FusionTests {
    @Test func anElementwiseChainWithItsSumIsOneLoop() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [1000])
        let L = try sum(square(sin(x) * 2 + exp(x)) / 3)
        let graph = try g.graph(outputs: ["L": L])
        let source = try emitC(graph)
        #expect(loopCount(source.code) == 1)
        #expect(source.workspaceBytes == 0)  // nothing stored but the scalar result
        // The plan: one group holding every elementwise node and the sum; only the sum stored.
        let plan = try Compilation(graph).plan
        let groups = plan.grouping.groups.filter { !$0.members.isEmpty }
        #expect(groups.count == 1)
        let fusible = plan.graph.nodes.indices.filter { plan.facts.roles[$0].isFusible }
        #expect(groups.first?.members == fusible)
        #expect(fusible.filter { plan.materialized[$0] } == [plan.graph.outputs[0].node])
        var rng = SeededRandom(seed: 1)
        try expectKernelMatchesInterpreter(graph, ["x": .random([1000], using: &rng)])
    }

    /// Shifted slices of a vector of 1 or 2 elements leave the fused loop empty or of one step;
    /// the padded slice's carried values are then still its +0.0 (at N = 1 the unrolled
    /// kernel used to read a carry it never declared, and TinyCC refused the C).
    @Test func shiftedSlicesOfTinyVectors() throws {
        for n in 1...5 {
            let program = try NablaProgram(contentsOfFile: example("rosenbrock.nabla"), dims: ["N": n])
            var generator = SeededRandom(seed: UInt64(n))
            let inputs = Dictionary(uniqueKeysWithValues: program.graph.inputs.map {
                ($0.name, TensorData.random(program.graph.nodes[$0.node].shape, in: -1...1, using: &generator))
            })
            try expectKernelMatchesInterpreter(program.graph, inputs)
        }
    }

    @Test func slicesAreReadInPlace() throws {
        // Rosenbrock's x[:-1] and x[1:] cost no copies.
        let g = GraphBuilder()
        let x = try g.input("x", shape: [100])
        let f = try sum(100 * square(square(x[.upTo(-1)]) - x[.from(1)]) + square(x[.upTo(-1)] - 1))
        let source = try emitC(g.graph(outputs: ["f": f]))
        #expect(loopCount(source.code) == 1)
        #expect(source.code.contains("in0[1 + i]"))
    }

    @Test func aLoopNeverReadsWhatItWritesAtAnotherIndex() throws {
        // z reads y transposed: y must be complete before z's loop starts.
        let g = GraphBuilder()
        let A = try g.input("A", shape: [5, 5])
        let y = A * 2
        let z = try y.transposed + y
        let w = try sum(z * y, axis: 0)
        let graph = try g.graph(outputs: ["z": z, "w": w])
        // z reads y transposed, so it is not in y's loop, and y is stored for it.
        let plan = try Compilation(graph).plan
        let yNode = plan.graph.nodes.indices.first { plan.graph.nodes[$0].operation is Multiply }!
        let zNode = plan.graph.outputs[0].node
        #expect(plan.grouping.group[yNode] != plan.grouping.group[zNode])
        #expect(plan.materialized[yNode])
        var rng = SeededRandom(seed: 2)
        let out = try expectKernelMatchesInterpreter(graph, ["A": .random([5, 5], using: &rng)])
        #expect(out["z"]!.shape == [5, 5])
    }

    @Test func broadcastsTransposesAndReshapesFold() throws {
        let g = GraphBuilder()
        let a = try g.input("a", shape: [3, 4]), b = try g.input("b", shape: [4]), c = try g.input("c", shape: [4, 3])
        let y = try a * b + c.transposed - a.reshaped([4, 3]).transposed * 2
        let s = try sum(y, axis: 1) + sum(y.transposed, axis: 0)
        let graph = try g.graph(outputs: ["y": y, "s": s])
        var rng = SeededRandom(seed: 3)
        try expectKernelMatchesInterpreter(graph, ["a": .random([3, 4], using: &rng), "b": .random([4], using: &rng), "c": .random([4, 3], using: &rng)])
        // Every view is read in place (none is stored), and the elementwise work is one loop
        // per index space: y's [3, 4] with its row sums, y transposed's [4, 3] summed, and the
        // final [3] addition.
        let plan = try Compilation(graph).plan
        let views = plan.graph.nodes.indices.filter { plan.facts.roles[$0] == .view }
        #expect(!views.isEmpty && views.allSatisfy { !plan.materialized[$0] })
        #expect(plan.grouping.groups.filter { !$0.members.isEmpty }.map(\.shape) == [[3, 4], [4, 3], [3]])
    }

    @Test func reshapeOfATransposeIsStoredFirst() throws {
        // A transposed view is not contiguous, so reshaping it needs a stored copy.
        let g = GraphBuilder()
        let a = try g.input("a", shape: [3, 4])
        let y = try sin(a.transposed.reshaped([12]))
        let plan = try Compilation(g.graph(outputs: ["y": y])).plan
        let transpose = plan.graph.nodes.indices.first { plan.graph.nodes[$0].operation is Transpose }!
        #expect(plan.materialized[transpose])
        var rng = SeededRandom(seed: 4)
        try expectKernelMatchesInterpreter(try g.graph(outputs: ["y": y]), ["a": .random([3, 4], using: &rng)])
    }

    @Test func fusedGradientsMatchOnEveryExample() throws {
        // The examples' derivative graphs through the fused emitter, in both kernels.
        for path in exampleFiles() {
            let dims = path.hasSuffix("rosenbrock.nabla") ? ["N": 30] : [:]
            let program = try NablaProgram(contentsOfFile: path, dims: dims)
            var rng = SeededRandom(seed: 5)
            var inputs: [String: TensorData] = [:]
            for port in program.graph.inputs { inputs[port.name] = .random(program.graph.nodes[port.node].shape, using: &rng) }
            try expectKernelMatchesInterpreter(program.graph, inputs)
        }
    }

    @Test func fusionShrinksTheWorkspace() throws {
        let program = try NablaProgram(contentsOfFile: example("rosenbrock.nabla"), dims: ["N": 1000])
        let fused = try emitC(program.graph)
        // Without fusion every intermediate of the 999-element chain would need a buffer.
        #expect(fused.workspaceBytes < 10 * 1000 * 8)
        #expect(loopCount(fused.code) < 20)
    }
}

@Suite("Loop fusion: values complete only after a loop")
struct FusionOrderTests {
    @Test func centringByTheMeanReadsTheFinishedSum() throws {
        // y = x - mean(x): the mean is a sum over the same loop, so y needs a second loop.
        let g = GraphBuilder()
        let x = try g.input("x", shape: [50])
        let e = exp(x)
        let centred = try (e - mean(e)) * e
        let graph = try g.graph(outputs: ["c": centred, "s": sum(square(centred))])
        var rng = SeededRandom(seed: 6)
        try expectKernelMatchesInterpreter(graph, ["x": .random([50], using: &rng)])
    }

    @Test func scalarsReadOffASumDoNotSplitLoops() throws {
        // `sum(e * x) * s` is built between the two sums; it moves below them, so both sums
        // share one loop (a GP likelihood's gradient has three such sums).
        let g = GraphBuilder()
        let x = try g.input("x", shape: [50]), s = try g.input("s")
        let e = exp(x)
        let a = try sum(e * x) * s
        let b = try sum(e * e) + a
        let graph = try g.graph(outputs: ["a": a, "b": b])
        #expect(loopCount(try emitC(graph).code) == 1)
        var rng = SeededRandom(seed: 8)
        try expectKernelMatchesInterpreter(graph, ["x": .random([50], using: &rng), "s": TensorData(1.5)])
    }

    @Test func softmaxStyleNormalisation() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [4, 6])
        let e = exp(x * 2)
        let p = try e / sum(e, axis: 1).reshaped([4, 1])
        let graph = try g.graph(outputs: ["p": p, "g": gradient(of: sum(p * x), wrt: x)])
        var rng = SeededRandom(seed: 7)
        try expectKernelMatchesInterpreter(graph, ["x": .random([4, 6], using: &rng)])
    }
}

@Suite("Optimised runtime")
struct RuntimeTests {
    /// JIT kernels call the package's optimised LU and matrix product; standalone C carries
    /// its own static copies of the same code.
    @Test func jitKernelsCallTheRuntimeAndStandaloneCarriesIt() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [30, 30]), b = try g.input("b", shape: [30])
        let graph = try g.graph(outputs: ["x": solve(A, b), "d": logdet(A), "y": A.matmul(b)])
        let jit = try emitC(graph, options: CEmitOptions(useRuntime: true))
        #expect(jit.code.contains("void nabla_lu_apply(long n, long m, const double *f, const double *pivots, double *x);"))
        #expect(!jit.code.contains("static void nabla_lu_apply"))
        #expect(jit.code.contains("nabla_matmul(30, 30, 1,"))
        var pointers = CEmitOptions(useRuntime: true)
        pointers.runtimeThroughPointers = true
        let slots = try emitC(graph, options: pointers).code
        #expect(slots.contains("void (*nabla_slot_nabla_lu_apply)(long n, long m, const double *f, const double *pivots, double *x) = 0;"))
        #expect(slots.contains("void (*nabla_slot_nabla_matmul)(long m, long k, long n, const double *A, const double *B, double *C) = 0;"))
        let cc = try Kernel(graph, backend: .cc)
        #expect(cc.source.code.contains("(*nabla_slot_nabla_matmul)"))
        let standalone = try emitC(graph)
        #expect(standalone.code.contains("static void nabla_lu_apply(long n, long m, const double *f, const double *pivots, double *x) {"))
        #expect(!standalone.code.contains("nabla_matmul("))
        var rng = SeededRandom(seed: 9)
        var a = TensorData.random([30, 30], using: &rng)
        for i in 0..<30 { a.scalars[i * 30 + i] += 30 }
        let inputs = ["A": a, "b": TensorData.random([30], using: &rng)]
        try expectKernelMatchesInterpreter(graph, inputs)
        let reference = try Interpreter.evaluate(graph, inputs: inputs)
        let out = try cc(inputs)
        for (name, value) in reference { expectClose(out[name]!.scalars, value.scalars, tolerance: 1e-12, floor: 1e-300, "cc \(name)") }
    }
}

@Suite("Optimised runtime: blocked LU")
struct BlockedLUTests {
    /// Matrices wider than one 32-column block, with pivoting and with zero pivots, through the
    /// JIT (blocked runtime LU) and the interpreter (unblocked): the same factors to the bit.
    @Test(arguments: [33, 70, 100])
    func blockedFactorsMatchTheUnblockedOnesExactly(n: Int) throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [n, n]), b = try g.input("b", shape: [n, 3])
        let graph = try g.graph(outputs: ["d": det(A), "l": logdet(A), "x": solve(A, b), "xt": solveTransposed(A, b), "i": inv(A)])
        var rng = SeededRandom(seed: UInt64(n))
        let random = TensorData.random([n, n], using: &rng)
        var singular = random
        for i in 0..<n { singular.scalars[i * n + 40 % n] = 0; singular.scalars[i * n + 5] = singular.scalars[i * n + 6] }
        for a in [random, singular] {
            let inputs = ["A": a, "b": TensorData.random([n, 3], using: &rng)]
            let reference = try Interpreter.evaluate(graph, inputs: inputs)
            let compiled = try Kernel(graph)(inputs)
            for (name, value) in reference {
                let same = zip(compiled[name]!.scalars, value.scalars).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
                #expect(same, "\(name), n = \(n)")
            }
        }
    }
}
