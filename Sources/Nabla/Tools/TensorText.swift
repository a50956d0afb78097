import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reading tensor values from command-line text and JSON, and printing them.
public enum TensorText {
    /// Parses `VALUES` for a tensor of `shape`: a comma-separated row-major list of numbers, or
    /// `@path` naming a JSON file with a flat or nested array (or a single number).
    ///
    /// The file is read to its end whatever it is (a pipe, a FIFO, `/dev/stdin`), up to
    /// `inputFileByteLimit(for:)` bytes. A number too large for a double (`1e309`) is an error,
    /// as in a graph file; "nan", "inf" and "-inf" are the non-finite values.
    /// - Throws: `NablaError.invalidArgument` saying what is wrong and where, or `.sizeMismatch`.
    public static func parse(_ text: String, shape: Shape, name: String) throws -> TensorData {
        if text.hasPrefix("@") {
            let path = String(text.dropFirst())
            let data: [UInt8]
            do {
                data = try readFile(atPath: path, byteLimit: inputFileByteLimit(for: shape))
            } catch let failure as FileReadError {
                throw NablaError.invalidArgument(op: "input '\(name)'", reason: failure.description)
            }
            return try parseJSON(Data(data), shape: shape, name: name, source: path)
        }
        var scalars: [Double] = []
        for (k, piece) in text.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            guard let value = parseNumber(trimmed) else {
                throw NablaError.invalidArgument(op: "input '\(name)'", reason: "value \(k + 1) ('\(trimmed)') is not a number")
            }
            guard value.isFinite || isNonFiniteSpelling(trimmed) else {
                throw NablaError.invalidArgument(op: "input '\(name)'", reason: "value \(k + 1) ('\(trimmed)') is out of range for a double")
            }
            scalars.append(value)
        }
        guard scalars.count == shape.count else {
            throw NablaError.sizeMismatch(what: "input '\(name)' (shape \(shape))", expected: shape.count, got: scalars.count)
        }
        return try TensorData(shape: shape, scalars: scalars)
    }

    /// The most bytes `parse` reads from an input file for a tensor of `shape`: 1 MiB plus 256
    /// bytes per element, far more than any JSON spelling of the values needs, so that
    /// `@/dev/zero` ends with an error instead of filling memory.
    public static func inputFileByteLimit(for shape: Shape) -> Int {
        let (perElement, overflow) = shape.count.multipliedReportingOverflow(by: 256)
        return overflow ? Int.max : perElement.addingReportingOverflow(1 << 20).overflow ? Int.max : perElement + (1 << 20)
    }

    /// Parses JSON holding a number or a (nested) array of numbers. A nested array must match
    /// `shape` exactly; a flat one needs only the right element count. Numbers too large for a
    /// double are errors; strings may hold "nan", "inf", "-inf" or a number.
    /// - Throws: `NablaError.invalidArgument` naming `source` with the line and column of the
    ///   problem, `.shapeMismatch` or `.sizeMismatch`.
    public static func parseJSON(_ data: Data, shape: Shape, name: String, source: String) throws -> TensorData {
        var reader = InputJSONReader(bytes: Array(data))
        do {
            try reader.read()
        } catch let failure as InputJSONReader.Failure {
            let (line, column) = reader.location(of: failure.offset)
            throw NablaError.invalidArgument(op: "input '\(name)'", reason: "\(source):\(line):\(column): \(failure.message)")
        }
        let dims = reader.dims
        if dims.count > 1, Shape(dims) != shape {
            throw NablaError.shapeMismatch(op: "input '\(name)'", shapes: [Shape(dims), shape], reason: "the JSON array does not have the declared shape")
        }
        guard reader.scalars.count == shape.count else {
            throw NablaError.sizeMismatch(what: "input '\(name)' (shape \(shape))", expected: shape.count, got: reader.scalars.count)
        }
        return try TensorData(shape: shape, scalars: reader.scalars)
    }

    /// Reads the file at `path` to its end, in chunks, so that pipes, FIFOs, `/dev/stdin` and
    /// files whose size is not known in advance read like regular files.
    /// - Throws: `FileReadError` naming the file: it cannot be opened or read, or it holds more
    ///   than `byteLimit` bytes.
    public static func readFile(atPath path: String, byteLimit: Int) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileReadError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if got == 0 { return bytes }
            if got < 0 {
                if errno == EINTR { continue }
                throw FileReadError(path: path, reason: String(cString: strerror(errno)))
            }
            guard bytes.count <= byteLimit - got else {
                throw FileReadError(path: path, reason: "it is longer than \(byteLimit) bytes")
            }
            bytes.append(contentsOf: chunk[0..<got])
        }
    }

    /// A number, also "nan", "inf" and "-inf". Text too large for a double reads as an
    /// infinity here; callers refuse it unless `isNonFiniteSpelling` says it was meant.
    static func parseNumber(_ text: String) -> Double? {
        switch text.lowercased() {
        case "nan": return .nan
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default:
            guard !text.isEmpty, text.allSatisfy({ "0123456789+-.eE".contains($0) }) else { return nil }
            return Double(text)
        }
    }

    /// True for the spellings of NaN and the infinities that `parseNumber` accepts.
    static func isNonFiniteSpelling(_ text: String) -> Bool {
        ["nan", "inf", "+inf", "infinity", "+infinity", "-inf", "-infinity"].contains(text.lowercased())
    }

    /// A JSON number that reads back exactly (17 significant digits), or "nan", "inf", "-inf"
    /// as strings.
    public static func jsonNumber(_ value: Double) -> String {
        if value.isNaN { return "\"nan\"" }
        if value.isInfinite { return value > 0 ? "\"inf\"" : "\"-inf\"" }
        return String(format: "%.17g", value)
    }

    /// One JSON object mapping each name to `{"shape": [...], "data": [...]}`, in the order given.
    public static func json(_ outputs: [(name: String, value: TensorData)]) -> String {
        let entries = outputs.map { name, value in
            let shape = value.shape.dims.map(String.init).joined(separator: ", ")
            let data = value.scalars.map(jsonNumber).joined(separator: ", ")
            return "  \(jsonString(name)): {\"shape\": [\(shape)], \"data\": [\(data)]}"
        }
        return "{\n" + entries.joined(separator: ",\n") + "\n}"
    }

    /// A JSON string literal.
    public static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// Human-readable text: `name [shape] = value` for scalars, nested brackets for tensors.
    public static func text(_ outputs: [(name: String, value: TensorData)]) -> String {
        outputs.map { name, value in
            let header = "\(name) \(value.shape)"
            if value.shape.isScalar { return "\(header) = \(format(value.scalars[0]))" }
            return "\(header) =\n" + nested(value)
        }.joined(separator: "\n")
    }

    /// The shortest decimal that reads back as exactly `value`.
    private static func format(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        if value == value.rounded(), Swift.abs(value) < 1e15 { return String(Int(value)) }
        return value.description
    }

    private static func nested(_ value: TensorData) -> String {
        let dims = value.shape.dims
        var lines: [String] = []
        func row(_ offset: Int, _ axis: Int, _ indent: String) {
            if axis == dims.count - 1 {
                let items = (0..<dims[axis]).map { format(value.scalars[offset + $0]) }
                lines.append(indent + "[" + items.joined(separator: ", ") + "]")
                return
            }
            lines.append(indent + "[")
            let stride = dims[(axis + 1)...].reduce(1, *)
            for i in 0..<dims[axis] { row(offset + i * stride, axis + 1, indent + "  ") }
            lines.append(indent + "]")
        }
        row(0, 0, "  ")
        return lines.joined(separator: "\n")
    }
}

