import Foundation
import Testing
@testable import Nabla

/// Evaluates a graph file's outputs with the interpreter and with a TinyCC kernel, expects the
/// two to agree bit for bit, and returns them.
func evaluateBoth(_ source: String, _ inputs: [String: TensorData], sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: TensorData] {
    let program = try NablaProgram(source: source, fileName: "test.nabla")
    let reference = try Interpreter.evaluate(program.graph, inputs: inputs)
    let compiled = try Kernel(program.graph)(inputs)
    for port in program.graph.outputs {
        let r = reference[port.name]!.scalars, c = compiled[port.name]!.scalars
        #expect(sameBits(r, c), "\(port.name): kernel and interpreter differ at \(firstDifference(r, c))", sourceLocation: sourceLocation)
    }
    return reference
}

@Suite("Selection: the branch not taken contributes nothing")
struct BranchSafeDerivativeTests {
    @Test func whereOfLogHasZeroGradientWhereTheLogIsNotTaken() throws {
        let out = try evaluateBoth("""
            input x: [4]
            output f = sum(where(x > 0, log(x), 0))
            grad f wrt x
            hessian f wrt x
            """, ["x": TensorData(shape: [4], scalars: [0, -1, 2, 0.5])])
        #expect(out["df/dx"]!.scalars == [0, 0, 0.5, 2])
        #expect(out["d2f/dx2"]!.scalars == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.25, 0, 0, 0, 0, -4])
    }

    @Test func branchesWithInfiniteOrUndefinedDerivativesStayOut() throws {
        // Each branch not taken has a derivative of inf or NaN at these points (0 * log 0,
        // sqrt at 0 and below, 1/x at 0, log under max and relu).
        let out = try evaluateBoth("""
            input x: [3]
            output a = sum(where(x > 0, x * log(x), x^2))
            output b = sum(where(x > 0, sqrt(x), -x))
            output c = sum(where(x == 0, 1, 1 / x))
            output d = sum(maximum(log(x), -1))
            output e = sum(relu(log(x)))
            grad a wrt x
            grad b wrt x
            grad c wrt x
            grad d wrt x
            grad e wrt x
            """, ["x": TensorData(shape: [3], scalars: [0, -1, 3])])
        #expect(out["da/dx"]!.scalars == [0, -2, log(3.0) + 1])
        #expect(out["db/dx"]!.scalars == [-1, -1, 0.5 / 3.0.squareRoot()])
        #expect(out["dc/dx"]!.scalars == [0, -1, -1.0 / 9])
        #expect(out["dd/dx"]!.scalars[0] == 0)
        #expect(out["dd/dx"]!.scalars[2] == 1.0 / 3)
        #expect(out["de/dx"]!.scalars[0] == 0)
        #expect(out["de/dx"]!.scalars[2] == 1.0 / 3)
    }

    @Test func forwardModeSelectsTheTangentToo() throws {
        let out = try evaluateBoth("""
            input x: [3]
            input v: [3]
            output f = sum(where(x > 0, log(x), 2 * x))
            jvp f wrt x along v
            hvp f wrt x along v
            """, ["x": TensorData(shape: [3], scalars: [0, -1, 2]), "v": TensorData(shape: [3], scalars: [1, 1, 1])])
        #expect(out["df/dx.v"]!.scalar == 2 + 2 + 0.5)
        #expect(out["d2f/dx2.v"]!.scalars == [0, 0, -0.25])
    }

    @Test func swiftBuilderHasTheSameGuarantee() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3])
        let f = sum(try Nabla.where(x .> 0, log(x), 0))
        let graph = try g.graph(outputs: ["df": gradient(of: f, wrt: x)])
        let out = try expectKernelMatchesInterpreter(graph, ["x": TensorData(shape: [3], scalars: [0, -1, 4])])
        #expect(out["df"]!.scalars == [0, 0, 0.25])
    }

    @Test func theGuardCostsNothingWithoutASelection() throws {
        // No selecting operation: the backward pass is built as before, without comparisons.
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3])
        let graph = try g.graph(outputs: ["df": gradient(of: sum(log(x) * sqrt(x)), wrt: x)])
        #expect(!graph.nodes.contains { $0.operation is Select || $0.operation is Compare })
    }
}

