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
        let out = try expectKernelMatchesInterpreter(graph, point)
        #expect(out["y"]!.scalar == unrolledRecurrence(0.3, 0.2, steps: 20))
        let h = 1e-6
        let dy0 = (unrolledRecurrence(0.3 + h, 0.2, steps: 20) - unrolledRecurrence(0.3 - h, 0.2, steps: 20)) / (2 * h)
        let da = (unrolledRecurrence(0.3, 0.2 + h, steps: 20) - unrolledRecurrence(0.3, 0.2 - h, steps: 20)) / (2 * h)
        expectClose(out["dy0"]!.scalar, dy0, tolerance: 1e-7)
        expectClose(out["da"]!.scalar, da, tolerance: 1e-7)
        expectClose(out["ty"]!.scalar, da, tolerance: 1e-7)
    }
}

/// Checks every derivative output of a graph file against central finite differences (with
/// the interpreter) and its kernel against the interpreter bit for bit; returns the values.
@discardableResult
func checkFile(_ source: String, _ inputs: [String: TensorData], tolerance: Double = 1e-6, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: TensorData] {
    let program = try NablaProgram(source: source, fileName: "test.nabla")
    let values = try evaluateBoth(source, inputs, sourceLocation: sourceLocation)
    let results = try DerivativeCheck.check(program, at: inputs, computed: values)
    #expect(!results.isEmpty || program.derivatives.isEmpty, sourceLocation: sourceLocation)
    for result in results {
        #expect(result.passed && result.error <= tolerance, "\(result.output): error \(result.error)", sourceLocation: sourceLocation)
    }
    return values
}

@Suite("Loops in the language")
struct LoopLanguageTests {
    @Test func foldOverStepsMatchesTheUnrolledRecurrence() throws {
        let out = try checkFile("""
            input y0
            input a
            def step(y, k) = 0.9 * sin(y) + a
            output y = fold(step, y0, 50)
            grad y wrt y0, a
            hessian y wrt a
            """, ["y0": TensorData(0.3), "a": TensorData(0.2)])
        #expect(out["y"]!.scalar == unrolledRecurrence(0.3, 0.2, steps: 50))
    }

    @Test func theStepNumberIsAScalarCountingFromZero() throws {
        let out = try checkFile("""
            input x
            def add(c, k) = c + k * x
            output s = fold(add, 0, 5)
            grad s wrt x
            """, ["x": TensorData(2)])
        #expect(out["s"]!.scalar == 20)  // (0 + 1 + 2 + 3 + 4) x
        #expect(out["ds/dx"]!.scalar == 10)
    }

    @Test func foldAndScanOverRowsAndMapOverRows() throws {
        let xs = try TensorData(shape: [4, 2], scalars: [1, 2, -1, 0.5, 3, -2, 0.25, 1])
        let out = try checkFile("""
            input xs: [4, 2]
            input w: [2]
            def acc(c, x) = c + sum(x * w)^2
            def walk(c, x) = tanh(c + x * w)
            def norm2(x) = sum(x^2) * w
            output f = fold(acc, 0, xs)
            output s = scan(walk, [0, 0], xs)
            output m = map(norm2, xs)
            output L = f + sum(s) + sum(m)
            grad L wrt xs, w
            jacobian s wrt w
            """, ["xs": xs, "w": try TensorData(shape: [2], scalars: [0.5, -0.25])])
        #expect(out["s"]!.shape == [4, 2])
        #expect(out["m"]!.shape == [4, 2])
        let rows = (0..<4).map { Array(xs.scalars[(2 * $0)..<(2 * $0 + 2)]) }
        let f = rows.reduce(0.0) { $0 + pow($1[0] * 0.5 - $1[1] * 0.25, 2) }
        expectClose(out["f"]!.scalar, f, tolerance: 1e-15)
        #expect(out["m"]!.scalars[0] == 5 * 0.5)
    }

    @Test func loopsNestAndComposeWithEveryDerivative() throws {
        try checkFile("""
            input X: [3, 2]
            input p
            input v
            def inner(x) = sin(p * x)
            def around(c, k) = c * 0.5 + sum(map(inner, X)) * k
            output F = fold(around, p, 4)
            grad F wrt p
            hessian F wrt p
            jvp F wrt p along v
            hvp F wrt p along v
            """, ["X": try TensorData(shape: [3, 2], scalars: [0.1, 0.2, 0.3, -0.4, 0.5, 0.6]), "p": TensorData(0.7), "v": TensorData(1.5)])
    }

