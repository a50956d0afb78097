import CTCC
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Compiled code loaded into this process and the entry point in it: code TinyCC relocated in
/// memory, or a shared library the system compiler built. The code stays mapped while this
/// object lives and is unmapped with it.
final class NativeCode: @unchecked Sendable {
    // Immutable after init; nothing is looked up in the code after it is loaded.

    /// What keeps the code mapped.
    enum Owner {
        /// A TinyCC state: `tcc_delete` frees the code with it.
        case tinyCC(OpaquePointer)
        /// A `dlopen` handle: `dlclose` unmaps the library.
        case sharedLibrary(UnsafeMutableRawPointer)
    }

    /// Address of the entry point.
    let address: UnsafeMutableRawPointer
    private let owner: Owner

    init(address: UnsafeMutableRawPointer, owner: Owner) {
        self.address = address
        self.owner = owner
    }

    deinit {
        switch owner {
        case let .tinyCC(state): tcc_delete(state)
        case let .sharedLibrary(handle): dlclose(handle)
        }
    }

    /// Compiles `source` with `backend` and loads it.
    static func compile(_ source: CKernelSource, backend: Backend) throws -> NativeCode {
        switch backend {
        case .tcc: return try TinyCC.compile(source.code, symbol: source.functionName)
        case .cc: return try NativeCompiler.compile(source.code, symbol: source.functionName, runtimeFunctions: source.runtimeFunctions)
        }
    }

    /// Writes `compilation`'s C for `backend` and compiles it. A split kernel on TinyCC is
    /// compiled unit by unit while its parts are lowered (`Compilation.emitUnits`).
    static func compile(_ compilation: Compilation, backend: Backend) throws -> (CKernelSource, NativeCode) {
        let options = Kernel.emitOptions(for: backend)
        guard backend == .tcc, compilation.isSplit else {
            let source = try compilation.emit(options)
            return (source, try compile(source, backend: backend))
        }
        var split: CKernelSource?
        let (code, units) = try TinyCC.compile(symbol: cIdentifier(options.functionName)) { add in
            split = try compilation.splitUnits(options, add)
        }
        return (split!.replacingCode(with: units.joined()), code)
    }
}

/// What C compilers say about errors: gcc, clang and TinyCC all write
/// `FILE:LINE[:COLUMN]: [fatal ]error: MESSAGE`.
enum CompilerDiagnostics {
    /// Splits `FILE:LINE[:COLUMN]: MESSAGE` into the line and the message (`error: ...`); a
    /// line of any other form is the message as it is, with no line.
    static func parse(_ diagnostic: String) -> (Int?, String) {
        let parts = diagnostic.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 3, let line = Int(parts[1]) else { return (nil, diagnostic) }
        var rest = parts.dropFirst(2)
        if let column = rest.first, Int(column) != nil { rest = rest.dropFirst() }
        return (line, rest.joined(separator: ":").trimmingCharacters(in: .whitespaces))
    }

    /// The compilation error for a compiler's output: its first line that reports an error
    /// (else its first line), with the line of `source` it points at; `fallback` when it said
    /// nothing.
    static func failure(_ output: [String], source: String, fallback: String) -> NablaError {
        guard let first = output.first(where: { $0.contains("error:") }) ?? output.first(where: { !$0.isEmpty }) else {
            return .compilation(message: fallback, line: nil, sourceLine: nil)
        }
        let (line, message) = parse(first)
        let sourceLine = line.flatMap { n in
            source.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(n - 1).first
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return .compilation(message: message, line: line, sourceLine: sourceLine)
    }
}
