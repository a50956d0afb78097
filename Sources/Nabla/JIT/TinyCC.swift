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

    /// Compiles the translation units `produce` hands over, one after another into one
    /// program, on a thread of their own while `produce` goes on: each unit is handed as the
    /// work that writes it, which that thread runs before compiling the result, or `add` runs
    /// at once when the thread is behind (a split kernel's parts: lowering one overlaps
    /// writing and compiling another). Returns the code,
    /// with `symbol`'s address, and the units' text in order.
    /// - Throws: what `produce` or a unit's work throws, or `NablaError.compilation` with the
    ///   first error's message and the line of the unit it is in.
    static func compile(
        symbol: String, units produce: (_ add: (@escaping @Sendable () throws -> String) throws -> Void) throws -> Void
    ) throws -> (NativeCode, [String]) {
        try lock.withLock { _ in
            let session = try Session()
            let worker = UnitCompiler(state: session.state)
            do {
                try produce { try worker.submit($0) }
            } catch {
                _ = worker.finish()
                throw error
            }
            let outcome = worker.finish()
            if let error = outcome.workError { throw error }
            if let failed = outcome.failedUnit { throw session.failure("compilation", failed) }
            return (try session.relocate(symbol: symbol), outcome.units)
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

    /// Writes and compiles units into one TinyCC state, in the order they are submitted, on a
    /// thread of its own. After a unit fails the rest are dropped.
    private final class UnitCompiler: @unchecked Sendable {
        typealias Work = @Sendable () throws -> String

        /// What the thread did: every unit's text, and the first failure.
        struct Outcome {
            var units: [String] = []
            var failedUnit: String?
            var workError: Error?
        }

        // Everything below is touched only with `mutex` held, except `state`, which only the
        // worker thread uses until `finish` has returned.
        private let state: OpaquePointer
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        private var queue: [Work?] = []
        private var next = 0
        private var closed = false
        private var stopped = false
        private var outcome = Outcome()

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

        /// Queues `work`'s unit. While the thread still has units waiting, the caller writes
        /// this one itself and queues the text, so that whichever thread is free writes C: the
        /// thread has TinyCC's part, which on long chains of scalars takes longer than lowering
        /// (a 10^5-step recurrence), and on fused loops less (P6's random graphs).
        func submit(_ work: @escaping Work) throws {
            pthread_mutex_lock(mutex)
            let busy = next < queue.count
            pthread_mutex_unlock(mutex)
            let queued: Work
            if busy {
                let text = try work()
                queued = { text }
            } else {
                queued = work
            }
            pthread_mutex_lock(mutex)
            queue.append(queued)
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }

        /// Waits until every unit is written and compiled (or one failed) and says how it went.
        func finish() -> Outcome {
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            closed = true
            pthread_cond_broadcast(changed)
            while !stopped { pthread_cond_wait(changed, mutex) }
            return outcome
        }

        private func run() {
            pthread_mutex_lock(mutex)
            while true {
                while next == queue.count && !closed { pthread_cond_wait(changed, mutex) }
                if next == queue.count { break }
                let work = queue[next]
                queue[next] = nil
                next += 1
                let skip = outcome.failedUnit != nil || outcome.workError != nil
                pthread_mutex_unlock(mutex)
                var text: String?, error: Error?, status: Int32 = 0
                if !skip, let work {
                    do {
                        text = try work()
                        status = tcc_compile_string(state, text!)
                    } catch let thrown {
                        error = thrown
                    }
                }
                pthread_mutex_lock(mutex)
                if let error { outcome.workError = error }
                if let text {
                    outcome.units.append(text)
                    if status != 0 { outcome.failedUnit = text }
                }
            }
            stopped = true
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }
    }
}