@Suite("Selection: ties, comparisons and masks")
struct SelectionSemanticsTests {
    @Test func tiesShareTheDerivativeEvenly() throws {
        let out = try evaluateBoth("""
            input x: [3]
            input A: [2, 2]
            output m = max(x)
            output n = sum(min(A, 1))
            output p = sum(maximum(x, x))
            output q = sum(minimum(x, 3))
            grad m wrt x
            grad n wrt A
            grad p wrt x
            grad q wrt x
            """, ["x": TensorData(shape: [3], scalars: [1, 3, 3]), "A": TensorData(shape: [2, 2], scalars: [1, 1, 0, 2])])
        #expect(out["m"]!.scalar == 3)
        #expect(out["dm/dx"]!.scalars == [0, 0.5, 0.5])
        #expect(out["dn/dA"]!.scalars == [0.5, 0.5, 1, 0])
        #expect(out["dp/dx"]!.scalars == [1, 1, 1])
        #expect(out["dq/dx"]!.scalars == [1, 0.5, 0.5])
    }

    @Test func tangentOfMaxAtATieIsTheMeanOfTheTiedTangents() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3]), t = try g.input("t", shape: [3])
        let m = max(x)
        let graph = try g.graph(outputs: ["tm": jvp(of: m, wrt: [x], tangents: [t])])
        let out = try expectKernelMatchesInterpreter(graph, ["x": TensorData(shape: [3], scalars: [2, 0, 2]), "t": TensorData(shape: [3], scalars: [1, 5, 3])])
        #expect(out["tm"]!.scalar == 2)
    }

    @Test func comparisonsFollowIEEEAndMasksCountNaNAsTrue() throws {
        let nan = Double.nan
        let out = try evaluateBoth("""
            input x: [4]
            output lt = x < 1
            output le = x <= 1
            output gt = x > 1
            output ge = x >= 1
            output eq = x == 1
            output ne = x != 1
            output both = x and 1
            output either = x or 0
            output neither = not x
            output pick = where(x, 10, 20)
            output big = max(x)
            output small = maximum(x, 0)
            """, ["x": TensorData(shape: [4], scalars: [0, 1, 2, nan])])
        #expect(out["lt"]!.scalars == [1, 0, 0, 0])
        #expect(out["le"]!.scalars == [1, 1, 0, 0])
        #expect(out["gt"]!.scalars == [0, 0, 1, 0])
        #expect(out["ge"]!.scalars == [0, 1, 1, 0])
        #expect(out["eq"]!.scalars == [0, 1, 0, 0])
        #expect(out["ne"]!.scalars == [1, 0, 1, 1])
        #expect(out["both"]!.scalars == [0, 1, 1, 1])
        #expect(out["either"]!.scalars == [0, 1, 1, 1])
        #expect(out["neither"]!.scalars == [1, 0, 0, 0])
        #expect(out["pick"]!.scalars == [20, 10, 10, 10])
        #expect(out["big"]!.scalar.isNaN)
        #expect(out["small"]!.scalars[0...2] == [0, 1, 2])
        #expect(out["small"]!.scalars[3].isNaN)
    }

    @Test func precedenceComparisonsLooserThanArithmeticNotTighterThanAndTighterThanOr() throws {
        let out = try evaluateBoth("""
            input a
            input b
            output p = a + 1 > b * 2
            output q = not a > b and b > 0 or a == 3
            output r = not (a > b and b > 0)
            output s = a > 0 and b > 0 and a < b
            """, ["a": TensorData(3), "b": TensorData(1)])
        #expect(out["p"]!.scalar == 1)  // 4 > 2
        #expect(out["q"]!.scalar == 1)  // ((not 3 > 1) and 1 > 0) or 3 == 3
        #expect(out["r"]!.scalar == 0)
        #expect(out["s"]!.scalar == 0)
    }

    @Test func clipSignAndTheirDerivatives() throws {
        let out = try evaluateBoth("""
            input x: [5]
            output c = clip(x, -1, 1)
            output s = sign(x)
            output L = sum(clip(x, -1, 1) * x)
            grad L wrt x
            """, ["x": TensorData(shape: [5], scalars: [-3, -0.5, 0, 0.5, 3])])
        #expect(out["c"]!.scalars == [-1, -0.5, 0, 0.5, 1])
        #expect(out["s"]!.scalars == [-1, -1, 0, 1, 1])
        // d/dx (clip(x) x) = clip'(x) x + clip(x).
        #expect(out["dL/dx"]!.scalars == [-1, -1, 0, 1, 1])
    }
}