    /// Higher orders through a loop: t^3 as three multiplications by t in a fold, its Taylor
    /// coefficients at 2 (reverse mode over reverse mode over ...).
    @Test func taylorCoefficientsThroughALoop() throws {
        let out = try evaluateBoth("""
            input t
            def times(c, k) = c * t
            output f = fold(times, 1, 3)
            taylor f wrt t at 2 order 4
            """, ["t": TensorData(0.5)])
        #expect(out["taylor(f/t)"]!.scalars == [8, 12, 6, 1, 0])
    }

    /// Reverse over reverse through a loop over a sequence with a captured parameter: the
    /// gradient of a gradient against central differences of the first gradient.
    @Test func reverseOverReverseThroughALoop() throws {
        let g = GraphBuilder()
        let xs = try g.input("xs", shape: [5, 2]), a = try g.input("a")
        let y = try fold(a, over: xs) { c, x in try sin(c * x[0]) + a * x[1] * c }
        let first = try gradient(of: y, wrt: [a, xs])
        let second = try gradient(of: first[0] + sum(first[1] * first[1]), wrt: [a])
        let graph = try g.graph(outputs: ["da": first[0], "dxs": first[1], "second": second[0]])
        var rng = SeededRandom(seed: 31)
        let point = ["xs": TensorData.random([5, 2], in: -0.8...0.8, using: &rng), "a": TensorData(0.4)]
        let out = try expectKernelMatchesInterpreter(graph, point)
        func objective(_ a: Double) throws -> Double {
            let values = try Interpreter.evaluate(graph, inputs: ["xs": point["xs"]!, "a": TensorData(a)])
            return values["da"]!.scalar + values["dxs"]!.scalars.reduce(0) { $0 + $1 * $1 }
        }
        let h = 1e-6
        expectClose(out["second"]!.scalar, (try objective(0.4 + h) - objective(0.4 - h)) / (2 * h), tolerance: 1e-6)
    }

    @Test func branchesInsideLoopsStayBranchSafe() throws {
        let out = try checkFile("""
            input xs: [3]
            def acc(c, x) = c + where(x > 0, log(x), 0)
            output f = fold(acc, 0, xs)
            grad f wrt xs
            """, ["xs": try TensorData(shape: [3], scalars: [2, 0.5, 4])])
        #expect(out["df/dxs"]!.scalars == [0.5, 2, 0.25])
        let at = try evaluateBoth("""
            input xs: [3]
            def acc(c, x) = c + where(x > 0, log(x), 0)
            output f = fold(acc, 0, xs)
            grad f wrt xs
            """, ["xs": try TensorData(shape: [3], scalars: [0, -1, 4])])
        #expect(at["df/dxs"]!.scalars == [0, 0, 0.25])
        // The branch not taken inside the loop stays out of the derivative outside it too.
        let outside = try evaluateBoth("""
            input xs: [3]
            def acc(c, x) = c + where(x > -10, x, 0)
            output f = fold(acc, 0, log(xs))
            grad f wrt xs
            """, ["xs": try TensorData(shape: [3], scalars: [0, 1, 4])])
        #expect(outside["df/dxs"]!.scalars == [0, 1, 0.25])
    }

    /// The C of a loop is one loop over its body: 10 and 100,000 steps give the same C but for
    /// the numbers in it.
    @Test func theCDoesNotGrowWithTheTripCount() throws {
        func c(_ steps: Int) throws -> String {
            let program = try NablaProgram(source: """
                input y0
                input a
                def step(y, k) = 0.999 * sin(y) + 0.001 * a
                output y = fold(step, y0, \(steps))
                grad y wrt y0, a
                """, fileName: "t")
            return try emitC(program.graph).code
        }
        let small = try c(10), large = try c(100_000)
        func shape(_ text: String) -> String { text.replacingOccurrences(of: "[0-9]+", with: "N", options: .regularExpression) }
        #expect(shape(small) == shape(large))
        #expect(abs(small.count - large.count) < 200)
    }
}

