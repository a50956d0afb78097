/// A token of the graph-file language.
struct Token: Equatable {
    enum Kind: Equatable {
        case identifier
        case number
        case keyword
        case symbol  // operators and punctuation, text in `text`
        case newline  // ends a statement (also ';')
        case end
        case invalid
    }

    let kind: Kind
    let text: String
    let span: SourceSpan

    /// How the token is named in "expected ..., found ..." messages.
    var description: String {
        switch kind {
        case .identifier: return "name \(quoted(text))"
        case .number: return "number \(abbreviated(text))"
        case .keyword: return "keyword '\(text)'"
        case .symbol: return "'\(text)'"
        case .newline: return text == ";" ? "';'" : text.isEmpty ? "end of file" : "end of line"
        case .end: return "end of file"
        case .invalid: return "'\(text)'"
        }
    }
}

/// Splits source text into tokens. Newlines inside parentheses and brackets are skipped, so an
/// expression may span lines there.
struct Lexer {
    /// The operator or punctuation of one byte, if `c` is one.
    private static func symbol(_ c: UInt8) -> String? {
        switch c {
        case UInt8(ascii: "+"): "+"
        case UInt8(ascii: "-"): "-"
        case UInt8(ascii: "*"): "*"
        case UInt8(ascii: "/"): "/"
        case UInt8(ascii: "@"): "@"
        case UInt8(ascii: "^"): "^"
        case UInt8(ascii: "'"): "'"
        case UInt8(ascii: "("): "("
        case UInt8(ascii: ")"): ")"
        case UInt8(ascii: "["): "["
        case UInt8(ascii: "]"): "]"
        case UInt8(ascii: ","): ","
        case UInt8(ascii: ":"): ":"
        case UInt8(ascii: "="): "="
        default: nil
        }
    }

    /// The comparison operators of two bytes at `i`, if one starts there.
    private static func twoByteSymbol(_ b: [UInt8], at i: Int) -> String? {
        guard i + 1 < b.count, b[i + 1] == UInt8(ascii: "=") else { return nil }
        switch b[i] {
        case UInt8(ascii: "<"): return "<="
        case UInt8(ascii: ">"): return ">="
        case UInt8(ascii: "="): return "=="
        case UInt8(ascii: "!"): return "!="
        default: return nil
        }
    }

    let file: SourceFile
    private(set) var diagnostics: [Diagnostic] = []

    init(file: SourceFile) { self.file = file }

    /// True when the line starting at `offset` begins with a statement keyword.
    private func startsStatement(at offset: Int) -> Bool {
        let b = file.bytes
        var i = offset
        while i < b.count, b[i] == UInt8(ascii: " ") || b[i] == UInt8(ascii: "\t") { i += 1 }
        var j = i
        while j < b.count, (b[j] >= 97 && b[j] <= 122) { j += 1 }
        guard j > i, j == b.count || !(b[j] == 95 || (b[j] >= 65 && b[j] <= 90) || (b[j] >= 48 && b[j] <= 57)) else { return false }
        let word = String(decoding: b[i..<j], as: UTF8.self)
        return ["dim", "input", "output", "grad", "jacobian", "hessian", "jvp", "hvp", "def", "taylor"].contains(word)
    }

    /// Every token of the file, ending with a newline and an end token.
    mutating func tokenize() -> [Token] { tokenize(file.bytes.indices, closing: true).tokens }

