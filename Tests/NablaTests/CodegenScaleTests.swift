import Foundation
import Testing
@testable import Nabla

/// y_k = 0.999 sin(y_{k-1}) + 0.001 a, k = 1...steps, with the gradient of y_steps: an unrolled
/// time-stepping model, as deep as graphs get.
func recurrenceGraph(steps: Int) throws -> Graph {
    let g = GraphBuilder()
    let y0 = try g.input("y0"), a = try g.input("a")
    var y = y0
    for _ in 0..<steps { y = try 0.999 * sin(y) + 0.001 * a }
    let gradients = try gradient(of: y, wrt: [y0, a])
    return try g.graph(outputs: ["f": y, "df/dy0": gradients[0], "df/da": gradients[1]])
}

/// y_k = sigmoid(0.9 y_{k-1} + 0.01 sum(c * x * y_{k-1}) + 0.1) for a scalar y, an input x
/// over [6] and a constant vector c, with the gradient of y_steps: split kernels whose parts
/// all call a helper and read one tensor constant.
func helperRecurrenceGraph(steps: Int) throws -> Graph {
    let g = GraphBuilder()
    let x = try g.input("x", shape: [6]), y0 = try g.input("y0")
    let c = g.constant(try TensorData(shape: [6], scalars: [0.9, -0.8, 1.1, 0.7, -1.2, 0.5]))
    var y = y0
    for _ in 0..<steps { y = try sigmoid(0.9 * y + 0.01 * sum(c * (x * y)) + 0.1) }
    let gradients = try gradient(of: y, wrt: [x, y0])
    return try g.graph(outputs: ["f": y, "df/dx": gradients[0], "df/dy0": gradients[1]])
}

/// The deepest expression of a program.
func deepestExpression(_ program: LoopIR.Program) -> Int {
    var deepest = 0
    for part in program.parts {
        LoopIR.visit(part.statements) { item in
            switch item {
            case let .statement(.declare(_, e, _)), let .statement(.assign(_, e)), let .statement(.accumulate(_, e)):
                deepest = max(deepest, e.depth)
            default: break
            }
        }
    }
    return deepest
}

@Suite("Code generation at scale")
struct CodegenScaleTests {
    /// A deep recurrence is split into several C functions; scalars read in a later function
    /// than they are written live in the workspace; the kernel agrees with the interpreter.
    @Test func aDeepRecurrenceIsSplitIntoParts() throws {
        let graph = try recurrenceGraph(steps: 1500)
        let compilation = try Compilation(graph)
        #expect(compilation.plan.parts.count > 2, "\(compilation.plan.parts.count) parts for \(compilation.scheduled.nodes.count) nodes")
        #expect(compilation.plan.inMemory.contains(true))
        let program = try compilation.program(Kernel.emitOptions(for: .tcc))
        #expect(program.parts.count == compilation.plan.parts.count)
        let inputs = ["y0": TensorData(0.3), "a": TensorData(-0.7)]
        let reference = try Interpreter.evaluate(graph, inputs: inputs)
        for backend in Backend.allCases {
            let out = try Kernel(graph, backend: backend)(inputs)
            for (name, value) in reference {
                #expect(sameBits(out[name]!.scalars, value.scalars), "\(backend) \(name): \(firstDifference(out[name]!.scalars, value.scalars))")
            }
        }
    }

    /// A split kernel on TinyCC is compiled unit by unit (one per part, then the entry point);
    /// helpers and constants shared by parts are guarded, and the values are the
    /// interpreter's bit for bit.
    @Test func splitKernelsCompileUnitByUnit() throws {
        let graph = try helperRecurrenceGraph(steps: 700)
        let compilation = try Compilation(graph)
        #expect(compilation.plan.parts.count > 2)
        var units: [String] = []
        let source = try compilation.emitUnits(Kernel.emitOptions(for: .tcc)) { units.append($0) }
        #expect(units.count == compilation.plan.parts.count + 1)
        #expect(source.code == units.joined())
        // Shared definitions travel with every unit that needs them, guarded.
        #expect(units.filter { $0.contains("#ifndef NABLA_DEFINED_nabla_sigmoid") }.count >= 2)
        #expect(units.filter { $0.contains("#ifndef NABLA_DEFINED_nabla_c") }.count >= 2)
        #expect(units.last!.contains("int \(source.functionName)("))
        let inputs = ["x": try TensorData(shape: [6], scalars: [0.3, -0.2, 0.9, -1.1, 0.05, 0.6]), "y0": TensorData(0.2)]
        let reference = try Interpreter.evaluate(graph, inputs: inputs)
        let kernel = try Kernel(graph)
        #expect(kernel.source.code.contains("#ifndef NABLA_DEFINED_nabla_sigmoid"))
        let out = try kernel(inputs)
        for (name, value) in reference {
            #expect(sameBits(out[name]!.scalars, value.scalars), "\(name): \(firstDifference(out[name]!.scalars, value.scalars))")
        }
    }