@Suite("Loops: elementwise maps")
struct ElementwiseMapTests {
    @Test func aMapWhoseBodyIsElementwiseIsNoLoopAndFuses() throws {
        var rng = SeededRandom(seed: 21)
        let X = TensorData.random([5, 3], in: -1...1, using: &rng), w = TensorData.random([3], in: -1...1, using: &rng)
        let source = """
            input X: [5, 3]
            input w: [3]
            def f(r) = sin(r) * w + 1
            def g(r) = w * 2
            output M = map(f, X)
            output C = map(g, X)
            output D = sin(X) * w + 1
            output L = sum(M^2)
            grad L wrt X, w
            """
        let out = try checkFile(source, ["X": X, "w": w])
        #expect(out["M"]!.scalars.map(\.bitPattern) == out["D"]!.scalars.map(\.bitPattern))
        #expect(out["C"]!.shape == [5, 3])
        #expect(out["C"]!.scalars == (0..<15).map { w.scalars[$0 % 3] * 2 })
        let program = try NablaProgram(source: source, fileName: "t")
        #expect(!program.graph.nodes.contains { $0.operation is Scan })
        // One fused loop computes M (and D, the same nodes).
        let statistics = try compileStatistics(NablaProgram(source: "input X: [5, 3]\ninput w: [3]\ndef f(r) = sin(r) * w + 1\noutput M = map(f, X)\n", fileName: "t").graph)
        #expect(statistics.loops == 1 && statistics.loopSummaries.isEmpty)
    }
}

