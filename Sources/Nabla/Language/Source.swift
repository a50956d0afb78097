/// A source file's text with line lookup, for diagnostics.
public struct SourceFile: Sendable {
    /// The name shown in diagnostics (usually the path as given).
    public let name: String
    public let text: String
    /// UTF-8 view of the text; spans are byte offsets into it.
    let bytes: [UInt8]
    /// Byte offset where each line starts.
    private let lineStarts: [Int]

    public init(name: String, text: String) {
        self.name = name
        self.text = text
        bytes = Array(text.utf8)
        var starts = [0]
        bytes.withUnsafeBufferPointer { buffer in
            for i in 0..<buffer.count where buffer[i] == UInt8(ascii: "\n") { starts.append(i + 1) }
        }
        lineStarts = starts
    }

    /// 1-based line and column (in characters) of a byte offset.
    public func location(of offset: Int) -> (line: Int, column: Int) {
        let offset = min(max(offset, 0), bytes.count)
        var low = 0, high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        let prefix = bytes[lineStarts[low]..<offset]
        // ASCII (the usual case) has one character per byte; anything else is counted.
        let column = prefix.allSatisfy { $0 < 0x80 } ? prefix.count + 1 : String(decoding: prefix, as: UTF8.self).count + 1
        return (low + 1, column)
    }

    /// The text of a 1-based line, without its newline.
    public func line(_ number: Int) -> String {
        guard number >= 1, number <= lineStarts.count else { return "" }
        let start = lineStarts[number - 1]
        var end = number < lineStarts.count ? lineStarts[number] - 1 : bytes.count
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
    }

    /// The file for `bytes`, and an error at the first bad byte if they are not UTF-8 (the file's
    /// text then has U+FFFD in place of each bad sequence).
    static func decoding(_ bytes: [UInt8], name: String) -> (SourceFile, Diagnostic?) {
        if let text = String(validating: bytes, as: UTF8.self) { return (SourceFile(name: name, text: text), nil) }
        let file = SourceFile(name: name, text: String(decoding: bytes, as: UTF8.self))
        guard let (offset, length) = firstInvalidUTF8(in: bytes) else { return (file, nil) }
        let shown = bytes[offset..<offset + length].map { "0x" + String($0, radix: 16, uppercase: true) }.joined(separator: " ")
        let message = "the file is not valid UTF-8 text: \(length == 1 ? "byte" : "bytes") \(shown) \(length == 1 ? "is" : "are") not a character"
        // The text holds U+FFFD (3 bytes) where the bad sequence was; every byte before it is the same.
        return (file, Diagnostic(message, at: SourceSpan(start: offset, end: offset + 3)))
    }

    /// Offset and length of the first ill-formed UTF-8 sequence in `bytes`, if there is one.
    static func firstInvalidUTF8(in bytes: [UInt8]) -> (offset: Int, length: Int)? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case let .valid(scalar): offset += scalar.count
            case .emptyInput: return nil
            case let .error(length): return (offset, length)
            }
        }
    }

    /// The source text of a span.
    func text(of span: SourceSpan) -> String {
        String(decoding: bytes[min(span.start, bytes.count)..<min(span.end, bytes.count)], as: UTF8.self)
    }
}

/// A range of bytes in a source file.
public struct SourceSpan: Hashable, Sendable {
    public var start: Int
    public var end: Int

    public init(start: Int, end: Int) {
        self.start = start
        self.end = max(start, end)
    }

    /// The smallest span covering both.
    func to(_ other: SourceSpan) -> SourceSpan { SourceSpan(start: min(start, other.start), end: max(end, other.end)) }
}

/// One problem found in a source file.
public struct Diagnostic: Sendable, Equatable {
    public enum Severity: String, Sendable { case error, warning, note }
    public var severity: Severity
    public var message: String
    public var span: SourceSpan
    /// Short text printed after the caret line (a suggestion, say).
    public var label: String?

    /// An error.
    public init(_ message: String, at span: SourceSpan, label: String? = nil) {
        self.init(.error, message, at: span, label: label)
    }