/// A file that could not be read: its path and why.
public struct FileReadError: Error, CustomStringConvertible {
    /// The path as given.
    public let path: String
    /// Why it could not be read: the system's error message, or that the file is too long.
    public let reason: String
    public var description: String { "cannot read '\(path)': \(reason)" }
}

/// Reads the JSON of an input file: a number, a string naming a number, or nested arrays of
/// them, collecting the numbers in order and the extent of the arrays at each depth.
struct InputJSONReader {
    /// What is wrong, and the byte offset where.
    struct Failure: Error {
        let message: String
        let offset: Int
    }

    /// The deepest nesting accepted (a tensor of rank 64 is far past any use).
    static let maximumDepth = 64

    let bytes: [UInt8]
    private var position = 0
    /// The numbers, in order.
    private(set) var scalars: [Double] = []
    /// The length of the arrays at each depth (every array at one depth must agree), known
    /// once the first array at that depth has closed.
    private var extents: [Int?] = []
    /// The length of the arrays at each depth.
    var dims: [Int] { extents.map { $0 ?? 0 } }
    /// The depth at which numbers were found, once one was.
    private var leafDepth: Int?

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Reads the whole text: one value and nothing after it but white space.
    mutating func read() throws {
        skipWhitespace()
        guard position < bytes.count else { throw Failure(message: "not valid JSON: the file is empty", offset: position) }
        try value(depth: 0)
        skipWhitespace()
        guard position == bytes.count else { throw failure("not valid JSON: unexpected text after the value") }
    }

