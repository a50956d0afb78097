import Foundation
import Testing
@testable import Nabla

/// Every loop of the statements, outermost first.
func allLoops(in statements: [LoopIR.Statement]) -> [LoopIR.Loop] {
    var loops: [LoopIR.Loop] = []
    LoopIR.visit(statements) { if case let .statement(.loop(loop)) = $0 { loops.append(loop) } }
    return loops
}

/// Unrolled loops (`CEmitOptions.unroll`) must give the same bits as rolled ones and as the
/// interpreter: every element sees the same operations in the same order.
@Suite("Unrolled loops")
struct UnrollTests {
    /// Compiles `graph` with TinyCC at each unroll factor and expects every output's bits to
    /// equal the interpreter's.
    func expectSameBits(_ graph: Graph, _ inputs: [String: TensorData], factors: [Int] = [1, 2, 3, 4, 8, 16],
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reference = try Interpreter.evaluate(graph, inputs: inputs)
        for factor in factors {
            for useRuntime in [true, false] {
                var options = CEmitOptions(useRuntime: useRuntime)
                options.unroll = factor
                let source = try emitC(graph, options: options)
                let kernel = try Kernel(source: source, inputNames: graph.inputs.map(\.name), outputNames: graph.outputs.map(\.name))
                let outputs = try kernel(inputs)
                for port in graph.outputs {
                    let got = outputs[port.name]!.scalars, want = reference[port.name]!.scalars
                    #expect(sameBits(got, want), "output \(port.name), unroll \(factor), runtime \(useRuntime): \(firstDifference(got, want))",
                            sourceLocation: sourceLocation)
                }
            }
        }
    }

    @Test(arguments: [2, 17, 37, 1000])
    func rosenbrockGradientWithEveryRemainder(n: Int) throws {
        let program = try NablaProgram(contentsOfFile: example("rosenbrock.nabla"), dims: ["N": n])
        var rng = SeededRandom(seed: UInt64(n))
        var inputs: [String: TensorData] = [:]
        for port in program.graph.inputs { inputs[port.name] = .random(program.graph.nodes[port.node].shape, in: -2...2, using: &rng) }
        try expectSameBits(program.graph, inputs)
    }

    @Test func theLoopIsUnrolledAndItsSumIsOneExpression() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [100])
        let f = try sum(square(x[.upTo(-1)]) - x[.from(1)])
        var options = CEmitOptions()
        options.unroll = 4
        let program = try Compilation(g.graph(outputs: ["f": f])).program(options)
        let unrolled = allLoops(in: program.parts[0].statements).filter { $0.step == 4 }
        try #require(unrolled.count == 1)
        let body = unrolled[0].body
        // The four copies' terms are added to the running sum in one statement, in order:
        // s = (((s + t0) + t1) + t2) + t3.
        let sums = body.compactMap { statement -> LoopIR.Expression? in
            if case let .assign(.variable(.scalar(_)), e) = statement { return e } else { return nil }
        }
        try #require(sums.count == 1)
        var chain = sums[0], terms = 0
        while case let .binary(.add, rest, _) = chain, terms < 4 { chain = rest; terms += 1 }
        #expect(terms == 4)
        guard case .variable(.scalar(_)) = chain else { Issue.record("the chain does not start from the sum: \(chain)"); return }
        // x[i + 1] of one copy is x[i] of the next: each of the five elements is loaded once.
        var loads: [LoopIR.Expression: Int] = [:]
        LoopIR.forEachExpression(in: body, onCall: { _ in }) { e in if case .load = e { loads[e, default: 0] += 1 } }
        #expect(loads.count == 5 && loads.values.allSatisfy { $0 == 1 }, "\(loads)")
    }

    @Test func nestedLoopsBroadcastsAndSumsAlongEitherAxis() throws {
        let g = GraphBuilder()
        let a = try g.input("a", shape: [7, 45]), b = try g.input("b", shape: [45]), c = try g.input("c", shape: [7, 1])
        let w = try g.input("w", shape: [1])
        let y = try sin(a * b + c) * w
        let rows = try sum(y * a, axis: 1)  // along the unrolled axis: one running sum per row
        let columns = try sum(exp(y), axis: 0)  // across it: each copy its own element
        let t = y.transposed * 2  // read across rows: a loop nest
        let graph = try g.graph(outputs: ["y": y, "rows": rows, "columns": columns, "t": t, "total": sum(t)])
        var rng = SeededRandom(seed: 11)
        try expectSameBits(graph, [
            "a": .random([7, 45], using: &rng), "b": .random([45], using: &rng),
            "c": .random([7, 1], using: &rng), "w": .random([1], using: &rng),
        ])
    }

    @Test func softmaxGradientAndStoredViews() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3, 40])
        let e = exp(x)
        let p = try e / sum(e, axis: 1).reshaped([3, 1])
        let graph = try g.graph(outputs: ["p": p, "pt": p.transposed, "g": gradient(of: sum(p * x), wrt: x)])
        var rng = SeededRandom(seed: 12)
        try expectSameBits(graph, ["x": .random([3, 40], using: &rng)])
    }

    @Test func specialValuesKeepTheirBits() throws {
        // Signed zeros, infinities and NaNs go through the same operations in the same order.
        let g = GraphBuilder()
        let x = try g.input("x", shape: [24])
        let y = try x * x - x[.from(0)] * 0.5
        let f = try sum(y) + sum(-x)
        let graph = try g.graph(outputs: ["y": y, "f": f, "g": gradient(of: f, wrt: x)])
        var values = [Double](repeating: -0.0, count: 24)
        values[3] = .infinity
        values[7] = -.infinity
        values[9] = .nan
        values[12] = Double("1e-310")!  // a subnormal (as a literal it draws a warning)
        values[13] = -1e308
        try expectSameBits(graph, ["x": TensorData(shape: [24], scalars: values)])
    }

    /// Two padded slices of one loop's values combined: the gradient of a stencil. The pad
    /// that starts later is carried in locals up to four positions back (nothing stored),
    /// stored beyond that; either operand order, several operations.
    @Test(arguments: [0, 1, 2, 3, 4, 5, 9])
    func padPairsAtEveryShift(shift: Int) throws {
        let (n, m) = (53, 40)
        for op in ["+", "-", "*"] {
            for memoryFirst in [true, false] {
                let g = GraphBuilder()
                let x = try g.input("x", shape: [n])
                let a = try sin(x[.range(start: 0, end: m, step: 1)]) * 3
                let b = try exp(x[.range(start: 1, end: m + 1, step: 1)]) - a  // one loop computes both
                func pad(_ t: Tensor, at start: Int) throws -> Tensor {
                    try g.apply(PadSlice(slice: Slice(starts: [start], ends: [start + m], steps: [1]), shape: [n]), [t])
                }
                let register = try pad(a, at: 2), memory = try pad(b, at: 2 + shift)
                let (l, r) = memoryFirst ? (memory, register) : (register, memory)
                let y: Tensor
                switch op {
                case "+": y = try l + r
                case "-": y = try l - r
                default: y = try l * r
                }
                let graph = try g.graph(outputs: ["y": y, "s": sum(y)])
                var values = (0..<n).map { sin(Double($0)) }
                values[7] = -0.0
                values[11] = .infinity
                try expectSameBits(graph, ["x": TensorData(shape: [n], scalars: values)], factors: [1, 2, 4, 16])
                // Unrolled, the later pad is carried (its buffer is never touched) up to the
                // maximum shift; rolled, it is stored.
                var options = CEmitOptions(useRuntime: true)
                options.unroll = 4
                let unrolled = try emitC(graph, options: options).code
                #expect(unrolled.contains("double *const b") == (shift > StorageDecision.maximumCarry), "shift \(shift)")
                #expect(try emitC(graph).code.contains("double *const b"))
            }
        }
    }

    /// Rolled loops (the cc tier, standalone C) recompute a small call-free memory pad's
    /// operand at the earlier position instead of storing it: nothing stored up to the
    /// maximum shift, the first positions written out with the pad's zeros, loops shorter
    /// than the shift, and the same bits as the interpreter on TinyCC and on cc -O3 (which
    /// vectorises that loop).
    @Test(arguments: [0, 1, 2, 3, 4, 5])
    func smallPadOperandsAreRecomputedInRolledLoops(shift: Int) throws {
        for m in [1, 2, 3, 40] {
            for memoryFirst in [true, false] {
                let n = m + shift + 3
                let g = GraphBuilder()
                let x = try g.input("x", shape: [n])
                let a = try x[.range(start: 0, end: m, step: 1)] * 3
                let b = try square(x[.range(start: 1, end: m + 1, step: 1)]) - a
                func pad(_ t: Tensor, at start: Int) throws -> Tensor {
                    try g.apply(PadSlice(slice: Slice(starts: [start], ends: [start + m], steps: [1]), shape: [n]), [t])
                }
                let register = try pad(a, at: 2), memory = try pad(b, at: 2 + shift)
                let y = try memoryFirst ? memory - register : register - memory
                let graph = try g.graph(outputs: ["y": y, "s": sum(y * y)])
                var values = (0..<n).map { cos(Double($0)) }
                values[0] = -0.0
                values[n - 1] = .infinity
                let inputs = ["x": try TensorData(shape: [n], scalars: values)]
                try expectSameBits(graph, inputs, factors: [1])
                let rolled = try emitC(graph).code
                #expect(rolled.contains("double *const b") == (shift > StorageDecision.maximumCarry), "shift \(shift), m \(m)")
                let reference = try Interpreter.evaluate(graph, inputs: inputs)
                let outputs = try Kernel(graph, backend: .cc)(inputs)
                for name in ["y", "s"] {
                    #expect(sameBits(outputs[name]!.scalars, reference[name]!.scalars), "cc, \(name), shift \(shift), m \(m)")
                }
            }
        }
    }

    @Test func everyExampleUnrolledMatchesTheInterpreter() throws {
        for path in exampleFiles() {
            let dims = path.hasSuffix("rosenbrock.nabla") ? ["N": 50] : [:]
            let program = try NablaProgram(contentsOfFile: path, dims: dims)
            var rng = SeededRandom(seed: 13)
            var inputs: [String: TensorData] = [:]
            for port in program.graph.inputs { inputs[port.name] = .random(program.graph.nodes[port.node].shape, using: &rng) }
            try expectSameBits(program.graph, inputs, factors: [16])
        }
    }
}

