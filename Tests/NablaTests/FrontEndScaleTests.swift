import Foundation
import Testing
@testable import Nabla

/// What a closure run on another thread returned or threw.
private final class Outcome<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// The stack size of Swift's secondary threads, the smallest the front end must work in.
let smallStackSize = 512 * 1024

/// Runs `body` on a new thread whose stack is `smallStackSize` bytes and returns its result, so
/// deep inputs are tested where a stack overflow would show.
func onSmallStack<T>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    let outcome = Outcome<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        outcome.result = Result { try body() }
        done.signal()
    }
    thread.stackSize = smallStackSize
    thread.start()
    done.wait()
    return try outcome.result!.get()
}

/// The size of the calling thread's stack, in bytes, from glibc's `pthread_getattr_np` (looked
/// up at run time, since Swift's Glibc module leaves GNU extensions out); -1 if unknown.
func currentStackSize() -> Int {
    typealias GetAttributes = @convention(c) (pthread_t, UnsafeMutablePointer<pthread_attr_t>) -> Int32
    guard let symbol = dlsym(nil, "pthread_getattr_np") else { return -1 }
    let getAttributes = unsafeBitCast(symbol, to: GetAttributes.self)
    var attributes = pthread_attr_t()
    guard getAttributes(pthread_self(), &attributes) == 0 else { return -1 }
    defer { pthread_attr_destroy(&attributes) }
    var size = 0
    pthread_attr_getstacksize(&attributes, &size)
    return size
}

/// Compiles `source` on a small stack; the program, or the rendered diagnostics.
func compileOnSmallStack(_ source: String) throws -> Result<NablaProgram, SourceErrors> {
    try onSmallStack {
        do {
            return .success(try NablaProgram(source: source, fileName: "test.nabla"))
        } catch let errors as SourceErrors {
            return .failure(errors)
        }
    }
}

