import Foundation
import Testing
@testable import Nabla

/// A nasty input for the front end and what must come of it.
struct NastyInput: CustomTestStringConvertible, Sendable {
    enum Outcome: Sendable {
        /// Compiles, with these outputs.
        case compiles(outputs: [String])
        /// Fails; the first error renders as `test.nabla:` followed by this.
        case fails(String)
    }

    let what: String
    let source: String
    let outcome: Outcome

    var testDescription: String { what }
}

/// Inputs that once crashed, hung or misreported, or easily could: each must compile or give a
/// located error, on a small stack.
let nastyInputs: [NastyInput] = [
    NastyInput(what: "an empty file", source: "", outcome: .compiles(outputs: [])),
    NastyInput(what: "only comments", source: "# nothing\n   # here\n", outcome: .compiles(outputs: [])),
    NastyInput(what: "only separators", source: ";;;\n\n ; \n", outcome: .compiles(outputs: [])),
    NastyInput(what: "no newline at the end", source: "input x\noutput y = x", outcome: .compiles(outputs: ["y"])),
    NastyInput(what: "CRLF line ends", source: "input x\r\noutput y = 2 * x\r\n", outcome: .compiles(outputs: ["y"])),
    NastyInput(what: "a NUL byte", source: "input x\u{0}\n", outcome: .fails("1:8: error: unexpected character '\\u{0}'")),
    NastyInput(what: "a literal past the doubles", source: "output y = 1e400\n", outcome: .fails("1:12: error: number 1e400 is out of range for a double")),
    NastyInput(
        what: "a hundred thousand digits", source: "output y = " + String(repeating: "9", count: 100_000) + "\n",
        outcome: .fails("1:12: error: number 999999999999999999999999...999999999999 is out of range for a double")),
    NastyInput(what: "a literal below the doubles is zero", source: "output y = 1e-400\n", outcome: .compiles(outputs: ["y"])),
    NastyInput(what: "a long fraction", source: "output y = 0." + String(repeating: "3", count: 10_000) + "\n", outcome: .compiles(outputs: ["y"])),
    NastyInput(what: "a dim past the element limit", source: "dim N = 1e15\ninput x: [N]\n", outcome: .fails("1:9: error: dim 'N' must be between 0 and 268435456, got 1000000000000000")),
    NastyInput(what: "a dim past any size", source: "dim N = 1e16\n", outcome: .fails("1:9: error: 1e16 is too large for a size, index or axis")),
    NastyInput(
        what: "a whole number of many digits", source: "dim N = 2." + String(repeating: "5", count: 1000) + "\n",
        outcome: .fails("1:9: error: expected a whole number, found 2.5555555555555555555555...555555555555")),
    NastyInput(what: "an index past any extent", source: "input x: [3]\noutput y = x[999999999999999]\n", outcome: .fails("2:12: error: index 999999999999999 is out of range for axis 0 of extent 3 (shape [3])")),
    NastyInput(what: "a negative extent", source: "input x: [2 - 3]\n", outcome: .fails("1:11: error: a shape's extent cannot be negative, got -1")),
    NastyInput(what: "a Greek name", source: "input θ\n", outcome: .fails("1:7: error: unexpected character 'θ'")),
    NastyInput(what: "an emoji name", source: "input x\noutput 🙂 = x\n", outcome: .fails("2:8: error: unexpected character '🙂'")),
    NastyInput(what: "a combining accent", source: "input x\noutput y = x\u{301}\n", outcome: .fails("2:13: error: unexpected character '\u{301}'")),
    NastyInput(what: "a built-in's name as an input", source: "input exp\n", outcome: .fails("1:7: error: 'exp' is a built-in function and cannot be rebound")),
    NastyInput(what: "a reserved word as a name", source: "input order\n", outcome: .fails("1:7: error: expected a name after 'input', found keyword 'order', which is reserved")),
    NastyInput(
        what: "a very long unknown name", source: "input " + String(repeating: "a", count: 100_000) + "\noutput y = " + String(repeating: "a", count: 99_999) + "b\n",
        outcome: .fails("2:12: error: unknown name 'aaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaab'")),
    NastyInput(what: "a call of a call", source: "input x\noutput y = sin(x)(x)\n", outcome: .fails("2:18: error: only a named function can be called")),
    NastyInput(what: "a function as a value", source: "input x\noutput y = sin + x\n", outcome: .fails("2:12: error: 'sin' is a function; call it with arguments")),
    NastyInput(what: "a list of lists of mixed depth", source: "output y = [[1], 2]\n", outcome: .fails("1:18: error: a nested list must hold lists of equal length throughout")),
    NastyInput(what: "a ragged list", source: "output y = [[1], [2, 3]]\n", outcome: .fails("1:12: error: the rows of this list have different shapes")),
    NastyInput(what: "an unclosed bracket at the end", source: "input x\noutput y = x[", outcome: .fails("2:14: error: expected an expression, found end of file")),
    NastyInput(what: "an empty index", source: "input x: [2]\noutput y = x[]\n", outcome: .fails("2:14: error: expected an expression, found ']'")),
    NastyInput(what: "a dangling power", source: "input x\noutput y = x^\n", outcome: .fails("2:14: error: expected an expression, found end of line")),
    NastyInput(what: "a dangling negated exponent", source: "input x\noutput y = x^-\n", outcome: .fails("2:15: error: expected an expression, found end of line")),
    NastyInput(what: "a transpose of nothing", source: "output y = '\n", outcome: .fails("1:12: error: expected an expression, found '''")),
    NastyInput(what: "a range with every part", source: "input x: [9]\noutput y = x[1:-1:3]\noutput z = x[::3]\noutput w = x[:]\n", outcome: .compiles(outputs: ["y", "z", "w"])),
    NastyInput(what: "a negative step", source: "input x: [9]\noutput z = x[::-1]\n", outcome: .fails("2:12: error: step -1 must be positive")),
    NastyInput(what: "a call with no arguments", source: "output y = sum()\n", outcome: .fails("1:12: error: 'sum' takes 1 or 2 arguments, got 0")),
    NastyInput(what: "a function of no parameters", source: "def one() = 1\noutput y = one() + one()\n", outcome: .compiles(outputs: ["y"])),
    NastyInput(
        what: "ten thousand arguments", source: "output y = concat(" + Array(repeating: "[1]", count: 10_000).joined(separator: ", ") + ", 0)\n",
        outcome: .compiles(outputs: ["y"])),
]