    public init(_ severity: Severity, _ message: String, at span: SourceSpan, label: String? = nil) {
        self.severity = severity
        self.message = message
        self.span = span
        self.label = label
    }

    /// `file:line:column: error: message`, the source line, and a caret line under the span. A
    /// line longer than `LineWindow.maximumWidth` characters is shown cut to a window around the
    /// caret.
    public func render(in file: SourceFile) -> String {
        let (line, column) = file.location(of: span.start)
        let (endLine, endColumn) = file.location(of: span.end)
        let characters = Array(file.line(line))
        let width = endLine == line ? max(1, endColumn - column) : max(1, characters.count - column + 1)
        let window = LineWindow(characters, caret: column - 1, width: width)
        let gutter = String(line)
        let pad = String(repeating: " ", count: gutter.count)
        var caret = window.caretPrefix + "^" + String(repeating: "~", count: window.caretWidth - 1)
        if let label { caret += " " + label }
        return """
            \(file.name):\(line):\(column): \(severity.rawValue): \(message)
            \(gutter) | \(window.text)
            \(pad) | \(caret)
            """
    }
}

/// The part of a source line a diagnostic shows: all of it when it is short, else a window
/// around the caret with "..." where it was cut.
struct LineWindow {
    /// Lines up to this many characters are shown whole; longer ones, this many around the caret.
    static let maximumWidth = 120
    /// Characters kept before the caret in a cut line.
    static let context = 40

    /// The line, or its window with "..." at the cut ends.
    let text: String
    /// What goes before the caret: a space per character shown before it, tabs copied so the
    /// caret lines up under tab-indented source.
    let caretPrefix: String
    /// Characters the caret line underlines.
    let caretWidth: Int

    init(_ line: [Character], caret: Int, width: Int) {
        guard line.count > Self.maximumWidth else {
            text = String(line)
            caretPrefix = Self.blanks(line.prefix(caret))
            caretWidth = width
            return
        }
        var start = max(0, min(caret, line.count) - Self.context)
        let end = min(line.count, start + Self.maximumWidth)
        start = max(0, min(start, end - Self.maximumWidth))
        let lead = start > 0 ? "..." : ""
        text = lead + String(line[start..<end]) + (end < line.count ? "..." : "")
        caretPrefix = String(repeating: " ", count: lead.count) + Self.blanks(line[start..<max(start, min(caret, end))])
        caretWidth = max(1, min(width, end - caret))
    }

    private static func blanks(_ characters: ArraySlice<Character>) -> String {
        String(characters.map { $0 == "\t" ? "\t" : " " })
    }
}

/// Every diagnostic from one source file; thrown when a file cannot be compiled, or cannot be
/// read at all.
public struct SourceErrors: Error, CustomStringConvertible, Sendable {
    public let file: SourceFile
    public let diagnostics: [Diagnostic]
    /// Why the file could not be read, when it could not (then `diagnostics` is empty).
    public let readFailure: String?

    /// At most this many errors (with their notes) are rendered by `description`; the count at
    /// the end covers them all.
    public static let maximumRenderedErrors = 100

    init(file: SourceFile, diagnostics: [Diagnostic]) {
        self.file = file
        self.diagnostics = diagnostics
        readFailure = nil
    }

    /// The file at `path` could not be read, for `reason`.
    init(unreadable path: String, reason: String) {
        file = SourceFile(name: path, text: "")
        diagnostics = []
        readFailure = reason
    }

    public var description: String {
        if let readFailure { return "error: cannot read '\(file.name)': \(readFailure)" }
        let errors = diagnostics.filter { $0.severity == .error }.count
        var rendered: [String] = []
        var renderedErrors = 0
        for diagnostic in diagnostics {
            if diagnostic.severity == .error {
                guard renderedErrors < Self.maximumRenderedErrors else { break }
                renderedErrors += 1
            }
            rendered.append(diagnostic.render(in: file))
        }
        if renderedErrors < errors { rendered.append("(\(errors - renderedErrors) more error\(errors - renderedErrors == 1 ? "" : "s") not shown)") }
        return rendered.joined(separator: "\n") + "\n\(errors) error\(errors == 1 ? "" : "s") in \(file.name)"
    }
}