    /// Line and column (from 1, columns in bytes) of a byte offset.
    func location(of offset: Int) -> (line: Int, column: Int) {
        var line = 1, column = 1
        for byte in bytes[0..<min(offset, bytes.count)] {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    private func failure(_ message: String) -> Failure { Failure(message: message, offset: position) }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
    }

    private mutating func value(depth: Int) throws {
        guard let byte = current else { throw failure("not valid JSON: the text ends where a value should be") }
        let start = position
        switch byte {
        case UInt8(ascii: "["): try array(depth: depth)
        case UInt8(ascii: "\""): try leaf(stringNumber(), depth: depth, at: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try leaf(number(), depth: depth, at: start)
        case UInt8(ascii: "{"): throw failure("holds an object; expected numbers or arrays of numbers")
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            throw failure("holds something other than numbers (true, false or null)")
        default: throw failure("not valid JSON: unexpected character")
        }
    }

    private mutating func leaf(_ number: Double, depth: Int, at offset: Int) throws {
        if leafDepth == nil { leafDepth = depth }
        // An array closed at this depth or below means arrays where this number is.
        guard leafDepth == depth, extents.count <= depth else {
            throw Failure(message: "mixes numbers and arrays at one level", offset: offset)
        }
        scalars.append(number)
    }

    private mutating func array(depth: Int) throws {
        let start = position
        guard depth < Self.maximumDepth else { throw failure("holds arrays nested deeper than \(Self.maximumDepth)") }
        if let leafDepth, depth >= leafDepth { throw failure("mixes numbers and arrays at one level") }
        position += 1
        var count = 0
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            position += 1
        } else {
            while true {
                skipWhitespace()
                try value(depth: depth + 1)
                count += 1
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                if current == UInt8(ascii: "]") { position += 1; break }
                throw failure("not valid JSON: expected ',' or ']'")
            }
        }
        // Inner arrays close first, so a depth may be reached before the ones above it.
        while extents.count <= depth { extents.append(nil) }
        if extents[depth] == nil { extents[depth] = count }
        guard extents[depth] == count else {
            throw Failure(message: "holds a ragged array: an array of \(count) elements where the others at its level have \(extents[depth]!)", offset: start)
        }
    }

    /// A JSON number, which must be finite as a double.
    private mutating func number() throws -> Double {
        let start = position
        func digits() -> Int {
            let first = position
            while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { position += 1 }
            return position - first
        }
        if current == UInt8(ascii: "-") { position += 1 }
        let integer = position
        guard digits() > 0 else { throw failure("not valid JSON: a number needs digits") }
        if bytes[integer] == UInt8(ascii: "0"), position - integer > 1 {
            throw Failure(message: "not valid JSON: a number cannot start with 0", offset: integer)
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw failure("not valid JSON: digits must follow '.'") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw failure("not valid JSON: digits must follow the exponent's 'e'") }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw Failure(message: "number \(text) is out of range for a double", offset: start)
        }
        return value
    }

    /// A JSON string holding a number: "nan", "inf", "-inf" or digits.
    private mutating func stringNumber() throws -> Double {
        let start = position
        position += 1
        var content: [UInt8] = []
        while true {
            guard let byte = current else { throw Failure(message: "not valid JSON: the string never ends", offset: start) }
            position += 1
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                // Escapes never spell a number; keep the text to show it.
                guard let escaped = current else { continue }
                position += 1
                content.append(contentsOf: [UInt8(ascii: "\\"), escaped])
            } else if byte < 0x20 {
                throw Failure(message: "not valid JSON: a control character in a string", offset: position - 1)
            } else {
                content.append(byte)
            }
        }
        let text = String(decoding: content, as: UTF8.self)
        guard let value = TensorText.parseNumber(text) else {
            throw Failure(message: "holds the string \(TensorText.jsonString(text)), which is not a number (strings may hold \"nan\", \"inf\" or \"-inf\")", offset: start)
        }
        guard value.isFinite || TensorText.isNonFiniteSpelling(text) else {
            throw Failure(message: "number \(text) is out of range for a double", offset: start)
        }
        return value
    }
}
