import Foundation

/// Lexing and parsing a whole file, in two halves at once when it is long.
///
/// Statements are independent of each other: each ends at a newline token (the lexer writes
/// those only outside brackets, or for ';'), and the parser keeps nothing from one statement to
/// the next but its diagnostics and the names of statements that failed. The lexer keeps
/// nothing across a line break but its bracket depth. So a long file is cut at a line break
/// near its middle; the second half is lexed and parsed on a thread of its own while the
/// calling thread does the first, and when the first half ends outside any bracket (a newline
/// token at the cut) the two results, joined in order, are what one pass over the whole file
/// gives. Otherwise (a bracket left open across the cut) the file is parsed in one pass.
extension Parser {
    /// What lexing and parsing a file gives.
    struct Parsed: Sendable, Equatable {
        var statements: [Statement]
        /// The lexer's diagnostics and the parser's, in the order of their spans.
        var diagnostics: [Diagnostic]
        /// Names bound by statements that failed to parse, in file order.
        var failedNames: [String]
    }

    /// Files of at least this many bytes (about 3,000 lines of bindings) are parsed in two
    /// halves; below it, a thread costs more than it saves.
    static let twoHalvesMinimum = 1 << 17

    /// The statements of `file`, with every diagnostic of lexing and parsing it.
    static func parseFile(_ file: SourceFile) -> Parsed {
        guard file.bytes.count >= twoHalvesMinimum, let cut = lineBreak(near: file.bytes.count / 2, in: file.bytes) else {
            return parsedAlone(file)
        }
        return parsedInTwo(file, cutAfter: cut)
    }

    /// `file` lexed and parsed as two halves at once, the first ending with the line break at
    /// byte `cut`, or in one pass when the first half ends inside brackets.
    static func parsedInTwo(_ file: SourceFile, cutAfter cut: Int) -> Parsed {
        precondition(file.bytes[cut] == UInt8(ascii: "\n"), "a file is cut after a line break")
        let second = OtherThread {
            var lexer = Lexer(file: file)
            let tokens = lexer.tokenize((cut + 1)..<file.bytes.count, closing: true).tokens
            return parsed(tokens, lexer.diagnostics)
        }
        var lexer = Lexer(file: file)
        var (head, depth) = lexer.tokenize(0..<(cut + 1), closing: false)
        guard depth == 0 else {
            _ = second.join()
            return parsedAlone(file)
        }
        head.append(Token(kind: .end, text: "", span: SourceSpan(start: cut + 1, end: cut + 1)))
        var whole = parsed(head, lexer.diagnostics)
        let rest = second.join()
        whole.statements += rest.statements
        whole.diagnostics += rest.diagnostics
        whole.failedNames += rest.failedNames
        return whole
    }

    /// `file` lexed and parsed in one pass.
    static func parsedAlone(_ file: SourceFile) -> Parsed {
        var lexer = Lexer(file: file)
        let tokens = lexer.tokenize()
        return parsed(tokens, lexer.diagnostics)
    }

    /// One parser over all of `tokens` (a stream ending in an end token), its diagnostics after
    /// the lexer's, all in the order of their spans.
    private static func parsed(_ tokens: [Token], _ lexerDiagnostics: [Diagnostic]) -> Parsed {
        var parser = Parser(tokens: tokens)
        let statements = parser.parseProgram()
        let diagnostics = (lexerDiagnostics + parser.diagnostics).sorted { $0.span.start < $1.span.start }
        return Parsed(statements: statements, diagnostics: diagnostics, failedNames: parser.failedNames)
    }

    /// The index of a line break at or after `middle` (or before it, when there is none after),
    /// other than the file's last byte; nil when there is no such byte.
    static func lineBreak(near middle: Int, in bytes: [UInt8]) -> Int? {
        let last = bytes.count - 2
        guard last >= 0 else { return nil }
        var i = min(middle, last)
        while i <= last, bytes[i] != UInt8(ascii: "\n") { i += 1 }
        if i <= last { return i }
        i = min(middle, last)
        while i >= 0, bytes[i] != UInt8(ascii: "\n") { i -= 1 }
        return i >= 0 ? i : nil
    }
}
