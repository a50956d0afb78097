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


    /// Collects error messages from libtcc's callback.
    private final class Diagnostics {
        var messages: [String] = []
    }

    /// Compiles `source` and returns the address of `symbol` in the relocated code.
    /// - Throws: `NablaError.compilation` with the first error's message and C line.
    static func compile(_ source: String, symbol: String) throws -> NativeCode {
        try lock.withLock { _ in
            let session = try Session()
            guard tcc_compile_string(session.state, source) == 0 else { throw session.failure("compilation", source) }
            return try session.relocate(symbol: symbol)
        }
    }

    /// Compiles the translation units `produce` passes to its argument, one after another into
    /// one program, on a thread of their own while `produce` goes on writing the next (a split
    /// kernel's parts: lowering one overlaps compiling another), then returns the address of
    /// `symbol` in the relocated code.
    /// - Throws: what `produce` throws, or `NablaError.compilation` with the first error's
    ///   message and the line of the unit it is in.
    static func compile(symbol: String, units produce: (_ add: (String) -> Void) throws -> Void) throws -> NativeCode {
        try lock.withLock { _ in
            let session = try Session()
            let worker = UnitCompiler(state: session.state)
            do {
                try produce { worker.submit($0) }
            } catch {
                _ = worker.finish()
                throw error
            }
            if let failed = worker.finish() { throw session.failure("compilation", failed) }
            return try session.relocate(symbol: symbol)
        }
    }

    /// A TinyCC state set up for in-memory code, with its error messages; deleted with this
    /// object unless relocated into a module.
    private final class Session {
        let state: OpaquePointer
        private let diagnostics = Diagnostics()
        private var owned = true

        init() throws {
            guard let state = tcc_new() else {
                throw NablaError.compilation(message: "tcc_new failed", line: nil, sourceLine: nil)
            }
            self.state = state
            let context = Unmanaged.passUnretained(diagnostics).toOpaque()
            tcc_set_error_func(state, context) { opaque, message in
                guard let opaque, let message else { return }
                Unmanaged<Diagnostics>.fromOpaque(opaque).takeUnretainedValue().messages.append(String(cString: message))
            }
            tcc_set_lib_path(state, libraryPath)
            tcc_set_output_type(state, TCC_OUTPUT_MEMORY)
            for (name, address) in RuntimeSymbols.all { tcc_add_symbol(state, name, address) }
        }

        deinit { if owned { tcc_delete(state) } }

        /// The first error tcc reported, with the line of `source` it points at.
        func failure(_ stage: String, _ source: String) -> NablaError {
            CompilerDiagnostics.failure(diagnostics.messages, source: source, fallback: "\(stage) failed")
        }

        /// Relocates the compiled code and hands the state to a module holding `symbol`.
        func relocate(symbol: String) throws -> NativeCode {
            guard nabla_tcc_relocate_auto(state) >= 0 else { throw failure("relocation", "") }
            guard let address = tcc_get_symbol(state, symbol) else {
                throw NablaError.compilation(message: "symbol \(symbol) not found after relocation", line: nil, sourceLine: nil)
            }
            owned = false
            return NativeCode(address: address, owner: .tinyCC(state))
        }
    }

    /// Compiles units into one TinyCC state, in the order they are submitted, on a thread of
    /// its own. After a unit fails the rest are dropped.
    private final class UnitCompiler: @unchecked Sendable {
        // Everything below is touched only with `mutex` held, except `state`, which only the
        // worker thread uses until `finish` has returned.
        private let state: OpaquePointer
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        private var queue: [String] = []
        private var next = 0
        private var closed = false
        private var stopped = false
        private var failed: String?

        init(state: OpaquePointer) {
            self.state = state
            mutex.initialize(to: pthread_mutex_t())
            changed.initialize(to: pthread_cond_t())
            pthread_mutex_init(mutex, nil)
            pthread_cond_init(changed, nil)
            let thread = Thread { [self] in run() }
            // tcc's parser recurses on C's nesting, which Nabla's C bounds; room to spare.
            thread.stackSize = 16 << 20
            thread.start()
        }

        deinit {
            pthread_cond_destroy(changed)
            pthread_mutex_destroy(mutex)
            changed.deallocate()
            mutex.deallocate()
        }

        func submit(_ unit: String) {
            pthread_mutex_lock(mutex)
            queue.append(unit)
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }

        /// Waits until every unit is compiled (or one failed) and returns the failed unit.
        func finish() -> String? {
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            closed = true
            pthread_cond_broadcast(changed)
            while !stopped { pthread_cond_wait(changed, mutex) }
            return failed
        }

        private func run() {
            pthread_mutex_lock(mutex)
            while true {
                while next == queue.count && !closed { pthread_cond_wait(changed, mutex) }
                if next == queue.count { break }
                let unit = queue[next]
                queue[next] = ""
                next += 1
                let skip = failed != nil
                pthread_mutex_unlock(mutex)
                let status = skip ? 0 : tcc_compile_string(state, unit)
                pthread_mutex_lock(mutex)
                if status != 0 { failed = unit }
            }
            stopped = true
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }
    }
}
