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
        for (i, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") { starts.append(i + 1) }
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
        let start = lineStarts[low]
        let column = String(decoding: bytes[start..<offset], as: UTF8.self).count + 1
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

    /// `file:line:column: error: message`, the source line, and a caret line under the span.
    public func render(in file: SourceFile) -> String {
        let (line, column) = file.location(of: span.start)
        let (endLine, endColumn) = file.location(of: span.end)
        let text = file.line(line)
        let gutter = String(line)
        let pad = String(repeating: " ", count: gutter.count)
        // Copy tabs so the caret lines up under tab-indented source.
        let prefix = String(text.prefix(column - 1).map { $0 == "\t" ? "\t" : " " })
        let width = endLine == line ? max(1, endColumn - column) : max(1, text.count - column + 1)
        var caret = "^" + String(repeating: "~", count: width - 1)
        if let label { caret += " " + label }
        return """
            \(file.name):\(line):\(column): \(severity.rawValue): \(message)
            \(gutter) | \(text)
            \(pad) | \(prefix)\(caret)
            """
    }
}

/// Every diagnostic from one source file; thrown when a file cannot be compiled.
public struct SourceErrors: Error, CustomStringConvertible, Sendable {
    public let file: SourceFile
    public let diagnostics: [Diagnostic]

    public var description: String {
        let errors = diagnostics.filter { $0.severity == .error }.count
        let rendered = diagnostics.map { $0.render(in: file) }.joined(separator: "\n")
        return rendered + "\n\(errors) error\(errors == 1 ? "" : "s") in \(file.name)"
    }
}