/// The program `source` compiles to on a small stack; records an issue if it does not compile.
func programOnSmallStack(_ source: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> NablaProgram? {
    switch try compileOnSmallStack(source) {
    case let .success(program): return program
    case let .failure(errors):
        Issue.record("expected to compile: \(errors.description.prefix(2000))", sourceLocation: sourceLocation)
        return nil
    }
}

/// The rendered diagnostics of `source`, compiled on a small stack ("compiled" if it compiles).
func diagnosticsOnSmallStack(_ source: String) throws -> String {
    switch try compileOnSmallStack(source) {
    case .success: return "compiled"
    case let .failure(errors): return errors.description
    }
}

/// `output f = sin(x)*0 + sin(x)*1 + ... + sin(x)*(n-1)`: a left-deep chain of n terms.
func sineChain(_ n: Int) -> String {
    var text = "input x\noutput f = sin(x)*0"
    text.reserveCapacity(16 * n)
    for k in 1..<n { text += " + sin(x)*\(k)" }
    return text + "\n"
}

/// The count of nodes of `graph` whose operation is a `kind`.
func count<T>(_ kind: T.Type, in graph: Graph) -> Int {
    graph.nodes.filter { $0.operation is T }.count
}

@Suite("Language: deep and long inputs")
struct DeepInputTests {
    @Test func theSmallStackIsSmall() throws {
        let size = try onSmallStack { currentStackSize() }
        #expect(size > 0 && size <= smallStackSize + 64 * 1024, "stack of \(size) bytes")
    }

    @Test func aLongSumIsALoopNotARecursion() throws {
        let n = 20_000
        guard let program = try programOnSmallStack(sineChain(n)) else { return }
        // One sin shared by every term, and a sum joining each term after the first.
        #expect(count(Sin.self, in: program.graph) == 1)
        #expect(count(Add.self, in: program.graph) == n - 1)
        let x = 0.5
        var expected = Foundation.sin(x) * 0
        for k in 1..<n { expected += Foundation.sin(x) * Double(k) }
        let out = try Interpreter.evaluate(program.graph, inputs: ["x": TensorData(x)])
        #expect(out["f"]!.scalar == expected)
    }

    @Test func aLongChainOfEveryOperatorFoldsLeftToRight() throws {
        // 1 - 1 - 1 ... and 2 * 3 / 3 * 3 / 3 ...: left associative all the way.
        let n = 20_000
        let minus = "output a = " + Array(repeating: "1", count: n).joined(separator: " - ") + "\n"
        let products = "output b = 2" + String(repeating: " * 3 / 3", count: n) + "\n"
        guard let program = try programOnSmallStack(minus + products) else { return }
        let out = try Interpreter.evaluate(program.graph, inputs: [:])
        #expect(out["a"]!.scalar == Double(2 - n))
        var b = 2.0
        for _ in 0..<n { b = b * 3 / 3 }
        #expect(out["b"]!.scalar == b)
    }

    @Test func aLongPowerChainIsRightAssociativeAndShallow() throws {
        let n = 20_000
        let chain = Array(repeating: "x", count: n).joined(separator: "^")
        guard let program = try programOnSmallStack("input x\noutput p = \(chain)\n") else { return }
        #expect(count(Power.self, in: program.graph) == n - 1)
        let out = try Interpreter.evaluate(program.graph, inputs: ["x": TensorData(1)])
        #expect(out["p"]!.scalar == 1)
        // Right associative with a constant last exponent: 2^1^...^1^3 = 2^(1^(...^3)) = 2.
        let constants = "output q = 2^" + String(repeating: "1^", count: n) + "3\n"
        guard let small = try programOnSmallStack(constants) else { return }
        #expect(try Interpreter.evaluate(small.graph, inputs: [:])["q"]!.scalar == 2)
    }

    @Test func aNegatedExponentTakesTheRestOfThePowerChain() throws {
        guard let program = try programOnSmallStack("input x\noutput p = x^-x^2\noutput q = 2^-1^2\n") else { return }
        let out = try Interpreter.evaluate(program.graph, inputs: ["x": TensorData(3)])
        #expect(out["p"]!.scalar == Foundation.pow(3, -9))
        #expect(out["q"]!.scalar == 0.5)
    }

    @Test func longPostfixChains() throws {
        let n = 20_000
        let primes = String(repeating: "'", count: n + 1)
        let slices = String(repeating: "[1:]", count: 3) + String(repeating: "[:]", count: n)
        let program = try programOnSmallStack("""
            input A: [2, 3]
            input v: [5]
            output T = A\(primes)
            output s = v\(slices)
            output e = A\(String(repeating: "''", count: n))[1][2]
            """)
        guard let program else { return }
        #expect(try program.graph.outputShape("T") == [3, 2])
        #expect(try program.graph.outputShape("s") == [2])
        #expect(try program.graph.outputShape("e") == [])
        let A = try TensorData(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let v = try TensorData(shape: [5], scalars: [1, 2, 3, 4, 5])
        let out = try Interpreter.evaluate(program.graph, inputs: ["A": A, "v": v])
        #expect(out["T"]!.scalars == [1, 4, 2, 5, 3, 6])
        #expect(out["s"]!.scalars == [4, 5])
        #expect(out["e"]!.scalar == 6)
    }

    @Test func aLongDimExpression() throws {
        let n = 20_000
        let ones = Array(repeating: "1", count: n).joined(separator: "+")
        guard let program = try programOnSmallStack("dim N = \(ones)\ninput x: [N - 19990]\n") else { return }
        #expect(program.dims.map(\.value) == [n])
        #expect(try program.graph.inputShape("x") == [10])
        let twos = Array(repeating: "2", count: 100).joined(separator: " * ")
        #expect(try diagnosticsOnSmallStack("dim M = \(twos)\n").contains("test.nabla:1:9: error: integer overflow"))
    }

    @Test func nestingUpToTheLimitWorksOnASmallStack() throws {
        // Parentheses, calls, lists, index expressions and unary minus, each 250 deep.
        let depth = 250
        let parens = String(repeating: "(", count: depth) + "x" + String(repeating: ")", count: depth)
        let calls = String(repeating: "sin(", count: depth) + "x" + String(repeating: ")", count: depth)
        let list = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
        let minus = String(repeating: "-", count: depth) + "x"
        let mixed = String(repeating: "-(1 + 2*x^sum(", count: depth / 3) + "x" + String(repeating: "))", count: depth / 3)
        let index = "v[" + String(repeating: "(", count: depth - 2) + "0" + String(repeating: ")", count: depth - 2) + "]"
        let program = try programOnSmallStack("""
            input x
            input v: [2]
            output a = \(parens)
            output b = \(calls)
            output c = \(list)
            output d = \(minus)
            output e = \(mixed)
            output f = \(index)
            """)
        guard let program else { return }
        #expect(try program.graph.outputShape("c") == Shape(Array(repeating: 1, count: depth)))
        let out = try Interpreter.evaluate(program.graph, inputs: ["x": TensorData(0.5), "v": try TensorData(shape: [2], scalars: [7, 8])])
        #expect(out["a"]!.scalar == 0.5)
        #expect(out["d"]!.scalar == 0.5)
        #expect(out["f"]!.scalar == 7)
    }

    @Test func nestingPastTheLimitIsALocatedError() throws {
        for deep in [
            String(repeating: "(", count: 20_000) + "x" + String(repeating: ")", count: 20_000),
            String(repeating: "sin(", count: 20_000) + "x" + String(repeating: ")", count: 20_000),
            String(repeating: "[", count: 20_000) + "1" + String(repeating: "]", count: 20_000),
            String(repeating: "-", count: 20_000) + "x",
            String(repeating: "x^-", count: 20_000) + "x",
            String(repeating: "x[", count: 20_000) + "0" + String(repeating: "]", count: 20_000),
        ] {
            let text = try diagnosticsOnSmallStack("input x\noutput y = \(deep)\n")
            #expect(text.contains("test.nabla:2:") && text.contains("error: expression nested too deeply (more than 256 levels)"), "\(text.prefix(300))")
        }
    }

    @Test func functionsNestedThroughTenThousandDefinitions() throws {
        let n = 10_000
        var text = "def f1(x) = x + 1\n"
        for k in 2...n { text += "def f\(k)(x) = f\(k - 1)(x) + 1\n" }
        text += "input x\noutput y = f\(n)(x)\n"
        guard let program = try programOnSmallStack(text) else { return }
        #expect(try Interpreter.evaluate(program.graph, inputs: ["x": TensorData(0.5)])["y"]!.scalar == 0.5 + Double(n))
        // An error at the bottom is reported with the innermost calls and the outermost one.
        let failing = text.replacingOccurrences(of: "def f1(x) = x + 1", with: "def f1(x) = x + [1, 2] @ [1]")
        let diagnostics = try diagnosticsOnSmallStack(failing)
        #expect(diagnostics.hasPrefix("test.nabla:1:17: error: cannot apply '@' to shapes [2] and [1]"))
        #expect(diagnostics.contains("note: in this call of 'f1'"))
        #expect(diagnostics.contains("test.nabla:10002:12: note: in this call of 'f10000', through 9992 more calls"))
        #expect(diagnostics.components(separatedBy: "note:").count - 1 == 8)
        #expect(diagnostics.hasSuffix("1 error in test.nabla"))
    }

    @Test func deepTreesCompareAndReleaseOnASmallStack() throws {
        let text = sineChain(20_000) + "output g = x" + String(repeating: "^x", count: 20_000) + String(repeating: "'", count: 20_000) + "\n"
        let same = try onSmallStack { () -> Bool in
            var first = Parser(tokens: { var l = Lexer(file: SourceFile(name: "a", text: text)); return l.tokenize() }())
            var second = Parser(tokens: { var l = Lexer(file: SourceFile(name: "b", text: text)); return l.tokenize() }())
            return first.parseProgram() == second.parseProgram()
        }
        #expect(same)
    }

    /// A chain of 10^5 terms, parsed and elaborated in the suite; `NABLA_MEASURE_SCALING=1`
    /// measures 10^4, 10^5 and 10^6 terms and prints the times.
    @Test func aChainOfAHundredThousandTermsIsQuick() throws {
        let sizes = ProcessInfo.processInfo.environment["NABLA_MEASURE_SCALING"] == nil ? [100_000] : [10_000, 100_000, 1_000_000]
        for n in sizes {
            let text = sineChain(n)
            var nodes = 0
            let time = try ContinuousClock().measure {
                nodes = try NablaProgram(source: text, fileName: "chain.nabla").graph.nodes.count
            }
            // x, sin(x), n constants, n products and n - 1 sums.
            #expect(nodes == 2 + n + n + (n - 1))
            print("chain of \(n) terms (\(text.utf8.count) bytes): \(time)")
        }
    }
}

@Suite("Language: recursion and expansion")
struct RecursionTests {
    @Test func aFunctionCallingItselfIsALocatedError() {
        #expect(diagnostics("def f(x) = f(x) + 1\ninput x\noutput y = f(x)\n") == """
            test.nabla:1:12: error: recursive function 'f': f -> f
            1 | def f(x) = f(x) + 1
              |            ^~~~ functions expand at each call, so they cannot recurse
            1 error in test.nabla
            """)
    }

    @Test func mutualRecursionNamesTheCycle() {
        #expect(diagnostics("def f(x) = 2 * g(x)\ndef g(x) = h(x)\ndef h(x) = sin(f(x))\ninput x\noutput y = f(x)\noutput z = h(x)\n") == """
            test.nabla:3:16: error: recursive function 'f': f -> g -> h -> f
            3 | def h(x) = sin(f(x))
              |                ^~~~ functions expand at each call, so they cannot recurse
            1 error in test.nabla
            """)
    }

    @Test func recursionIsFoundWithoutACall() {
        let text = diagnostics("def f(x) = g(x)\ndef g(x) = f(x) + g(x)\n")
        #expect(text.contains("test.nabla:2:12: error: recursive function 'f': f -> g -> f"))
        #expect(text.contains("test.nabla:2:19: error: recursive function 'g': g -> g"))
        #expect(text.hasSuffix("2 errors in test.nabla"))
    }

    @Test func aLongCycleIsShownByItsEnds() throws {
        let n = 5000
        var text = ""
        for k in 1..<n { text += "def f\(k)(x) = f\(k + 1)(x)\n" }
        text += "def f\(n)(x) = f1(x)\ninput x\noutput y = f1(x)\n"
        let rendered = try diagnosticsOnSmallStack(text)
        #expect(rendered.hasPrefix("test.nabla:5000:16: error: recursive function 'f1': f1 -> f2 -> f3 -> f4 -> f5 -> f6 -> ... (4988 more) ... -> f4995 -> f4996 -> f4997 -> f4998 -> f4999 -> f5000 -> f1\n"))
        #expect(rendered.hasSuffix("1 error in test.nabla"))
    }

    @Test func aFunctionCallingARecursiveOneIsNotReportedAgain() {
        let text = diagnostics("def f(x) = f(x)\ndef g(x) = f(x) * 2\ninput x\noutput y = g(x)\n")
        #expect(text.hasPrefix("test.nabla:1:12: error: recursive function 'f': f -> f"))
        #expect(text.hasSuffix("1 error in test.nabla"))
    }

    @Test func exponentialExpansionStopsWithAnErrorQuickly() throws {
        var text = "def f1(x) = x * x\n"
        for k in 2...60 { text += "def f\(k)(x) = f\(k - 1)(f\(k - 1)(x))\n" }
        text += "input x\noutput y = f60(x)\noutput z = f60(x) + 1\n"
        let start = ContinuousClock.now
        let rendered = try diagnosticsOnSmallStack(text)
        let elapsed = ContinuousClock.now - start
        #expect(rendered.hasPrefix("""
            test.nabla:62:12: error: expanding this call of 'f60' goes past the limit of 1048576 expression nodes expanded from function bodies in this file (each call expands its function's body again)
            62 | output y = f60(x)
               |            ^~~~~~
            test.nabla:63:12: error: expanding this call of 'f60' goes past the limit
            """))
        #expect(rendered.hasSuffix("2 errors in test.nabla"))
        print("exponential expansion stopped after \(elapsed)")
        #expect(elapsed < .seconds(60))
    }

    @Test func repeatedCallsOnTheSameArgumentsAreExpandedOnce() throws {
        // Doubling at every level, but every call of a level has the same argument: linear.
        var text = "def f1(x) = sin(x)\n"
        for k in 2...60 { text += "def f\(k)(x) = f\(k - 1)(x) + f\(k - 1)(x)\n" }
        text += "input x\noutput y = f60(x)\n"
        guard let program = try programOnSmallStack(text) else { return }
        #expect(count(Add.self, in: program.graph) == 59)
        let out = try Interpreter.evaluate(program.graph, inputs: ["x": TensorData(0.5)])
        #expect(out["y"]!.scalar == Foundation.sin(0.5) * Foundation.pow(2, 59))
    }
}

@Suite("Language: files and how their errors are shown")
struct SourceFileTests {
    /// A fresh path in the temporary directory.
    func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "nabla-frontend-\(ProcessInfo.processInfo.processIdentifier)-\(name)"
    }

    func failure(_ body: () throws -> NablaProgram) -> SourceErrors? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? SourceErrors
        }
    }

    @Test func bytesThatAreNotUTF8AreReportedWhereTheyAre() throws {
        let bytes = Array("input x\noutput é = x\ny = 2 * ".utf8) + [0xFF, 0x41] + Array(" + x\n".utf8)
        let errors = failure { try NablaProgram(bytes: bytes, fileName: "bad.nabla") }
        #expect(errors?.description == """
            bad.nabla:3:9: error: the file is not valid UTF-8 text: byte 0xFF is not a character
            3 | y = 2 * \u{FFFD}A + x
              |         ^
            1 error in bad.nabla
            """)
        // A truncated sequence: the first two bytes of a three-byte character, then a space.
        let truncated = failure { try NablaProgram(bytes: Array("output a = 1\n#".utf8) + [0xE2, 0x82, 0x20], fileName: "t.nabla") }
        #expect(truncated?.description.hasPrefix("t.nabla:2:2: error: the file is not valid UTF-8 text: bytes 0xE2 0x82 are not a character") == true)
    }

    @Test func aFileIsReadAsBytes() throws {
        let path = temporaryPath("latin1.nabla")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(Array("input x # caf".utf8) + [0xE9] + Array("\noutput y = x\n".utf8))))
        let errors = failure { try NablaProgram(contentsOfFile: path) }
        #expect(errors?.description.hasPrefix("\(path):1:14: error: the file is not valid UTF-8 text: byte 0xE9 is not a character") == true)
        #expect(FileManager.default.createFile(atPath: path, contents: Data("input x\noutput y = 2 * x\n".utf8)))
        #expect(try NablaProgram(contentsOfFile: path).graph.outputs.map(\.name) == ["y"])
    }

    @Test func aPipeCanBeTheGraphFile() throws {
        let path = temporaryPath("pipe.nabla")
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        // A source longer than a pipe's buffer, written while the compiler reads.
        let text = sineChain(20_000)
        let writer = Thread {
            let handle = FileHandle(forWritingAtPath: path)!
            handle.write(Data(text.utf8))
            handle.closeFile()
        }
        writer.start()
        let program = try NablaProgram(contentsOfFile: path)
        #expect(program.graph.outputs.map(\.name) == ["f"])
        #expect(count(Add.self, in: program.graph) == 19_999)
    }

    @Test func aFileThatCannotBeReadSaysWhy() throws {
        let missing = failure { try NablaProgram(contentsOfFile: "/nonexistent/file.nabla") }
        #expect(missing?.description == "error: cannot read '/nonexistent/file.nabla': No such file or directory")
        #expect(missing?.readFailure == "No such file or directory")
        let directory = failure { try NablaProgram(contentsOfFile: NSTemporaryDirectory()) }
        #expect(directory?.description == "error: cannot read '\(NSTemporaryDirectory())': Is a directory")
        // An endless file stops at the limit (a small one here, so the test is quick).
        #expect(throws: FileReadError.self) { try TensorText.readFile(atPath: "/dev/zero", byteLimit: 1 << 20) }
        #expect((try? TensorText.readFile(atPath: "/dev/null", byteLimit: 1 << 20))?.isEmpty == true)
    }

    @Test func aLongLineIsShownAsAWindowAroundTheCaret() {
        let filler = String(repeating: "x + ", count: 2500)
        let middle = diagnostics("input x\noutput y = \(filler)$ + \(filler)x\n")
        let lines = middle.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "test.nabla:2:10012: error: unexpected character '$'")
        #expect(lines[1] == "2 | ..." + String(repeating: "x + ", count: 10) + "$ + " + String(repeating: "x + ", count: 19) + "...")
        #expect(lines[2] == "  |    " + String(repeating: " ", count: 40) + "^")
        #expect(lines.allSatisfy { $0.count < 140 })

        // At the start of a long line, nothing is cut before; at its end, nothing after.
        let start = diagnostics("$ = 1 + \(filler)x\n").split(separator: "\n")
        #expect(start[1] == "1 | $ = 1 + " + String(repeating: "x + ", count: 28) + "...")
        #expect(start[2] == "  | ^")
        let end = diagnostics("input x\noutput y = \(filler)x *\n").split(separator: "\n")
        #expect(end[0] == "test.nabla:2:10015: error: expected an expression, found end of line")
        #expect(end[1] == "2 | ..." + String(repeating: " x +", count: 29) + " x *")
        #expect(end[2] == "  |    " + String(repeating: " ", count: 120) + "^")
    }

    @Test func aLongSpanIsUnderlinedToTheWindowsEnd() {
        let long = (0..<3000).map { "x\($0)" }.joined(separator: " + ")
        let rendered = diagnostics("input x: [2]\ninput y: [3]\noutput z = x + y + \(long)\n")
        let lines = rendered.split(separator: "\n")
        #expect(lines[0] == "test.nabla:3:12: error: cannot apply '+' to shapes [2] and [3]: the shapes do not broadcast")
        #expect(lines[2] == "  |            ^~~~~")
        let names = diagnostics("input x\noutput z = \(long)\n").split(separator: "\n")
        #expect(names[0] == "test.nabla:2:12: error: unknown name 'x0'")
        #expect(names[1].hasSuffix("...") && names[1].count == "2 | ".count + 120 + 3)
    }

    @Test func aLongLineWithOtherCharactersIsWindowedToo() {
        let filler = String(repeating: "x + ", count: 2500)
        let rendered = diagnostics("input x\nz = é; output y = \(filler)$\n")
        let lines = rendered.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "test.nabla:2:5: error: unexpected character 'é'")
        #expect(lines[1] == "2 | z = é; output y = " + String(repeating: "x + ", count: 25) + "x ...")
        #expect(lines[3] == "test.nabla:2:10019: error: unexpected character '$'")
        // At the end of the line the window reaches back its whole width.
        #expect(lines[4] == "2 | ... + " + String(repeating: "x + ", count: 29) + "$")
        #expect(lines[5] == "  |    " + String(repeating: " ", count: 119) + "^")
    }

    /// Columns and line windows, found through checkpoints, agree with counting characters from
    /// the start of the line, on random lines of mixed characters.
    @Test func columnsAgreeWithCountingCharacters() {
        var rng = SeededRandom(seed: 77)
        let pieces = ["a", "b", " ", "\t", "é", "e\u{301}", "日本", "🙂", "\r", "\n", "ß", "\u{10FFFF}"]
        for _ in 0..<20 {
            let text = (0..<Int.random(in: 0...600, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            let file = SourceFile(name: "t", text: text)
            let bytes = Array(text.utf8)
            var lineStart = 0, line = 1
            for offset in 0...bytes.count where offset == bytes.count || bytes[offset] & 0xC0 != 0x80 {
                let expected = (line, String(decoding: bytes[lineStart..<offset], as: UTF8.self).count + 1)
                let found = file.location(of: offset)
                #expect(found == expected, "offset \(offset)")
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "\n") { lineStart = offset + 1; line += 1 }
            }
            for number in 1...max(1, text.split(separator: "\n", omittingEmptySubsequences: false).count) {
                let characters = Array(file.line(number))
                #expect(file.characterCount(ofLine: number) == characters.count)
                let from = characters.count / 3, to = characters.count - characters.count / 4
                #expect(file.text(ofLine: number, characters: from..<to) == String(characters[from..<to]))
            }
        }
    }

    @Test func onlyTheFirstUnknownNamesGetSuggestions() {
        // Looking for the nearest of 5000 names for each of 5000 typos would be quadratic.
        let n = 5000
        let source = (0..<n).map { "input value\($0)" }.joined(separator: "\n") + "\n" + (0..<n).map { "output o\($0) = valeu\($0)" }.joined(separator: "\n")
        guard case let .failure(errors) = try? compileOnSmallStack(source) else {
            Issue.record("expected errors")
            return
        }
        #expect(errors.diagnostics.count == n)
        #expect(errors.diagnostics.prefix(Elaborator.maximumSuggestions).allSatisfy { $0.label?.hasPrefix("did you mean 'value") == true })
        #expect(errors.diagnostics.dropFirst(Elaborator.maximumSuggestions).allSatisfy { $0.label == nil })
    }

    @Test func thousandsOfErrorsShowTheFirstHundred() {
        let rendered = diagnostics(String(repeating: "input $\n", count: 5000))
        #expect(rendered.hasSuffix("(4900 more errors not shown)\n5000 errors in test.nabla"))
        #expect(rendered.components(separatedBy: ": error: ").count - 1 == 100)
    }
}
