import CTCC
import Foundation
import NablaRuntime

/// Compiles C in memory with libtcc and hands back the relocated code.
///
/// libtcc 0.9.27 keeps global state, so every compilation in the process goes through one lock.
/// Running the compiled code needs no lock.
enum TinyCC {
    private static let lock = Lock(())

    /// Where Debian's `tcc` package keeps libtcc1.a and tcc's own headers. `NABLA_TCC_LIB_PATH`
    /// overrides it.
    static var libraryPath: String {
        if let path = ProcessInfo.processInfo.environment["NABLA_TCC_LIB_PATH"], !path.isEmpty { return path }
        #if arch(x86_64)
        let candidates = ["/usr/lib/x86_64-linux-gnu/tcc", "/usr/lib/tcc", "/usr/local/lib/tcc"]
        #elseif arch(arm64)
        let candidates = ["/usr/lib/aarch64-linux-gnu/tcc", "/usr/lib/tcc", "/usr/local/lib/tcc"]
        #else
        let candidates = ["/usr/lib/tcc", "/usr/local/lib/tcc"]
        #endif
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/libtcc1.a") } ?? candidates[0]
    }


    /// A relocated translation unit. Its code lives as long as this object.
    final class Module: @unchecked Sendable {
        // Immutable after init; tcc_get_symbol is not called after compile returns.
        private let state: OpaquePointer
        let symbol: UnsafeMutableRawPointer

        fileprivate init(state: OpaquePointer, symbol: UnsafeMutableRawPointer) {
            self.state = state
            self.symbol = symbol
        }

        deinit { tcc_delete(state) }
    }

    /// Collects error messages from libtcc's callback.
    private final class Diagnostics {
        var messages: [String] = []
    }

    /// Compiles `source` and returns the address of `symbol` in the relocated code.
    /// - Throws: `NablaError.compilation` with the first error's message and C line.
    static func compile(_ source: String, symbol: String) throws -> Module {
        try lock.withLock { _ in
            guard let state = tcc_new() else {
                throw NablaError.compilation(message: "tcc_new failed", line: nil, sourceLine: nil)
            }
            var owned = true
            defer { if owned { tcc_delete(state) } }
            let diagnostics = Diagnostics()
            let context = Unmanaged.passUnretained(diagnostics).toOpaque()
            tcc_set_error_func(state, context) { opaque, message in
                guard let opaque, let message else { return }
                Unmanaged<Diagnostics>.fromOpaque(opaque).takeUnretainedValue().messages.append(String(cString: message))
            }
            tcc_set_lib_path(state, libraryPath)
            tcc_set_output_type(state, TCC_OUTPUT_MEMORY)
            for (name, address) in RuntimeSymbols.all { tcc_add_symbol(state, name, address) }

            func failure(_ stage: String) -> NablaError {
                let first = diagnostics.messages.first ?? "\(stage) failed"
                let (line, message) = parse(first)
                let sourceLine = line.flatMap { n in
                    source.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(n - 1).first.map(String.init)
                }
                return .compilation(message: message, line: line, sourceLine: sourceLine?.trimmingCharacters(in: .whitespaces))
            }
            guard tcc_compile_string(state, source) == 0 else { throw failure("compilation") }
            guard nabla_tcc_relocate_auto(state) >= 0 else { throw failure("relocation") }
            guard let address = tcc_get_symbol(state, symbol) else {
                throw NablaError.compilation(message: "symbol \(symbol) not found after relocation", line: nil, sourceLine: nil)
            }
            owned = false
            return Module(state: state, symbol: address)
        }
    }

    /// Splits "<string>:LINE: error: MESSAGE" into its line and message.
    static func parse(_ diagnostic: String) -> (Int?, String) {
        let parts = diagnostic.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 3, let line = Int(parts[1]) {
            return (line, parts[2].trimmingCharacters(in: .whitespaces))
        }
        return (nil, diagnostic)
    }
}
