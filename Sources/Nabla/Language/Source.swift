/// A source file's text with line lookup, for diagnostics.
public struct SourceFile: Sendable {
    /// The name shown in diagnostics (usually the path as given).
    public let name: String
    /// The file's text, a leading byte-order mark dropped.
    public let text: String
    /// UTF-8 view of the text; spans are byte offsets into it.
    let bytes: [UInt8]
    /// Where lines start, and how to count characters in them.
    private let lines: LineIndex

    /// A leading byte-order mark (U+FEFF, which some editors write) is dropped.
    public init(name: String, text: String) {
        let text = text.first == "\u{FEFF}" ? String(text.dropFirst()) : text
        self.name = name
        self.text = text
        bytes = Array(text.utf8)
        lines = LineIndex(bytes)
    }

    /// 1-based line and column (in characters) of a byte offset.
    public func location(of offset: Int) -> (line: Int, column: Int) {
        let offset = min(max(offset, 0), bytes.count)
        let line = lines.line(containing: offset)
        return (line + 1, lines.characters(before: offset, inLine: line, of: bytes) + 1)
    }

    /// The text of a 1-based line, without its newline.
    public func line(_ number: Int) -> String {
        guard number >= 1, number <= lines.count else { return "" }
        let range = lines.contentRange(of: number - 1, in: bytes)
        return String(decoding: bytes[range], as: UTF8.self)
    }

    /// How many characters a 1-based line has, without its newline.
    func characterCount(ofLine number: Int) -> Int {
        guard number >= 1, number <= lines.count else { return 0 }
        return lines.characters(before: lines.contentRange(of: number - 1, in: bytes).upperBound, inLine: number - 1, of: bytes)
    }