/// Random elementwise, slicing, broadcasting and reduction graphs with their gradients:
/// unrolled and rolled kernels give the interpreter's bits.
@Suite("Unrolled loops on random graphs")
struct RandomGraphUnrollTests {
    /// A random graph over a vector x of `n` elements and a matrix M of `rows` x `columns`.
    static func randomGraph(seed: UInt64) throws -> (Graph, [String: TensorData]) {
        var rng = SeededRandom(seed: seed)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
        let (n, rows, columns) = (pick(20...70), pick(2...7), pick(17...41))
        let g = GraphBuilder()
        let x = try g.input("x", shape: [n]), M = try g.input("M", shape: [rows, columns])
        var pool: [Tensor] = [x, M, M.transposed]
        func sameShape(as t: Tensor) -> Tensor? {
            let candidates = pool.filter { $0.shape == t.shape }
            return candidates.isEmpty ? nil : candidates[pick(0...(candidates.count - 1))]
        }
        for _ in 0..<pick(6...16) {
            let a = pool[pick(0...(pool.count - 1))]
            var made: Tensor?
            switch pick(0...9) {
            case 0: made = sin(a) * 1.5
            case 1: made = exp(a * 0.5)
            case 2: made = tanh(a)
            case 3: made = try square(a) - a
            case 4: if let b = sameShape(as: a) { made = try a * b + b }
            case 5: if let b = sameShape(as: a) { made = try a / (square(b) + 1) }
            case 6:  // neighbouring slices along the last axis, combined: a stencil
                let last = a.shape.rank - 1, length = a.shape[last]
                if length > 3 {
                    let k = pick(1...min(3, length - 2))
                    func cut(_ from: Int, _ to: Int) throws -> Tensor {
                        var starts = [Int](repeating: 0, count: a.shape.rank), ends = a.shape.dims
                        starts[last] = from
                        ends[last] = to
                        return try g.apply(Slice(starts: starts, ends: ends, steps: [Int](repeating: 1, count: a.shape.rank)), [a])
                    }
                    made = try cut(k, length) * 2 - cut(0, length - k)
                }
            case 7: made = try sum(a) * a
            case 8:  // normalise by row or column sums, read back as a broadcast
                if a.shape.rank == 2 {
                    let axis = pick(0...1)
                    made = try a / (sum(square(a), axis: axis).reshaped(axis == 1 ? [a.shape[0], 1] : [1, a.shape[1]]) + 1)
                }
            default: if a.shape.rank == 2 { made = try sum(a, axis: pick(0...1)) }
            }
            if let made { pool.append(made) }
        }
        var loss = sum(square(pool.last!))
        for t in pool.suffix(3) { loss = try loss + sum(t) }
        let grads = try gradient(of: loss, wrt: [x, M])
        let graph = try g.graph(outputs: ["loss": loss, "dx": grads[0], "dM": grads[1]])
        let inputs: [String: TensorData] = [
            "x": .random([n], using: &rng), "M": .random([rows, columns], using: &rng),
        ]
        return (graph, inputs)
    }

    @Test(arguments: 0..<40)
    func randomGraphKeepsItsBits(seed: Int) throws {
        let (graph, inputs) = try Self.randomGraph(seed: UInt64(seed) &* 7919 &+ 3)
        try UnrollTests().expectSameBits(graph, inputs, factors: [1, 16])
    }
}

extension RandomGraphUnrollTests {
    /// The random graphs do reach unrolled loops, loop nests and pad pairs.
    @Test func randomGraphsCoverUnrolledShapes() throws {
        var unrolled = 0, nests = 0, pairs = 0
        for seed in 0..<40 {
            let (graph, _) = try Self.randomGraph(seed: UInt64(seed) &* 7919 &+ 3)
            var options = CEmitOptions(useRuntime: true)
            options.unroll = 16
            let code = try emitC(graph, options: options).code
            unrolled += code.components(separatedBy: "+ 16 <=").count + code.components(separatedBy: "+ 8 <=").count - 2
            nests += code.components(separatedBy: "long i1 = 0;").count - 1
            pairs += code.components(separatedBy: "double k").count - 1
        }
        #expect(unrolled > 40 && nests > 10 && pairs > 5, "unrolled \(unrolled), nests \(nests), carried pads \(pairs)")
    }
}
