import Foundation

/// Parsing a whole file, in two halves at once when it is long.
///
/// Statements are independent of each other: each ends at a newline token (the lexer writes
/// those only outside brackets, or for ';'), and the parser keeps nothing from one statement to
/// the next but its diagnostics and the names of statements that failed. So a long token stream
/// is cut at a newline token near its middle, the second half is parsed on a thread of its own
/// while the calling thread parses the first, and the two results, joined in order, are what
/// one pass over the whole stream gives.
extension Parser {
    /// What parsing a token stream gives.
    struct Parsed: Sendable, Equatable {
        var statements: [Statement]
        var diagnostics: [Diagnostic]
        /// Names bound by statements that failed to parse, in file order.
        var failedNames: [String]
    }

    /// Streams of at least this many tokens (about 5,000 lines of bindings) are parsed in two
    /// halves; below it, a thread costs more than it saves.
    static let twoHalvesMinimum = 1 << 16

    /// The statements of `tokens` (a lexer's whole output, ending in an end token).
    static func parseProgram(_ tokens: [Token]) -> Parsed {
        guard tokens.count >= twoHalvesMinimum, let cut = statementBoundary(near: tokens.count / 2, in: tokens) else {
            return parsedAlone(tokens)
        }
        return parsedInTwo(tokens, cutAfter: cut)
    }

    /// `tokens` parsed as two streams at once, the first ending with the newline token at `cut`.
    static func parsedInTwo(_ tokens: [Token], cutAfter cut: Int) -> Parsed {
        precondition(tokens[cut].kind == .newline && cut < tokens.count - 1, "a stream is cut after a newline token")
        let end = tokens[cut].span.end
        let head = Array(tokens[...cut]) + [Token(kind: .end, text: "", span: SourceSpan(start: end, end: end))]
        let tail = Array(tokens[(cut + 1)...])
        let second = Lock<Parsed?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread {
            let parsed = parsedAlone(tail)
            second.withLock { $0 = parsed }
            finished.signal()
        }
        // The parser keeps its nesting on the heap; this is ample.
        thread.stackSize = 4 << 20
        thread.start()
        var whole = parsedAlone(head)
        finished.wait()
        let rest = second.withLock { $0! }
        whole.statements += rest.statements
        whole.diagnostics += rest.diagnostics
        whole.failedNames += rest.failedNames
        return whole
    }

    /// One parser over all of `tokens`.
    static func parsedAlone(_ tokens: [Token]) -> Parsed {
        var parser = Parser(tokens: tokens)
        let statements = parser.parseProgram()
        return Parsed(statements: statements, diagnostics: parser.diagnostics, failedNames: parser.failedNames)
    }

    /// The index of a newline token at or after `middle` (or before it, when there is none after),
    /// other than the stream's closing newline; nil when there is no such token.
    static func statementBoundary(near middle: Int, in tokens: [Token]) -> Int? {
        // The stream ends with a newline and an end token, which are never a cut.
        let last = tokens.count - 3
        guard last >= 0 else { return nil }
        var i = min(middle, last)
        while i <= last, tokens[i].kind != .newline { i += 1 }
        if i <= last { return i }
        i = min(middle, last)
        while i >= 0, tokens[i].kind != .newline { i -= 1 }
        return i >= 0 ? i : nil
    }
}