    /// Units compiled into one TinyCC program call each other; an error in one is reported
    /// with its line in that unit.
    @Test func tinyCCLinksUnits() throws {
        let (module, units) = try TinyCC.compile(symbol: "twice") { add in
            try add { "double one(void);\ndouble one(void) { return 1.0; }\n" }
            try add { "double one(void);\nint twice(void);\nint twice(void) { return (int)(2 * one()); }\n" }
        }
        #expect(units.count == 2 && units[0].hasPrefix("double one(void);"))
        let twice = unsafeBitCast(module.address, to: (@convention(c) () -> Int32).self)
        #expect(twice() == 2)
        do {
            _ = try TinyCC.compile(symbol: "f") { add in
                try add { "int f(void);\nint f(void) { return 0; }\n" }
                try add { "int g(void);\n\nint g(void) { return missing; }\n" }
            }
            Issue.record("an undeclared identifier compiled")
        } catch let NablaError.compilation(message, line, sourceLine) {
            #expect(message.contains("missing"))
            #expect(line == 3)
            #expect(sourceLine == "int g(void) { return missing; }")
        }
    }

    /// While TinyCC's thread has a unit waiting, the next unit is written by the caller: here
    /// the first unit's writing waits until the third's has run, which only the caller can do
    /// then (the thread is held in the first, the second waits behind it). The units still
    /// compile in order into one program.
    @Test func theCallerWritesUnitsWhileTinyCCIsBehind() throws {
        let third = DispatchSemaphore(value: 0)
        let writers = Lock<[Int: Bool]>([:])
        let caller = pthread_self()
        let (module, units) = try TinyCC.compile(symbol: "three") { add in
            try add {
                let released = third.wait(timeout: .now() + 30) == .success
                writers.withLock { $0[0] = released }
                return "int one(void);\nint one(void) { return 1; }\n"
            }
            try add { "int two(void);\nint two(void) { return 2; }\n" }
            try add {
                writers.withLock { $0[2] = pthread_equal(pthread_self(), caller) != 0 }
                third.signal()
                return "int one(void);\nint two(void);\nint three(void);\nint three(void) { return one() + two(); }\n"
            }
        }
        #expect(writers.withLock { $0 } == [0: true, 2: true])
        #expect(units.count == 3 && units[2].contains("three(void) {"))
        #expect(unsafeBitCast(module.address, to: (@convention(c) () -> Int32).self)() == 3)
    }

    /// A large graph is planned while it is simplified (`Compilation`): the C is the same as
    /// planning after simplification gives, whether simplification kept the graph (the plan
    /// made on the side is used) or changed its last node (that plan is dropped).
    @Test func planningWhileSimplifyingGivesTheSameC() throws {
        let kept = try recurrenceGraph(steps: 10_000)
        #expect(kept.nodes.count >= Compilation.planWhileSimplifyingMinimum)
        let g = GraphBuilder()
        let x = try g.input("x")
        var y = x
        for _ in 0..<(Compilation.planWhileSimplifyingMinimum / 2) { y = 0.5 * sin(y) }
        let changed = try g.graph(outputs: ["y": y * 1])
        #expect(changed.nodes.count >= Compilation.planWhileSimplifyingMinimum)
        for graph in [kept, changed] {
            var unmarked = graph
            unmarked.isHashConsed = false  // planned only after simplification
            let (_, statistics) = try simplifyWithStatistics(graph)
            #expect(statistics.keptTheGraph == (graph.nodes.count == kept.nodes.count))
            #expect(try Compilation(graph).emit(.standalone).code == Compilation(unmarked).emit(.standalone).code)
        }
    }

    /// Values within one part stay in variables: a small graph is one function with no scalar
    /// in memory.
    @Test func aSmallKernelIsOneFunction() throws {
        let compilation = try Compilation(recurrenceGraph(steps: 20))
        #expect(compilation.plan.parts.count == 1)
        #expect(!compilation.plan.inMemory.contains(true))
        #expect(try compilation.program(.standalone).parts.count == 1)
    }

    /// Single-use scalars are written into their readers' expressions, but never deeper than
    /// LoopIR.maximumDepth, however long the chain.
    @Test func scalarChainsStayShallow() throws {
        let g = GraphBuilder()
        let x = try g.input("x")
        var y = x
        for k in 0..<5000 { y = k % 2 == 0 ? sin(y) : y * 1.5 }
        let graph = try g.graph(outputs: ["y": y])
        let program = try Compilation(graph).program(.standalone)
        #expect(deepestExpression(program) <= LoopIR.maximumDepth)
        try expectKernelMatchesInterpreter(graph, ["x": TensorData(0.25)])
    }

    /// The same for a long elementwise chain fused into one loop.
    @Test func loopBodyChainsStayShallow() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [37])
        var y = x
        for k in 0..<3000 { y = k % 3 == 0 ? tanh(y) : y * 1.25 - 0.5 }
        let graph = try g.graph(outputs: ["y": y, "s": sum(y)])
        let compilation = try Compilation(graph)
        #expect(compilation.statistics.loops == 1)
        for unroll in [1, 16] {
            var options = CEmitOptions(useRuntime: true)
            options.unroll = unroll
            #expect(deepestExpression(try compilation.program(options)) <= LoopIR.maximumDepth + 2 * 16)
        }
        var rng = SeededRandom(seed: 3)
        try expectKernelMatchesInterpreter(graph, ["x": .random([37], using: &rng)])
    }

    /// A sum of many terms, each its own node, compiles linearly and agrees with the
    /// interpreter (the terms are added in the order written).
    @Test func aLongSum() throws {
        let g = GraphBuilder()
        let x = try g.input("x")
        var total = sin(x) * 0
        for k in 1..<5000 { total = try total + sin(x) * Double(k) }
        let graph = try g.graph(outputs: ["f": total, "df/dx": gradient(of: total, wrt: x)])
        try expectKernelMatchesInterpreter(graph, ["x": TensorData(0.4)])
    }
}
