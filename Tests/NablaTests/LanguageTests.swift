import Foundation
import Testing
@testable import Nabla

/// Compiles `source`, expecting failure, and returns the rendered diagnostics.
func diagnostics(_ source: String, dims: [String: Int] = [:]) -> String {
    do {
        _ = try NablaProgram(source: source, fileName: "test.nabla", dims: dims)
        return "compiled without errors"
    } catch let errors as SourceErrors {
        return errors.description
    } catch {
        return "\(error)"
    }
}

@Suite("Language: golden diagnostics")
struct DiagnosticTests {
    @Test func unknownNameSuggestsTheNearest() {
        #expect(diagnostics("""
            dim N = 3
            input theta: [N]
            input y: [3]
            output L = 0.5 * sum((y - thetaa)^2)
            """) == """
            test.nabla:4:27: error: unknown name 'thetaa'
            4 | output L = 0.5 * sum((y - thetaa)^2)
              |                           ^~~~~~ did you mean 'theta'?
            1 error in test.nabla
            """)
    }

    @Test func shapeErrorNamesBothShapesAndPointsAtTheExpression() {
        #expect(diagnostics("input x: [3]\ninput y: [4]\nz = x + y\noutput s = sum(z)\n") == """
            test.nabla:3:5: error: cannot apply '+' to shapes [3] and [4]: the shapes do not broadcast
            3 | z = x + y
              |     ^~~~~
            1 error in test.nabla
            """)
        #expect(diagnostics("input A: [2, 3]\ninput x: [2]\noutput y = A @ x\n") == """
            test.nabla:3:12: error: cannot apply '@' to shapes [2, 3] and [2]: inner dimensions differ (3 and 2)
            3 | output y = A @ x
              |            ^~~~~
            1 error in test.nabla
            """)
    }

    @Test func syntaxErrorsSayWhatWasExpectedAndFound() {
        #expect(diagnostics("input x\noutput y = sin(x\n") == """
            test.nabla:2:17: error: expected ')' after the arguments of 'sin', found end of file
            2 | output y = sin(x
              |                 ^
            1 error in test.nabla
            """)
        #expect(diagnostics("input x\noutput y = x * \n") == """
            test.nabla:2:15: error: expected an expression, found end of line
            2 | output y = x * 
              |               ^
            1 error in test.nabla
            """)
        #expect(diagnostics("input x: [3\n") == """
            test.nabla:1:12: error: expected ']' to close the shape, found end of file
            1 | input x: [3
              |            ^
            1 error in test.nabla
            """)
        #expect(diagnostics("input\n") == """
            test.nabla:1:6: error: expected a name after 'input', found end of line
            1 | input
              |      ^
            1 error in test.nabla
            """)
        #expect(diagnostics("input x\nx + 1\n") == """
            test.nabla:2:3: error: expected '=' after 'x' to bind it, found '+'
            2 | x + 1
              |   ^
            1 error in test.nabla
            """)
        #expect(diagnostics("input wrt\n") == """
            test.nabla:1:7: error: expected a name after 'input', found keyword 'wrt', which is reserved
            1 | input wrt
              |       ^~~
            1 error in test.nabla
            """)
    }

    @Test func unexpectedCharacter() {
        #expect(diagnostics("input x\noutput y = x $ 2\n") == """
            test.nabla:2:14: error: unexpected character '$'
            2 | output y = x $ 2
              |              ^
            1 error in test.nabla
            """)
    }

    @Test func severalErrorsFromOneFile() {
        let text = diagnostics("""
            input x
            y = sin(x
            output z = x $ 2
            output w = cos(x) +
            grad w wrt x
            output q = undefined_thing
            """)
        #expect(text.hasSuffix("4 errors in test.nabla"))
        #expect(text.contains("test.nabla:2:10: error: expected ')'"))
        #expect(text.contains("test.nabla:3:14: error: unexpected character '$'"))
        #expect(text.contains("test.nabla:4:20: error: expected an expression"))
        #expect(text.contains("test.nabla:6:12: error: unknown name 'undefined_thing'"))
        // 'w' failed to parse: its use in 'grad' is not reported again.
        #expect(!text.contains("unknown name 'w'"))
    }

    @Test func unknownFunctionSuggests() {
        #expect(diagnostics("input x\noutput y = sinn(x)\n") == """
            test.nabla:2:12: error: unknown function 'sinn'
            2 | output y = sinn(x)
              |            ^~~~ did you mean 'sin'?
            1 error in test.nabla
            """)
    }

    @Test func arityAndArguments() {
        #expect(diagnostics("input x\noutput y = sin(x, x)\n") == """
            test.nabla:2:12: error: 'sin' takes 1 argument, got 2
            2 | output y = sin(x, x)
              |            ^~~~~~~~~
            1 error in test.nabla
            """)
        #expect(diagnostics("input x: [3]\noutput w = sum(x, 2)\n") == """
            test.nabla:2:12: error: axis 2 is out of range for rank 1
            2 | output w = sum(x, 2)
              |            ^~~~~~~~~
            1 error in test.nabla
            """)
        #expect(diagnostics("def f(a, b) = a * b\ninput x\noutput y = f(x)\n") == """
            test.nabla:3:12: error: 'f' takes 2 arguments, got 1
            3 | output y = f(x)
              |            ^~~~
            1 error in test.nabla
            """)
    }

    @Test func errorInsideAFunctionPointsAtTheCallToo() {
        #expect(diagnostics("def f(a, b) = a + b\ninput x: [2]\ninput y: [3]\noutput z = f(x, y)\n") == """
            test.nabla:1:15: error: cannot apply '+' to shapes [2] and [3]: the shapes do not broadcast
            1 | def f(a, b) = a + b
              |               ^~~~~
            test.nabla:4:12: note: in this call of 'f'
            4 | output z = f(x, y)
              |            ^~~~~~~
            1 error in test.nabla
            """)
    }

    @Test func bindingsAreSingleAssignment() {
        #expect(diagnostics("input x: [3]\nx = 2\n") == """
            test.nabla:2:1: error: 'x' is already declared (at line 1, column 7); every name is bound once
            2 | x = 2
              | ^
            1 error in test.nabla
            """)
        #expect(diagnostics("input sin\n") == """
            test.nabla:1:7: error: 'sin' is a built-in function and cannot be rebound
            1 | input sin
              |       ^~~
            1 error in test.nabla
            """)
    }

    @Test func dimsMustBeWholeNumbers() {
        #expect(diagnostics("dim K = 2.5\ninput z: [K]\n") == """
            test.nabla:1:9: error: expected a whole number, found 2.5
            1 | dim K = 2.5
              |         ^~~
            1 error in test.nabla
            """)
        #expect(diagnostics("input x\ninput z: [x]\n") == """
            test.nabla:2:11: error: 'x' is a tensor, but a whole number (a literal or a dim) is needed here
            2 | input z: [x]
              |           ^
            1 error in test.nabla
            """)
        #expect(diagnostics("dim N = 99999999\ninput z: [N, N, N]\n").contains("has more than 268435456 elements"))
        #expect(diagnostics("dim N = 999999999999999 * 999999999999999\n").contains("integer overflow"))
        #expect(diagnostics("dim N = 9223372036854775807\n").contains("is too large for a size, index or axis"))
    }

    @Test func indexErrors() {
        #expect(diagnostics("input x: [3]\noutput y = x[5]\n") == """
            test.nabla:2:12: error: index 5 is out of range for axis 0 of extent 3 (shape [3])
            2 | output y = x[5]
              |            ^~~~
            1 error in test.nabla
            """)
        #expect(diagnostics("input x: [3]\noutput y = x[0, 1]\n").contains("2 indices for a tensor of rank 1"))
    }

    @Test func derivativeDirectiveErrors() {
        #expect(diagnostics("input x: [3]\noutput y = sin(x)\ngrad y wrt x\n") == """
            test.nabla:3:6: error: 'grad' needs a scalar, but 'y' has shape [3]; use 'jacobian' or 'jvp' for tensors
            3 | grad y wrt x
              |      ^
            1 error in test.nabla
            """)
        #expect(diagnostics("input x\noutput y = sin(x)\ngrad y wrt z\n") == """
            test.nabla:3:12: error: unknown name 'z'
            3 | grad y wrt z
              |            ^
            1 error in test.nabla
            """)
        #expect(diagnostics("input x\noutput y = sin(x)\ngrad y wrt x\ngrad y wrt x\n").contains("output 'dy/dx' is produced twice"))
    }

    @Test func matrixFunctionsNeedSquareMatrices() {
        #expect(diagnostics("input A: [2, 3]\noutput d = det(A)\n") == """
            test.nabla:2:12: error: cannot apply 'det' to shape [2, 3]: needs a square matrix
            2 | output d = det(A)
              |            ^~~~~~
            1 error in test.nabla
            """)
        #expect(diagnostics("input a: [2]\ninput b: [3]\noutput c = concat(a, b)\n").contains("'concat' takes the tensors to join and then the axis"))
    }

    @Test func unknownDimOverride() {
        #expect(diagnostics("dim N = 3\ninput x: [N]\n", dims: ["M": 4]) == "unknown dim 'M'")
        #expect(diagnostics("dim Nx = 3\ninput x: [Nx]\n", dims: ["NX": 4]) == "unknown dim 'NX'; did you mean 'Nx'?")
    }

    @Test func tabsAndUnicodeKeepTheCaretAligned() {
        #expect(diagnostics("input x\n\toutput y = é + x\n") == """
            test.nabla:2:13: error: unexpected character 'é'
            2 | \toutput y = é + x
              | \t           ^
            1 error in test.nabla
            """)
    }

    @Test func nestingTooDeepIsAnErrorNotACrash() {
        let deep = String(repeating: "(", count: 5000) + "x" + String(repeating: ")", count: 5000)
        #expect(diagnostics("input x\noutput y = \(deep)\n").contains("nested too deeply"))
        let minus = String(repeating: "-", count: 5000) + "x"
        #expect(diagnostics("input x\noutput y = \(minus)\n").contains("nested too deeply"))
    }
}

@Suite("Language: semantics")
struct LanguageSemanticsTests {
    func run(_ source: String, _ inputs: [String: TensorData], dims: [String: Int] = [:]) throws -> [String: TensorData] {
        let program = try NablaProgram(source: source, fileName: "test.nabla", dims: dims)
        return try expectKernelMatchesInterpreter(program.graph, inputs)
    }

    @Test func precedenceAndAssociativity() throws {
        let out = try run("""
            input x
            output a = -x^2          # -(x^2)
            output b = 2^3^2         # 2^(3^2) = 512
            output c = 1 - 2 - 3     # left associative: -4
            output d = 2 * 3 + 4 / 2 # 8
            output e = x^-1          # exponent may be negative
            output f = -2^2 + 10     # 6
            """, ["x": TensorData(3)])
        #expect(out["a"]!.scalar == -9)
        #expect(out["b"]!.scalar == 512)
        #expect(out["c"]!.scalar == -4)
        #expect(out["d"]!.scalar == 8)
        expectClose(out["e"]!.scalar, 1.0 / 3, tolerance: 1e-16)
        #expect(out["f"]!.scalar == 6)
    }

    @Test func outputsAndDerivativesComeInOrder() throws {
        let program = try NablaProgram(source: """
            input x; input y
            s = x * y
            output p = s + 1
            grad p wrt y, x
            output q = s * 2
            output s
            hvp p wrt x along y
            """, fileName: "t.nabla")
        #expect(program.graph.outputs.map(\.name) == ["p", "q", "s", "dp/dy", "dp/dx", "d2p/dx2.y"])
        #expect(program.graph.inputs.map(\.name) == ["x", "y"])
        #expect(program.derivatives.map(\.name) == ["dp/dy", "dp/dx", "d2p/dx2.y"])
    }

    @Test func slicesTransposeAndLists() throws {
        let out = try run("""
            input A: [3, 4]
            output col = A[:, 1]
            output row = A[2]
            output tail = A[1:, -1]
            output stepped = A[0, ::2]
            output At = A'
            output v = [1, 2.5, -3]
            output M = [[1, 2], [3, 4]]
            output r = reshape(A, [2, -1])
            """, ["A": try TensorData(shape: [3, 4], scalars: (0..<12).map(Double.init))])
        #expect(out["col"]!.scalars == [1, 5, 9])
        #expect(out["row"]!.scalars == [8, 9, 10, 11])
        #expect(out["tail"]!.scalars == [7, 11])
        #expect(out["stepped"]!.scalars == [0, 2])
        #expect(out["At"]!.shape == [4, 3] && out["At"]![1, 2] == 9)
        #expect(out["v"]!.scalars == [1, 2.5, -3])
        #expect(out["M"]!.shape == [2, 2])
        #expect(out["r"]!.shape == [2, 6])
    }

    @Test func linearAlgebraBuiltins() throws {
        let out = try run("""
            input A: [3, 3]
            input v: [3]
            output t = trace(A)
            output d = diag(A)
            output D = diag(v)
            output I = eye(3)
            output n = norm(v)
            output o = outer(v, v)
            output p = dot(v, v)
            output m = mean(A, 0)
            output s = sum(A, -1)
            output T = transpose(A, [1, 0])
            """, ["A": try TensorData(shape: [3, 3], scalars: (1...9).map(Double.init)), "v": try TensorData(shape: [3], scalars: [1, 2, 2])])
        #expect(out["t"]!.scalar == 15)
        #expect(out["d"]!.scalars == [1, 5, 9])
        #expect(out["D"]!.scalars == [1, 0, 0, 0, 2, 0, 0, 0, 2])
        #expect(out["I"]!.scalars == [1, 0, 0, 0, 1, 0, 0, 0, 1])
        #expect(out["n"]!.scalar == 3)
        #expect(out["o"]![1, 2] == 4)
        #expect(out["p"]!.scalar == 9)
        #expect(out["m"]!.scalars == [4, 5, 6])
        #expect(out["s"]!.scalars == [6, 15, 24])
        #expect(out["T"]![0, 1] == 4)
    }

    @Test func dimOverridesAndDimsAsValues() throws {
        let program = try NablaProgram(source: "dim N = 3\ninput x: [N]\noutput m = sum(x) / N\n", fileName: "t", dims: ["N": 5])
        #expect(try program.graph.inputShape("x") == [5])
        #expect(program.dims.map(\.value) == [5])
        let out = try Kernel(program.graph)(["x": TensorData(repeating: 2, shape: [5])])
        #expect(out["m"]!.scalar == 2)
    }

    @Test func userFunctionsExpandWithTheirOwnScope() throws {
        let out = try run("""
            def softsq(z) = log(1 + z^2)
            def twice(z) = softsq(z) + softsq(z)
            input x
            z = 100               # the parameter z shadows this binding inside the functions
            output y = twice(x)
            grad y wrt x
            """, ["x": TensorData(0.5)])
        expectClose(out["y"]!.scalar, 2 * Foundation.log(1.25), tolerance: 1e-15)
        expectClose(out["dy/dx"]!.scalar, 2 * 2 * 0.5 / 1.25, tolerance: 1e-15)
    }

    @Test func semicolonsAndLineContinuationInsideBrackets() throws {
        let out = try run("input x; output y = (x +\n    1) * 2\n", ["x": TensorData(1)])
        #expect(out["y"]!.scalar == 4)
    }
}

@Suite("Language: no input crashes the front end")
struct RobustnessTests {
    /// Mutates every example file many times (deleting, duplicating and swapping characters,
    /// inserting tokens) and compiles each result: it must either compile or report errors.
    @Test func mutatedExamplesNeverCrash() throws {
        var rng = SeededRandom(seed: 2024)
        let pieces = ["(", ")", "[", "]", ":", ",", "@", "^", "'", "-", "=", "\n", ";", "grad", "wrt", "9999999999", "0", "-1", "x", "def", "output", "#", "1e400", "é", "\t"]
        var compiled = 0, rejected = 0
        for path in exampleFiles() {
            let original = Array(try String(contentsOfFile: path, encoding: .utf8))
            for _ in 0..<120 {
                var text = original
                for _ in 0..<Int.random(in: 1...4, using: &rng) where !text.isEmpty {
                    let i = Int.random(in: 0..<text.count, using: &rng)
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0: text.remove(at: i)
                    case 1: text.insert(contentsOf: Array(pieces.randomElement(using: &rng)!), at: i)
                    case 2: text.swapAt(i, Int.random(in: 0..<text.count, using: &rng))
                    default: text.insert(text[i], at: i)
                    }
                }
                do {
                    _ = try NablaProgram(source: String(text), fileName: "fuzz.nabla", dims: [:])
                    compiled += 1
                } catch let errors as SourceErrors {
                    #expect(!errors.diagnostics.isEmpty)
                    #expect(errors.description.contains("fuzz.nabla:"))
                    rejected += 1
                } catch {
                    rejected += 1
                }
            }
        }
        #expect(compiled > 0 && rejected > 0)
    }

    /// Random bytes, raw and as text: every outcome is a graph or located errors, and bytes that
    /// are not UTF-8 are reported at the first bad one.
    @Test func randomBytes() throws {
        var rng = SeededRandom(seed: 9)
        let alphabet = Array("input output dim def grad wrt x y ( ) [ ] , : ^ ' - + * / @ = 1 2.5 \n ; #".utf8)
        var rejected = 0, notUTF8 = 0
        for round in 0..<300 {
            let bytes = (0..<Int.random(in: 0...80, using: &rng)).map { _ in
                round.isMultiple(of: 2) ? UInt8.random(in: 0...255, using: &rng) : alphabet.randomElement(using: &rng)!
            }
            do {
                _ = try NablaProgram(bytes: bytes, fileName: "fuzz.nabla")
            } catch let errors as SourceErrors {
                rejected += 1
                let first = try #require(errors.diagnostics.first)
                #expect(first.severity == .error)
                #expect(errors.diagnostics.allSatisfy { $0.span.end <= errors.file.bytes.count })
                let (line, column) = errors.file.location(of: first.span.start)
                #expect(errors.description.hasPrefix("fuzz.nabla:\(line):\(column): error: "))
                #expect(errors.description.hasSuffix(" in fuzz.nabla"))
                if String(validating: bytes, as: UTF8.self) == nil {
                    notUTF8 += 1
                    // Only the encoding is reported, where it first goes wrong: the bytes before
                    // are UTF-8, and the line is counted in them.
                    #expect(errors.diagnostics.count == 1)
                    #expect(first.message.hasPrefix("the file is not valid UTF-8 text"))
                    #expect(String(validating: bytes[..<first.span.start], as: UTF8.self) != nil)
                    #expect(line == bytes[..<first.span.start].filter { $0 == UInt8(ascii: "\n") }.count + 1)
                }
            }
        }
        #expect(rejected > 100 && notUTF8 > 100)
    }
}

/// Every graph file under examples/.
func exampleFiles() -> [String] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let folder = root.appendingPathComponent("examples")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
    return names.filter { $0.hasSuffix(".nabla") }.sorted().map { folder.appendingPathComponent($0).path }
}

@Suite("Language: limits")
struct LanguageLimitTests {
    @Test func hugeEmbeddedConstantsAreRefused() {
        #expect(diagnostics("output I = eye(100000)\n").contains("would embed 100000^2 elements as a constant"))
        #expect(diagnostics("input v: [5000]\noutput D = diag(v)\n").contains("would embed an identity matrix of 25000000 elements"))
        #expect(diagnostics("output I = eye(-1)\n").contains("'eye' needs a non-negative size"))
    }
}
