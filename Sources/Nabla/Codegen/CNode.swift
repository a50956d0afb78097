/// Where a node's value lives in generated C.
public struct CValue {
    enum Storage {
        /// A rank-0 value held in a local variable.
        case local(String)
        /// A rank-0 constant written inline.
        case literal(String)
        /// Elements at a pointer.
        case pointer(String)
    }

    public let shape: Shape
    let storage: Storage

    /// C expression for the element at flat index `index` (ignored for rank 0 values).
    public func element(_ index: String) -> String {
        switch storage {
        case let .local(name), let .literal(name): return name
        case let .pointer(name): return "\(name)[\(index)]"
        }
    }

    /// C expression for the address of the element at flat index `index` (pointer storage).
    func address(at index: String) -> String {
        index == "0" ? address : "\(address) + \(index)"
    }

    /// C expression for the address of the first element, for calls into the runtime.
    public var address: String {
        switch storage {
        case let .local(name): return "&\(name)"
        case let .literal(text): return "(double[]){\(text)}"
        case let .pointer(name): return name
        }
    }
}

/// One operand or the result of a loop: a value read (or written) at
/// `offset + sum(index[k] * strides[k])` for each loop index.
public struct CAccess {
    public let value: CValue
    public let offset: Int
    public let strides: [Int]

    public init(_ value: CValue, offset: Int = 0, strides: [Int]) {
        self.value = value
        self.offset = offset
        self.strides = strides
    }
}

/// Accumulates lines of C with indentation.
final class CWriter {
    private(set) var lines: [String] = []
    var indent = 0

    func line(_ text: String) { lines.append(String(repeating: "    ", count: indent) + text) }

    func block(_ header: String, _ body: () throws -> Void) rethrows {
        line(header.isEmpty ? "{" : header + " {")
        indent += 1
        try body()
        indent -= 1
        line("}")
    }

    var text: String { lines.joined(separator: "\n") }
}

/// What an operation's `emitC` works with: the C values of its operands and result, and
/// helpers that write the loops most operations need.
public final class CNode {
    /// Where the result goes.
    public let output: CValue
    /// Where the operands are.
    public let inputs: [CValue]
    /// True when heavy kernels may call Nabla's runtime (JIT kernels) instead of inlining
    /// loops (standalone C).
    public let useRuntime: Bool
    let writer: CWriter

    init(output: CValue, inputs: [CValue], useRuntime: Bool, writer: CWriter) {
        self.output = output
        self.inputs = inputs
        self.useRuntime = useRuntime
        self.writer = writer
    }


    /// Writes one line of C.
    public func line(_ text: String) { writer.line(text) }

    /// Writes `header { body }`.
    public func block(_ header: String, _ body: () throws -> Void) rethrows { try writer.block(header, body) }

    /// Writes the result elementwise: `output[i] = expression(operands at i)`, reading operands
    /// with NumPy broadcasting.
    public func elementwise(_ expression: ([String]) -> String) {
        let shape = output.shape
        var accesses = [CAccess(output, strides: shape.strides)]
        for input in inputs { accesses.append(CAccess(input, strides: input.shape.broadcastStrides(to: shape))) }
        loop(over: shape, accesses) { "\($0[0]) = \(expression(Array($0.dropFirst())));" }
    }

    /// Writes the result as a strided view of operand 0: element `i` of the result (row-major)
    /// is operand element `offset + sum(index[k] * strides[k])`.
    public func gather(offset: Int, strides: [Int]) {
        loop(over: output.shape, [CAccess(output, strides: output.shape.strides), CAccess(inputs[0], offset: offset, strides: strides)]) {
            "\($0[0]) = \($0[1]);"
        }
    }

    /// Sets every element of the result to `value`.
    public func fill(_ value: Double) {
        loop(over: output.shape, [CAccess(output, strides: output.shape.strides)]) { "\($0[0]) = \(cLiteral(value));" }
    }

    /// Writes a loop nest over `shape` and, inside it, the statement built from the element
    /// expression of each access.
    ///
    /// When every access walks its value contiguously or not at all, the nest is one flat loop.
    public func loop(over shape: Shape, _ accesses: [CAccess], _ statement: ([String]) -> String) {
        let count = shape.count
        if count == 0 { return }
        if count == 1 {
            line(statement(accesses.map { $0.value.element(String($0.offset)) }))
            return
        }
        let contiguous = shape.strides
        let flat = accesses.allSatisfy { a in a.strides == contiguous || a.strides.allSatisfy { $0 == 0 } }
        if flat {
            block("for (long i = 0; i < \(count); i++)") {
                line(statement(accesses.map { a in
                    let moving = a.strides.contains { $0 != 0 }
                    let index = moving ? (a.offset == 0 ? "i" : "\(a.offset) + i") : String(a.offset)
                    return a.value.element(index)
                }))
            }
            return
        }
        let rank = shape.rank
        func nest(_ axis: Int) {
            if axis == rank {
                line(statement(accesses.map { a in
                    var terms: [String] = a.offset == 0 ? [] : [String(a.offset)]
                    for k in 0..<rank where a.strides[k] != 0 {
                        terms.append(a.strides[k] == 1 ? "i\(k)" : "i\(k) * \(a.strides[k])")
                    }
                    return a.value.element(terms.isEmpty ? "0" : terms.joined(separator: " + "))
                }))
                return
            }
            block("for (long i\(axis) = 0; i\(axis) < \(shape[axis]); i\(axis)++)") { nest(axis + 1) }
        }
        nest(0)
    }
}

/// A C literal that reads back as exactly `value`.
///
/// Swift prints the shortest decimal that round-trips, which a C compiler parses to the same
/// double; negative values are parenthesised so they compose, non-finite ones are spelt as
/// constant expressions.
public func cLiteral(_ value: Double) -> String {
    if value.isNaN { return "(0.0 / 0.0)" }
    if value.isInfinite { return value > 0 ? "(1.0 / 0.0)" : "(-1.0 / 0.0)" }
    var text = value.magnitude.description
    if !text.contains(".") && !text.contains("e") { text += ".0" }
    return value.sign == .minus ? "(-\(text))" : text
}

/// A short decimal for names and labels.
func formatDouble(_ value: Double) -> String {
    if value == value.rounded(), Swift.abs(value) < 1e15 { return String(Int(value)) }
    return value.description
}

/// A C identifier derived from arbitrary text: letters and digits are kept, an underscore
/// becomes `__`, and every other byte (and a leading digit) becomes `_XX`, its hex code. The
/// encoding can be read back unambiguously, so distinct names give distinct identifiers.
public func cIdentifier(_ text: String) -> String {
    var result = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            result.append(Character(UnicodeScalar(byte)))
        case UInt8(ascii: "_"):
            result += "__"
        default:
            result += "_" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
        }
    }
    if result.isEmpty { return "_" }
    // A leading digit is escaped like any other byte, which keeps the mapping one-to-one.
    if let first = result.first, first.isNumber {
        result = "_" + String(first.asciiValue!, radix: 16, uppercase: true) + result.dropFirst()
    }
    return result
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
