/// A C identifier derived from arbitrary text: letters and digits are kept, an underscore
/// becomes `__`, and every other byte (and a leading digit) becomes `_XX`, its hex code. The
/// encoding can be read back unambiguously, so distinct names give distinct identifiers.
///
/// Because every underscore of the text is doubled, no mangled name contains a lone `_`
/// followed by a lower-case letter: names the generated C gives its own file-scope functions
/// (`NAME_part0`, `nabla_sigmoid`) can never be produced from user text.
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