@Suite("Loops: bad input")
struct LoopDiagnosticTests {
    @Test func aBodyReturningAnotherShapeThanItsCarry() {
        #expect(diagnostics("input x: [2]\ndef grow(c, k) = [c[0], c[1], k]\noutput y = fold(grow, x, 3)\n") == """
            test.nabla:3:12: error: the body of 'grow' returns shape [3] for a carry of shape [2]; 'fold' needs the shape it takes
            3 | output y = fold(grow, x, 3)
              |            ^~~~~~~~~~~~~~~~
            1 error in test.nabla
            """)
    }

    @Test func mapOverAScalarUnknownFunctionsAndWrongArity() {
        #expect(diagnostics("input x\ndef f(r) = r\noutput y = map(f, x)\n").contains("test.nabla:3:12: error: 'map' runs over the rows of a tensor, but its last argument is a scalar"))
        #expect(diagnostics("input x: [2]\noutput y = map(nothing, x)\n").contains("test.nabla:2:16: error: unknown function 'nothing'"))
        #expect(diagnostics("input x: [2]\ndef f(a, b) = a\noutput y = map(f, x)\n").contains("error: 'map' needs a function of 1 parameter (a row); 'f' takes 2"))
        #expect(diagnostics("input x: [2]\noutput y = map(sin, x)\n").contains("error: 'map' takes a function defined with 'def'; wrap the built-in 'sin' in one"))
        #expect(diagnostics("input x: [2]\noutput y = fold(x, x, 3)\n").contains("test.nabla:2:17: error: 'x' is a value; the first argument of 'fold' is the name of a function defined with 'def'"))
    }

    @Test func reverseModeThatWouldStoreTooMuchIsALocatedError() {
        let text = diagnostics("input y0\ndef f(y, k) = sin(y)\noutput y = fold(f, y0, 1000000000)\ngrad y wrt y0\n")
        #expect(text.contains("test.nabla:4:1: error: invalid argument to scan: reverse mode through this loop of 1000000000 steps would store 1000000000 doubles"), "\(text)")
    }

    @Test func anErrorInABodyNotesTheLoop() {
        #expect(diagnostics("input x: [3]\ndef f(c, k) = c @ [1, 2]\noutput y = fold(f, x, 2)\n") == """
            test.nabla:2:15: error: cannot apply '@' to shapes [3] and [2]: inner dimensions differ (3 and 2)
            2 | def f(c, k) = c @ [1, 2]
              |               ^~~~~~~~~~
            test.nabla:3:12: note: in the body of this 'fold' over 'f'
            3 | output y = fold(f, x, 2)
              |            ^~~~~~~~~~~~~
            1 error in test.nabla
            """)
    }

    @Test func aLoopOverItselfIsAnError() {
        let text = diagnostics("input x\ndef f(c, k) = fold(f, c, 2)\noutput y = fold(f, x, 3)\n")
        #expect(text.contains("error: recursive loop: the body of 'f' runs a loop over itself ('f' -> 'f')"), "\(text)")
    }
}

@Suite("Jacobians and Hessians as loops over directions")
struct LoopedJacobianTests {
    @Test func largeHessiansAndJacobiansAreLoopsAndMatchFiniteDifferences() throws {
        var rng = SeededRandom(seed: 11)
        let x = TensorData.random([12], in: -1...1, using: &rng)
        let out = try checkFile("""
            input x: [12]
            output f = sum(100 * (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)
            output e = sin(x[:10]) * x[2:]
            hessian f wrt x
            jacobian e wrt x
            """, ["x": x], tolerance: 1e-5)
        // The closed form of the Hessian's diagonal.
        let v = x.scalars
        for i in 0..<12 {
            var h = 0.0
            if i < 11 { h += 1200 * v[i] * v[i] - 400 * v[i + 1] + 2 }
            if i > 0 { h += 200 }
            expectClose(out["d2f/dx2"]!.scalars[i * 12 + i], h, tolerance: 1e-12)
        }
        let program = try NablaProgram(source: "input x: [12]\noutput f = sum(x^3)\nhessian f wrt x\n", fileName: "t")
        #expect(program.graph.nodes.contains { $0.operation is Scan })
    }

    @Test func reverseModeJacobiansLoopOverRows() throws {
        var rng = SeededRandom(seed: 12)
        try checkFile("""
            input A: [10, 30]
            input x: [30]
            output e = tanh(A @ x)
            jacobian e wrt x
            """, ["A": TensorData.random([10, 30], in: -0.3...0.3, using: &rng), "x": TensorData.random([30], in: -1...1, using: &rng)], tolerance: 1e-5)
    }

    /// A reverse-mode Jacobian of a loop's result loops over its rows; the loop's record of its
    /// carries is made once, outside that loop, not once per row.
    @Test func aReverseJacobianThroughALoopRecordsTheLoopOnce() throws {
        let source = """
            input x: [20]
            input A: [10, 20]
            input B: [10, 10]
            def step(c, k) = tanh(B @ c)
            h = fold(step, A @ x, 5)
            jacobian h wrt x
            """
        var rng = SeededRandom(seed: 51)
        let point = ["x": TensorData.random([20], in: -1...1, using: &rng), "A": TensorData.random([10, 20], in: -0.3...0.3, using: &rng),
                     "B": TensorData.random([10, 10], in: -0.5...0.5, using: &rng)]
        try checkFile(source, point, tolerance: 1e-6)
        let graph = try simplify(try NablaProgram(source: source, fileName: "t").graph)
        let directions = graph.nodes.compactMap { $0.operation as? Scan }.filter { $0.steps == 10 }
        #expect(directions.count == 1)
        let inside = directions.first.map { $0.body.graph.nodes.compactMap { $0.operation as? Scan } } ?? []
        #expect(inside.count == 1 && inside.allSatisfy { $0.reverse && !$0.keepsCarries }, "\(inside.map(\.name))")
    }

    /// The Hessian of P2's Rosenbrock is one loop: its C is the same at N = 50 and N = 500 but
    /// for the numbers in it.
    @Test func theHessiansCDoesNotGrowWithN() throws {
        func c(_ n: Int) throws -> String {
            let program = try NablaProgram(source: "dim N = \(n)\ninput x: [N]\noutput f = sum(100 * (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)\nhessian f wrt x\n", fileName: "t")
            return try emitC(program.graph, options: CEmitOptions(useRuntime: true)).code
        }
        func shape(_ text: String) -> String { text.replacingOccurrences(of: "[0-9]+", with: "N", options: .regularExpression) }
        let small = try c(50), large = try c(500)
        #expect(shape(small) == shape(large))
        #expect(large.utf8.count < 20_000)
    }
}

/// Defects a review found in loops and branches, each with the case that showed it.
@Suite("Loops: reviewed edge cases")
struct LoopEdgeCaseTests {
    /// A carry dropped by a branch at a later step gets an exact zero cotangent there, and the
    /// zero stays exact back through the earlier step (log at 0 would make it NaN).
    @Test func aBranchNotTakenAtALaterStepMasksEarlierSteps() throws {
        let out = try evaluateBoth("""
            input x
            input y
            def f(c, k) = [where(k > 0, 1, c[1]), log(c[0])]
            output L = sum(fold(f, [x, y], 2))
            grad L wrt x, y
            """, ["x": TensorData(0), "y": TensorData(2)])
        #expect(out["L"]!.scalar == 1 + Foundation.log(2))
        #expect(out["dL/dx"]!.scalar == 0)
        #expect(out["dL/dy"]!.scalar == 0.5)
    }

    /// The guard that keeps zeros exact must not cut second derivatives where a first
    /// derivative is zero (a stationary point): f'' in closed form.
    @Test func secondDerivativesAtStationaryPointsThroughBranches() throws {
        let quartic = try checkFile("""
            input x
            output f = maximum((x * x - 1)^2, -1)
            hessian f wrt x
            """, ["x": TensorData(1)], tolerance: 1e-5)
        #expect(quartic["d2f/dx2"]!.scalar == 8)
        let root = try checkFile("""
            input x
            output f = where(x > -10, (sqrt(x) - 1)^2, 0)
            hessian f wrt x
            """, ["x": TensorData(1)], tolerance: 1e-5)
        #expect(root["d2f/dx2"]!.scalar == 0.5)
        // Reverse over reverse too: the gradient of the gradient.
        let g = GraphBuilder()
        let x = try g.input("x")
        let f = try maximum(((x * x) - 1) ** 2, g.constant(-1))
        let first = try gradient(of: f, wrt: x)
        let second = try gradient(of: first, wrt: x)
        let out = try expectKernelMatchesInterpreter(try g.graph(outputs: ["f1": first, "f2": second]), ["x": TensorData(1)])
        #expect(out["f1"]!.scalar == 0)
        #expect(out["f2"]!.scalar == 8)
        // The first-order guarantee stays: the branch not taken adds an exact zero.
        let safe = try evaluateBoth("input x\noutput f = where(x > 0, sqrt(x), 0)\ngrad f wrt x\n", ["x": TensorData(0)])
        #expect(safe["df/dx"]!.scalar == 0)
    }

    /// A Jacobian looped over directions with nothing to capture (the identity).
    @Test func theJacobianOfAVectorWithRespectToItself() throws {
        var rng = SeededRandom(seed: 41)
        let out = try evaluateBoth("input x: [9]\njacobian x wrt x\n", ["x": TensorData.random([9], in: -1...1, using: &rng)])
        let identity = (0..<81).map { $0 / 9 == $0 % 9 ? 1.0 : 0.0 }
        #expect(out["dx/dx"]!.scalars == identity)
    }

    /// A loop reading a one-element view of a scalar the kernel keeps in a local.
    @Test func loopsOverViewsOfScalarsKeptInLocals() throws {
        let out = try evaluateBoth("""
            input a
            def step(c, k) = c * 2 + 1
            def twice(r) = r * r + k0
            k0 = sin(a)
            output f = fold(step, reshape(a * 2, [1]), 3)
            output m = map(twice, reshape(a * 3, [1, 1]))
            output s = scan(step, reshape(a * 5, [1, 1]), 2)
            output L = sum(f) + sum(m) + sum(s)
            grad L wrt a
            """, ["a": TensorData(0.25)])
        // f = 8 (2a) + 7, m = (3a)^2 + sin a, s = [10a + 1, 20a + 3].
        let dL: Double = 16 + 4.5 + Foundation.cos(0.25) + 30
        expectClose(out["dL/da"]!.scalar, dL, tolerance: 1e-15)
        #expect(out["f"]!.scalars == [11.0])
        let m: Double = 0.5625 + Foundation.sin(0.25)
        #expect(out["m"]!.scalars == [m])
        #expect(out["s"]!.scalars == [3.5, 8.0])
    }

    /// A parameter named like a dim would be read as the dim where a whole number is needed
    /// (steps, shapes, indices): it is an error, located at the parameter.
    @Test func aParameterCannotTakeTheNameOfADim() {
        let before = diagnostics("dim N = 3\ninput x\ndef f(c, N) = c * N\noutput y = fold(f, x, 2)\n")
        #expect(before.contains("test.nabla:3:10: error: parameter 'N' has the name of a dim; give it another name"), "\(before)")
        let after = diagnostics("input x\ndef f(c, N) = c * N\ndim N = 3\noutput y = fold(f, x, N)\n")
        #expect(after.contains("test.nabla:3:5: error: dim 'N' has the name of a parameter of 'f', defined before it"), "\(after)")
    }

    /// Steps and shapes large enough to overflow a count are errors, not traps.
    @Test func hugeLoopsAreErrorsNotOverflows() {
        let outputs = diagnostics("input x: [100000]\ndef f(c, k) = c + 1\noutput y = scan(f, x, 1000000000000000)\n")
        #expect(outputs.contains("error: cannot run 'scan' over 'f'") && outputs.contains("elements"), "\(outputs)")
        let carries = diagnostics("input x: [100000]\ndef f(c, k) = sin(c)\noutput y = sum(fold(f, x, 1000000000000000))\ngrad y wrt x\n")
        #expect(carries.contains("error:") && carries.contains("scan"), "\(carries)")
    }

    /// Simplification computes small loops of constants, and leaves long ones to the kernel
    /// (the interpreter would run them at compile time).
    @Test func onlySmallConstantLoopsAreFoldedAtCompileTime() throws {
        func scans(_ steps: Int) throws -> Int {
            let program = try NablaProgram(source: "def f(c, k) = 0.5 * c + 1\noutput y = fold(f, 1, \(steps))\n", fileName: "t")
            let simplified = try simplify(program.graph)
            return simplified.nodes.filter { $0.operation is Scan }.count
        }
        #expect(try scans(10) == 0)
        #expect(try scans(1_000_000) == 1)
        let long = try evaluateBoth("def f(c, k) = 0.5 * c + 1\noutput y = fold(f, 1, 100000)\n", [:])
        #expect(long["y"]!.scalar == 2)
    }

    /// `compile --stats` lists the loops inside bodies too, with what each stores.
    @Test func statisticsListNestedLoops() throws {
        let program = try NablaProgram(source: """
            input x: [3]
            def inner(c, k) = sin(c) * 0.5 + k
            def step(c, k) = fold(inner, c, 4) + c
            output y = sum(fold(step, x, 10))
            grad y wrt x
            """, fileName: "t")
        let loops = try compileStatistics(program.graph).loopSummaries
        #expect(loops.map(\.path) == [[0], [0, 0], [1], [1, 0], [1, 1]])
        #expect(loops.map(\.steps) == [10, 4, 10, 4, 4])
        // The outer forward loop records its 3-carry before each of 10 steps; inside the reverse
        // body, the inner loop is rerun recording its carry before each of its 4 steps.
        #expect(loops[0].storedBytes == 10 * 3 * 8)
        #expect(loops.filter { $0.path.count == 2 }.map(\.storedBytes).sorted() == [0, 0, 4 * 3 * 8])
        let text = try compileStatistics(program.graph).description
        #expect(text.contains("  loop 1.0:"), "\(text)")
    }

    /// Loops nest up to `maximumLoopNesting` deep; deeper is a located error, not a crash.
    @Test func loopNestingIsBounded() throws {
        func nested(_ depth: Int) -> String {
            var text = "input x\ndef f0(c, k) = c + 1\n"
            for d in 1...depth { text += "def f\(d)(c, k) = fold(f\(d - 1), c, 1)\n" }
            return text + "output y = fold(f\(depth), x, 1)\ngrad y wrt x\n"
        }
        let deep = try evaluateBoth(nested(maximumLoopNesting - 1), ["x": TensorData(2)])
        #expect(deep["y"]!.scalar == 3)
        #expect(deep["dy/dx"]!.scalar == 1)
        let text = diagnostics(nested(500))
        #expect(text.contains("loops nest more than \(maximumLoopNesting) deep"), "\(text)")
        #expect(text.contains("test.nabla:"), "\(text)")
    }

    /// With the Swift API, a loop written in a loop's body belongs to that body even when its
    /// initial value comes from outside: its body may read the outer body's carry.
    @Test func swiftLoopsInsideBodiesReadTheOuterBody() throws {
        let g = GraphBuilder()
        let x = try g.input("x"), a = try g.input("a")
        // Outer: c -> c + (inner fold of 3 steps from a: s -> s + c).
        let y = try fold(x, steps: 2) { c, _ in
            try c + fold(a, steps: 3) { s, _ in try s + c }
        }
        let grads = try gradient(of: y, wrt: [x, a])
        let out = try expectKernelMatchesInterpreter(try g.graph(outputs: ["y": y, "dx": grads[0], "da": grads[1]]), ["x": TensorData(1), "a": TensorData(0.5)])
        // Step: c -> 4c + a, twice: 16x + 5a.
        #expect(out["y"]!.scalar == 16 + 2.5)
        #expect(out["dx"]!.scalar == 16)
        #expect(out["da"]!.scalar == 5)
    }
}