@Suite("Lists of expressions")
struct ListLiteralTests {
    @Test func aRightHandSideWrittenAsInATextbook() throws {
        let out = try evaluateBoth("""
            input x: [2]
            input p: [1]
            output f = [x[1], -p[0] * x[0]]
            output L = sum([x[1], -p[0] * x[0]] ^ 2)
            grad L wrt x
            grad L wrt p
            """, ["x": TensorData(shape: [2], scalars: [2, 3]), "p": TensorData(shape: [1], scalars: [0.5])])
        #expect(out["f"]!.shape == [2])
        #expect(out["f"]!.scalars == [3, -1])
        // L = x1^2 + p^2 x0^2.
        #expect(out["dL/dx"]!.scalars == [2 * 0.25 * 2, 6])
        #expect(out["dL/dp"]!.scalars == [2 * 0.5 * 4])
    }

    @Test func nestedListsStackRowsAndConstantListsStayConstant() throws {
        let program = try NablaProgram(source: """
            input a
            input v: [2]
            output M = [[a, 1], [2, a * a]]
            output R = [v, 2 * v, [5, 6]]
            output K = [[1, 2], [3, 4]]
            """, fileName: "t")
        let out = try expectKernelMatchesInterpreter(program.graph, ["a": TensorData(3), "v": TensorData(shape: [2], scalars: [1, 2])])
        #expect(out["M"]!.shape == [2, 2])
        #expect(out["M"]!.scalars == [3, 1, 2, 9])
        #expect(out["R"]!.shape == [3, 2])
        #expect(out["R"]!.scalars == [1, 2, 2, 4, 5, 6])
        #expect(out["K"]!.scalars == [1, 2, 3, 4])
        let K = program.graph.outputs.first { $0.name == "K" }!.node
        #expect(program.graph.nodes[K].operation.role == .constant)
    }
}

@Suite("Selection: bad input gets located errors")
struct SelectionDiagnosticTests {
    @Test func comparisonOfShapesThatDoNotBroadcast() {
        #expect(diagnostics("input x: [3]\ninput y: [4]\noutput m = x < y\n") == """
            test.nabla:3:12: error: cannot compare shapes [3] and [4] with '<': the shapes do not broadcast
            3 | output m = x < y
              |            ^~~~~
            1 error in test.nabla
            """)
    }

    @Test func whereWithAWrongShapedMask() {
        #expect(diagnostics("input x: [3]\ninput c: [2]\noutput m = where(c > 0, x, 0)\n") == """
            test.nabla:3:12: error: cannot select with a condition of shape [2] between shapes [3] and []: the condition and the two branches do not broadcast to one shape
            3 | output m = where(c > 0, x, 0)
              |            ^~~~~~~~~~~~~~~~~~
            1 error in test.nabla
            """)
    }

    @Test func comparisonsDoNotChain() {
        #expect(diagnostics("input x\noutput m = 0 < x < 1\n") == """
            test.nabla:2:18: error: comparisons do not chain; write (a < b) and (b < c)
            2 | output m = 0 < x < 1
              |                  ^
            1 error in test.nabla
            """)
    }

    @Test func notInsideArithmeticAsksForParentheses() {
        #expect(diagnostics("input x\noutput m = x + not x\n").contains("test.nabla:2:16: error: 'not' applies to a whole comparison"))
    }

    @Test func listElementsOfDifferentShapes() {
        #expect(diagnostics("input x: [2]\ninput y: [3]\noutput m = [x, y]\n") == """
            test.nabla:3:12: error: the elements of this list have different shapes: element 1 has shape [2], element 2 has shape [3]
            3 | output m = [x, y]
              |            ^~~~~~
            1 error in test.nabla
            """)
    }

    @Test func wrongArgumentCounts() {
        #expect(diagnostics("input x\noutput m = where(x, x)\n").contains("'where' takes 3 arguments, got 2"))
        #expect(diagnostics("input x\noutput m = maximum(x)\n").contains("'maximum' takes 2 arguments, got 1"))
        #expect(diagnostics("input x: [2, 2]\noutput m = max(x, 2)\n").contains("test.nabla:2:12: error: axis 2 is out of range for rank 2"))
    }
}