    /// The tokens of the bytes in `range`, lexed from outside any bracket, and the bracket depth
    /// after them; with `closing`, ending with the file's closing newline and end tokens.
    /// Lexing needs nothing from before a line break but the depth, so bytes after a line
    /// break lexed at depth 0 give the tokens one pass does whenever it is at depth 0 there.
    mutating func tokenize(_ range: Range<Int>, closing: Bool) -> (tokens: [Token], depth: Int) {
        let b = file.bytes
        var tokens: [Token] = []
        tokens.reserveCapacity(range.count / 3)
        var i = range.lowerBound
        let end = range.upperBound
        var depth = 0
        func isIdentStart(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 }
        func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        while i < end {
            let c = b[i]
            let start = i
            switch c {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                i += 1
            case UInt8(ascii: "#"):
                while i < b.count, b[i] != UInt8(ascii: "\n") { i += 1 }
            case UInt8(ascii: "\n"), UInt8(ascii: ";"):
                i += 1
                // A line that starts with a statement keyword ends an unclosed bracket, so a
                // missing ')' costs one error, not the rest of the file.
                if depth > 0, c == UInt8(ascii: "\n"), startsStatement(at: i) { depth = 0 }
                if depth == 0 || c == UInt8(ascii: ";") {
                    tokens.append(Token(kind: .newline, text: c == UInt8(ascii: ";") ? ";" : "\n", span: SourceSpan(start: start, end: i)))
                }
            case _ where isIdentStart(c):
                while i < b.count, isIdentStart(b[i]) || isDigit(b[i]) { i += 1 }
                let text = String(decoding: b[start..<i], as: UTF8.self)
                tokens.append(Token(kind: Self.isKeyword(b, start..<i) ? .keyword : .identifier, text: text, span: SourceSpan(start: start, end: i)))
            case _ where isDigit(c) || (c == UInt8(ascii: ".") && i + 1 < b.count && isDigit(b[i + 1])):
                while i < b.count, isDigit(b[i]) { i += 1 }
                if i < b.count, b[i] == UInt8(ascii: ".") {
                    i += 1
                    while i < b.count, isDigit(b[i]) { i += 1 }
                }
                if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                    var j = i + 1
                    if j < b.count, b[j] == UInt8(ascii: "+") || b[j] == UInt8(ascii: "-") { j += 1 }
                    if j < b.count, isDigit(b[j]) {
                        i = j
                        while i < b.count, isDigit(b[i]) { i += 1 }
                    }
                }
                tokens.append(Token(kind: .number, text: String(decoding: b[start..<i], as: UTF8.self), span: SourceSpan(start: start, end: i)))
            default:
                if let text = Self.twoByteSymbol(b, at: i) {
                    i += 2
                    tokens.append(Token(kind: .symbol, text: text, span: SourceSpan(start: start, end: i)))
                } else if c == UInt8(ascii: "<") || c == UInt8(ascii: ">") {
                    i += 1
                    tokens.append(Token(kind: .symbol, text: c == UInt8(ascii: "<") ? "<" : ">", span: SourceSpan(start: start, end: i)))
                } else if let text = Self.symbol(c) {
                    i += 1
                    if c == UInt8(ascii: "(") || c == UInt8(ascii: "[") { depth += 1 }
                    if c == UInt8(ascii: ")") || c == UInt8(ascii: "]") { depth = max(0, depth - 1) }
                    tokens.append(Token(kind: .symbol, text: text, span: SourceSpan(start: start, end: i)))
                } else {
                    // One whole character (which may be several bytes) for the message.
                    i += 1
                    while i < b.count, b[i] & 0xC0 == 0x80 { i += 1 }
                    let text = String(decoding: b[start..<i], as: UTF8.self)
                    let shown = text.unicodeScalars.allSatisfy { $0.properties.isEmoji || $0.value >= 32 } ? text : "\\u{\(String(text.unicodeScalars.first!.value, radix: 16))}"
                    diagnostics.append(Diagnostic("unexpected character '\(shown)'", at: SourceSpan(start: start, end: i)))
                    // The parser stops at this token without a second message.
                    tokens.append(Token(kind: .invalid, text: shown, span: SourceSpan(start: start, end: i)))
                }
            }
        }
        if closing {
            tokens.append(Token(kind: .newline, text: "", span: SourceSpan(start: b.count, end: b.count)))
            tokens.append(Token(kind: .end, text: "", span: SourceSpan(start: b.count, end: b.count)))
        }
        return (tokens, depth)
    }

    /// The language's keywords, each packed as `packed` packs a word (all have at most 8 bytes).
    private static let keywords: [UInt64] = [
        "dim", "input", "output", "grad", "wrt", "jacobian", "hessian", "jvp", "hvp", "along", "def", "taylor", "at", "order",
        "and", "or", "not",
    ].map { word in packed(Array(word.utf8), 0..<word.utf8.count)! }

    /// The bytes of `range` in one integer, the first lowest, or nil for more than 8 bytes.
    private static func packed(_ bytes: [UInt8], _ range: Range<Int>) -> UInt64? {
        guard range.count <= 8 else { return nil }
        var word: UInt64 = 0
        for (k, i) in range.enumerated() { word |= UInt64(bytes[i]) << (8 * UInt64(k)) }
        return word
    }

    /// Whether the word at `range` of `bytes` is a keyword (compared as integers: every
    /// identifier asks, and comparing unequal strings is slow).
    private static func isKeyword(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        guard let word = packed(bytes, range) else { return false }
        return keywords.contains(word)
    }
}
