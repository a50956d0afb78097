import Testing
@testable import Nabla

/// A long file is lexed and parsed in two halves at once (`Parser.parseFile`); the result must
/// be the one a single pass gives, statements, diagnostics and failed names alike, wherever the
/// cut is.
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

    static func file(_ text: String) -> SourceFile { SourceFile(name: "t.nabla", text: text) }

    /// Cut after every line break, inside brackets and out, and at every ';'-separated line.
    @Test func everyCutGivesWhatOnePassGives() {
        let file = Self.file(Self.nastyLines.joined(separator: "\n") + "\n")
        let whole = Parser.parsedAlone(file)
        #expect(!whole.diagnostics.isEmpty && !whole.failedNames.isEmpty && whole.statements.count > 10)
        var cuts = 0
        for cut in file.bytes.indices.dropLast() where file.bytes[cut] == UInt8(ascii: "\n") {
            let halves = Parser.parsedInTwo(file, cutAfter: cut)
            #expect(halves == whole, "cut after byte \(cut)")
            cuts += 1
        }
        #expect(cuts == Self.nastyLines.count - 1)
    }

    /// A cut inside brackets (a call's arguments over two lines), and one inside brackets that
    /// a statement keyword on the next line closes, give what one pass gives too.
    @Test func cutsInsideBracketsGiveWhatOnePassGives() {
        for text in ["a = f(1,\n2, 3)\noutput b = a\n", "u = [1, 2\noutput v = u\nw = (v +\n1)\n", "x = (1 +\n# a comment (\n2)\n"] {
            let file = Self.file(text)
            let whole = Parser.parsedAlone(file)
            for cut in file.bytes.indices.dropLast() where file.bytes[cut] == UInt8(ascii: "\n") {
                #expect(Parser.parsedInTwo(file, cutAfter: cut) == whole, "\(text.debugDescription), cut after byte \(cut)")
            }
        }
    }

    @Test func aLongFileIsCutAndGivesWhatOnePassGives() throws {
        var lines = ["input x", "input a"]
        for k in 1...20_000 {
            lines.append("y\(k) = 0.999 * sin(\(k == 1 ? "x" : "y\(k - 1)")) + 0.001 * a")
            // Errors scattered over both halves, an unexpected character among them.
            if k % 4_999 == 0 { lines.append(Self.nastyLines[k % Self.nastyLines.count] + " + $") }
        }
        lines.append("output f = y20000")
        let file = Self.file(lines.joined(separator: "\n") + "\n")
        #expect(file.bytes.count >= Parser.twoHalvesMinimum)
        let cut = try #require(Parser.lineBreak(near: file.bytes.count / 2, in: file.bytes))
        #expect(file.bytes[cut] == UInt8(ascii: "\n") && cut >= file.bytes.count / 2)
        let whole = Parser.parsedAlone(file)
        #expect(whole.diagnostics.count >= 8)
        #expect(Parser.parseFile(file) == whole)
    }

    @Test func theCutIsALineBreakOtherThanTheLastByte() {
        // "x\n" has no line break to cut at but its last byte.
        #expect(Parser.lineBreak(near: 0, in: Array("x\n".utf8)) == nil)
        #expect(Parser.lineBreak(near: 0, in: Array("x".utf8)) == nil)
        let bytes = Array("a = 1\nb = 2\nc = 3\n".utf8)
        let breaks = bytes.indices.filter { bytes[$0] == UInt8(ascii: "\n") }
        #expect(Parser.lineBreak(near: 0, in: bytes) == breaks[0])
        #expect(Parser.lineBreak(near: breaks[0] + 1, in: bytes) == breaks[1])
        // Past the last cut, the search goes back.
        #expect(Parser.lineBreak(near: bytes.count - 1, in: bytes) == breaks[1])
    }
}
