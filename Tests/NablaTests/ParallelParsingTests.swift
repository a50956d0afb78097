import Testing
@testable import Nabla

/// A long file is parsed in two halves at once (`Parser.parseProgram`); the result must be the
/// one a single pass gives, statements, diagnostics and failed names alike, wherever the cut is.
@Suite struct ParallelParsingTests {
    /// Statements of every kind, errors of many kinds, ';' inside and outside brackets, brackets
    /// left open across lines and a statement keyword closing them.
    static let nastyLines = [
        "dim N = 3",
        "input x",
        "input y: [N]",
        "z = f(x; y)",
        "w = (x +",
        "output q = x +* y",
        "def g(a) = a * 2; k = g(x)",
        "u = [1, 2",
        "output v = sin(x) ^ - 2 ^ x",
        "m = y[0:2:",
        "grad q wrt x, y",
        "output r = not x < 1 and x > 0 or x == 2",
        "input",
        "= 3",
        "t = y'[1] @ y",
        "hvp q wrt x along x",
        "taylor q wrt x at 0.5 order 3",
        "s = 1e999 + x",
        "output e",
        "p = g(g(g(x))",
        "output last = x",
    ]

    static func tokens(_ text: String) -> [Token] {
        var lexer = Lexer(file: SourceFile(name: "t.nabla", text: text))
        return lexer.tokenize()
    }

    @Test func everyCutGivesWhatOnePassGives() {
        let tokens = Self.tokens(Self.nastyLines.joined(separator: "\n") + "\n")
        let whole = Parser.parsedAlone(tokens)
        #expect(!whole.diagnostics.isEmpty && !whole.failedNames.isEmpty && whole.statements.count > 10)
        var cuts = 0
        for cut in tokens.indices.dropLast() where tokens[cut].kind == .newline {
            let halves = Parser.parsedInTwo(tokens, cutAfter: cut)
            #expect(halves == whole, "cut after token \(cut) (\(tokens[cut].span.start))")
            cuts += 1
        }
        // One cut per line break and per ';' outside and inside brackets.
        #expect(cuts >= Self.nastyLines.count + 2)
    }

    @Test func aLongFileIsCutAndGivesWhatOnePassGives() throws {
        var lines = ["input x", "input a"]
        for k in 1...20_000 {
            lines.append("y\(k) = 0.999 * sin(\(k == 1 ? "x" : "y\(k - 1)")) + 0.001 * a")
            // Errors scattered over both halves.
            if k % 4_999 == 0 { lines.append(Self.nastyLines[k % Self.nastyLines.count] + " +") }
        }
        lines.append("output f = y20000")
        let tokens = Self.tokens(lines.joined(separator: "\n") + "\n")
        #expect(tokens.count >= Parser.twoHalvesMinimum)
        let cut = try #require(Parser.statementBoundary(near: tokens.count / 2, in: tokens))
        #expect(tokens[cut].kind == .newline && cut >= tokens.count / 2)
        let whole = Parser.parsedAlone(tokens)
        #expect(whole.diagnostics.count >= 4)
        #expect(Parser.parseProgram(tokens) == whole)
    }

    @Test func theBoundaryIsANewlineOtherThanTheLast() {
        // "x" alone: [x, newline, end] has no newline to cut at.
        #expect(Parser.statementBoundary(near: 0, in: Self.tokens("x")) == nil)
        let tokens = Self.tokens("a = 1\nb = 2\nc = f(1,\n2, 3)")
        let newlines = tokens.indices.filter { tokens[$0].kind == .newline }
        // The break inside the call's brackets is not a token; the file's last newline is never a cut.
        #expect(newlines.count == 3)
        #expect(Parser.statementBoundary(near: 0, in: tokens) == newlines[0])
        #expect(Parser.statementBoundary(near: newlines[0] + 1, in: tokens) == newlines[1])
        // Past the last cut, the search goes back.
        #expect(Parser.statementBoundary(near: tokens.count - 1, in: tokens) == newlines[1])
    }
}
