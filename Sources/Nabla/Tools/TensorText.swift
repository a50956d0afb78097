import Foundation

/// Reading tensor values from command-line text and JSON, and printing them.
public enum TensorText {
    /// Parses `VALUES` for a tensor of `shape`: a comma-separated row-major list of numbers, or
    /// `@path` naming a JSON file with a flat or nested array (or a single number).
    /// - Throws: `NablaError.invalidArgument` saying what is wrong, or `.sizeMismatch`.
    public static func parse(_ text: String, shape: Shape, name: String) throws -> TensorData {
        if text.hasPrefix("@") {
            let path = String(text.dropFirst())
            guard let data = FileManager.default.contents(atPath: path) else {
                throw NablaError.invalidArgument(op: "input '\(name)'", reason: "cannot read '\(path)'")
            }
            return try parseJSON(data, shape: shape, name: name, source: path)
        }
        var scalars: [Double] = []
        for (k, piece) in text.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            guard let value = parseNumber(trimmed) else {
                throw NablaError.invalidArgument(op: "input '\(name)'", reason: "value \(k + 1) ('\(trimmed)') is not a number")
            }
            scalars.append(value)
        }
        guard scalars.count == shape.count else {
            throw NablaError.sizeMismatch(what: "input '\(name)' (shape \(shape))", expected: shape.count, got: scalars.count)
        }
        return try TensorData(shape: shape, scalars: scalars)
    }

    /// Parses JSON holding a number or a (nested) array of numbers. A nested array must match
    /// `shape` exactly; a flat one needs only the right element count.
    public static func parseJSON(_ data: Data, shape: Shape, name: String, source: String) throws -> TensorData {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw NablaError.invalidArgument(op: "input '\(name)'", reason: "'\(source)' is not valid JSON")
        }
        var scalars: [Double] = []
        var dims: [Int] = []
        func walk(_ value: Any, depth: Int) throws {
            if let array = value as? [Any] {
                if depth == dims.count { dims.append(array.count) }
                guard depth < dims.count, dims[depth] == array.count else {
                    throw NablaError.invalidArgument(op: "input '\(name)'", reason: "'\(source)' holds a ragged array")
                }
                for element in array { try walk(element, depth: depth + 1) }
            } else if let number = value as? NSNumber, !String(describing: type(of: value)).contains("Boolean") {
                guard depth == dims.count || dims.isEmpty && depth == 0 else {
                    throw NablaError.invalidArgument(op: "input '\(name)'", reason: "'\(source)' mixes numbers and arrays at one level")
                }
                scalars.append(number.doubleValue)
            } else if let string = value as? String, let number = parseNumber(string) {
                scalars.append(number)
            } else {
                throw NablaError.invalidArgument(op: "input '\(name)'", reason: "'\(source)' holds something other than numbers")
            }
        }
        try walk(object, depth: 0)
        if dims.count > 1, Shape(dims) != shape {
            throw NablaError.shapeMismatch(op: "input '\(name)'", shapes: [Shape(dims), shape], reason: "the JSON array does not have the declared shape")
        }
        guard scalars.count == shape.count else {
            throw NablaError.sizeMismatch(what: "input '\(name)' (shape \(shape))", expected: shape.count, got: scalars.count)
        }
        return try TensorData(shape: shape, scalars: scalars)
    }

    /// A number, also "nan", "inf" and "-inf".
    static func parseNumber(_ text: String) -> Double? {
        switch text.lowercased() {
        case "nan": return .nan
        case "inf", "+inf", "infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default:
            guard !text.isEmpty, text.allSatisfy({ "0123456789+-.eE".contains($0) }) else { return nil }
            return Double(text)
        }
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