    /// The characters `range` (0-based, within the line) of a 1-based line.
    func text(ofLine number: Int, characters range: Range<Int>) -> String {
        guard number >= 1, number <= lines.count else { return "" }
        let start = lines.offset(ofCharacter: range.lowerBound, inLine: number - 1, of: bytes)
        let end = lines.offset(ofCharacter: range.upperBound, inLine: number - 1, of: bytes)
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

/// Where each line of a file starts, and enough to turn a byte offset into a column (counted
/// in characters) and back in time independent of the line's length: a line that is ASCII up
/// to the offset needs no counting, and a line with other characters has a checkpoint every
/// `stride` characters. Built in one pass.
struct LineIndex: Sendable {
    static let stride = 64
    /// Byte offset where each line starts.
    private let starts: [Int]
    /// For each line, the offset of its first byte that is not ASCII, or its end.
    private let asciiEnds: [Int]
    /// For each line with a byte that is not ASCII: the byte offsets of its characters 0,
    /// `stride`, 2 `stride`, ...
    private let checkpoints: [Int: [Int]]
    private let byteCount: Int

    init(_ bytes: [UInt8]) {
        var starts = [0], asciiEnds: [Int] = []
        var firstNonASCII: Int?
        bytes.withUnsafeBufferPointer { buffer in
            for i in 0..<buffer.count {
                if buffer[i] == UInt8(ascii: "\n") {
                    asciiEnds.append(firstNonASCII ?? i)
                    firstNonASCII = nil
                    starts.append(i + 1)
                } else if buffer[i] >= 0x80, firstNonASCII == nil {
                    firstNonASCII = i
                }
            }
        }
        asciiEnds.append(firstNonASCII ?? bytes.count)
        self.starts = starts
        self.asciiEnds = asciiEnds
        byteCount = bytes.count
        var checkpoints: [Int: [Int]] = [:]
        for line in starts.indices where asciiEnds[line] < Self.end(of: line, starts, bytes.count) {
            checkpoints[line] = Self.checkpoints(bytes, from: starts[line], to: Self.end(of: line, starts, bytes.count))
        }
        self.checkpoints = checkpoints
    }

    var count: Int { starts.count }

    /// The offset just past a line's last byte, before its newline.
    private static func end(of line: Int, _ starts: [Int], _ byteCount: Int) -> Int {
        line + 1 < starts.count ? starts[line + 1] - 1 : byteCount
    }

    /// The byte offsets of every `stride`-th character of `bytes[start..<end]`.
    private static func checkpoints(_ bytes: [UInt8], from start: Int, to end: Int) -> [Int] {
        var offsets = [start]
        var offset = start
        for (index, character) in String(decoding: bytes[start..<end], as: UTF8.self).enumerated() {
            if index > 0, index.isMultiple(of: stride) { offsets.append(offset) }
            offset += character.utf8.count
        }
        return offsets
    }

    /// The 0-based line holding a byte offset.
    func line(containing offset: Int) -> Int { starts.lastIndex(notAfter: offset) }

    /// A line's bytes without its newline (or the carriage return before it).
    func contentRange(of line: Int, in bytes: [UInt8]) -> Range<Int> {
        let start = starts[line]
        var end = Self.end(of: line, starts, byteCount)
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return start..<end
    }

    /// How many characters of the line come before the byte offset.
    func characters(before offset: Int, inLine line: Int, of bytes: [UInt8]) -> Int {
        let start = starts[line]
        guard offset > asciiEnds[line], let marks = checkpoints[line] else { return offset - start }
        var low = 0, high = marks.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if marks[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        return low * Self.stride + String(decoding: bytes[marks[low]..<offset], as: UTF8.self).count
    }

    /// The byte offset of a line's character (0-based; the line's character count gives its end).
    func offset(ofCharacter index: Int, inLine line: Int, of bytes: [UInt8]) -> Int {
        let start = starts[line], end = Self.end(of: line, starts, byteCount)
        // Before the ASCII run's last character (which a combining mark may extend), one byte
        // is one character.
        guard index >= asciiEnds[line] - start, let marks = checkpoints[line] else { return min(start + index, end) }
        let k = min(index / Self.stride, marks.count - 1)
        let stop = k + 1 < marks.count ? marks[k + 1] : end
        var offset = marks[k]
        for character in String(decoding: bytes[marks[k]..<stop], as: UTF8.self).prefix(index - k * Self.stride) {
            offset += character.utf8.count
        }
        return offset
    }
}

/// A range of bytes in a source file.
public struct SourceSpan: Hashable, Sendable {
    /// Byte offset of the first byte, from the start of the file's UTF-8 text.
    public var start: Int
    /// Byte offset just past the last byte (exclusive); never before `start`.
    public var end: Int

    /// The bytes from `start` up to `end`; an `end` before `start` gives the empty span at `start`.
    public init(start: Int, end: Int) {
        self.start = start
        self.end = max(start, end)
    }

    /// The smallest span covering both.
    func to(_ other: SourceSpan) -> SourceSpan { SourceSpan(start: min(start, other.start), end: max(end, other.end)) }
}

/// One problem found in a source file.
public struct Diagnostic: Sendable, Equatable {
    /// How serious a diagnostic is; a `note` adds context to the error before it (the call it
    /// came through, say).
    public enum Severity: String, Sendable { case error, warning, note }
    /// How serious it is; rendered as `error:`, `warning:` or `note:`.
    public var severity: Severity
    /// What is wrong, as rendered after the severity.
    public var message: String
    /// The bytes the diagnostic is about, underlined by the caret line.
    public var span: SourceSpan
    /// Short text printed after the caret line (a suggestion, say).
    public var label: String?

    /// An error.
    public init(_ message: String, at span: SourceSpan, label: String? = nil) {
        self.init(.error, message, at: span, label: label)
    }

    /// A diagnostic of any severity.
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
        let count = file.characterCount(ofLine: line)
        let width = endLine == line ? max(1, endColumn - column) : max(1, count - column + 1)
        let window = LineWindow(count: count, caret: column - 1, width: width) { file.text(ofLine: line, characters: $0) }
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

    /// The window of a line of `count` characters with the caret before character `caret`
    /// (0-based), underlining `width`; `text` gives the line's characters in a range.
    init(count: Int, caret: Int, width: Int, text: (Range<Int>) -> String) {
        guard count > Self.maximumWidth else {
            let line = Array(text(0..<count))
            self.text = String(line)
            caretPrefix = Self.blanks(line.prefix(caret))
            caretWidth = width
            return
        }
        var start = max(0, min(caret, count) - Self.context)
        let end = min(count, start + Self.maximumWidth)
        start = max(0, min(start, end - Self.maximumWidth))
        let shown = Array(text(start..<end))
        let lead = start > 0 ? "..." : ""
        self.text = lead + String(shown) + (end < count ? "..." : "")
        caretPrefix = String(repeating: " ", count: lead.count) + Self.blanks(shown.prefix(max(0, min(caret, end) - start)))
        caretWidth = max(1, min(width, end - caret))
    }

    /// A blank for each character, tabs kept.
    private static func blanks(_ characters: ArraySlice<Character>) -> String {
        String(characters.map { $0 == "\t" ? "\t" : " " })
    }
}

/// Every diagnostic from one source file; thrown when a file cannot be compiled, or cannot be
/// read at all.
public struct SourceErrors: Error, CustomStringConvertible, Sendable {
    /// The file the diagnostics are about (empty when it could not be read).
    public let file: SourceFile
    /// Every diagnostic found: errors, and notes on them.
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