@Suite("Language: a corpus of nasty inputs")
struct FrontEndCorpusTests {
    @Test(arguments: nastyInputs)
    func compilesOrFailsWhereItShould(_ input: NastyInput) throws {
        let result = try compileOnSmallStack(input.source)
        switch (input.outcome, result) {
        case let (.compiles(outputs), .success(program)):
            #expect(program.graph.outputs.map(\.name) == outputs)
        case let (.fails(expected), .failure(errors)):
            let first = errors.description.prefix { $0 != "\n" }
            #expect(first == "test.nabla:" + expected)
            #expect(errors.description.split(separator: "\n").allSatisfy { $0.count < 300 }, "every rendered line is short")
        case let (.compiles, .failure(errors)):
            Issue.record("expected to compile: \(errors.description.prefix(1000))")
        case (.fails, .success):
            Issue.record("expected an error, but it compiled")
        }
    }

    /// Names that are C keywords, C's `main`, libc functions and macros are mangled, so a kernel
    /// that takes and returns them is valid C.
    @Test func cKeywordsAndLibcNamesCompileToValidC() throws {
        let names = ["int", "return", "main", "double", "for", "if", "static", "void", "struct", "restrict", "inline", "printf", "malloc", "free", "fabs", "sinh", "NULL", "errno", "EOF", "out", "in", "n", "_", "__x"]
        var source = names.map { "input \($0)" }.joined(separator: "\n") + "\n"
        source += "output double2 = " + names.joined(separator: " + ") + "\n"
        source += names.map { "output \($0)_ = 2 * \($0)\n" }.joined()
        source += "auto = int * return\noutput auto\n"
        let program = try NablaProgram(source: source, fileName: "c.nabla")
        var inputs: [String: TensorData] = [:]
        for (k, name) in names.enumerated() { inputs[name] = TensorData(Double(k + 1)) }
        let out = try expectKernelMatchesInterpreter(program.graph, inputs)
        #expect(out["double2"]!.scalar == Double(names.count * (names.count + 1) / 2))
        #expect(out["auto"]!.scalar == 2)
        #expect(out["main_"]!.scalar == 6)
        #expect(program.graph.outputs.count == names.count + 2)
    }
}
