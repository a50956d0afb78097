import Foundation
import NablaRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the runtime functions that kernels call (matrix products, LU) come from, and whether
/// they are optimised.
///
/// A release build of the package compiles runtime/ with optimisation, and kernels call that
/// code. A debug build compiles it without (and a package used by URL may not set compiler
/// flags), so the first kernel of such a process builds an optimised copy instead, with the
/// system C compiler (`cc`, or `NABLA_CC`):
///
///     cc -O3 -ffp-contract=off -shared -fPIC -Wl,-Bsymbolic runtime/*.c -lm
///
/// and caches it in `$NABLA_CACHE_DIR`, else `$XDG_CACHE_HOME/nabla`, else `~/.cache/nabla`,
/// under a name derived from the sources, the compiler command and the flags, so later
/// processes load it at once. The C picks its instruction set per call (AVX-512, AVX2 or
/// baseline), so one cached copy serves any x86-64 machine sharing the cache. Every copy does
/// the same operations in the same order: results are identical bit for bit.
///
/// When the copy cannot be built or loaded (no C compiler, say), kernels call the unoptimised
/// code, with the same results, slower; `reason` says why. `NABLA_RUNTIME=linked` keeps the
/// code the package built, optimised or not; `NABLA_RUNTIME=built` uses the copy even in an
/// optimised build (to compare the two).
public enum KernelRuntime {
    /// Where the runtime code in use comes from.
    public enum Origin: Sendable, Equatable, CustomStringConvertible {
        /// The code the package build compiled, with optimisation.
        case linkedOptimized
        /// An optimised copy built at first use (or loaded from the cache) at this path.
        case built(path: String)
        /// The code the package build compiled without optimisation: no copy could be used,
        /// for this reason (or `NABLA_RUNTIME=linked` asked for it).
        case linkedUnoptimized(reason: String)

        public var description: String {
            switch self {
            case .linkedOptimized: return "the package's own build (optimised)"
            case let .built(path): return "an optimised copy built at first use (\(path))"
            case let .linkedUnoptimized(reason): return "the package's own build, unoptimised: \(reason)"
            }
        }
    }

    /// An instruction set of x86-64 the runtime's kernels and the cc tier's code may use.
    public enum InstructionSet: String, Sendable, CaseIterable {
        /// SSE2 only, what every x86-64 machine has (also what other architectures report).
        case baseline
        /// AVX2, no AVX-512.
        case avx2
        /// AVX-512.
        case avx512
    }

    /// The widest instruction set kernels use: the CPU's best, or a narrower one the
    /// environment variable `NABLA_ISA` (`avx512`, `avx2` or `baseline`) asks for, so that the
    /// narrower paths can be tested and measured on a wider machine. Every path gives the same
    /// bits. Read once per process.
    public static var instructionSet: InstructionSet {
        switch nabla_isa_level() {
        case 2: return .avx512
        case 1: return .avx2
        default: return .baseline
        }
    }

    /// Threads the runtime may split one kernel call's large work over: matrix products of
    /// more than half a million multiply-adds, by blocks of rows, and fused
    /// loops over more than 16,384 elements, by blocks of rows (`LoopIR.ParallelLoop`;
    /// sums into one element add their blocks' partial sums in order, `LoopIR.ReductionBlocks`,
    /// on every path). The default is the
    /// environment variable `NABLA_THREADS`, else the processors online (at most 64); setting
    /// a value below 1 restores it. Results do not depend on the count: every element is
    /// computed on one thread, as a single-threaded call computes it.
    ///
    /// The pool belongs to the runtime, one per process, and serves one call at a time; a call
    /// made while another uses it (kernels called from several threads at once) runs on its
    /// own thread alone. So a program that calls kernels from all its cores already keeps them
    /// busy and loses nothing.
    public static var threadCount: Int {
        get {
            typealias Get = @convention(c) () -> Int32
            return Int(unsafeBitCast(symbol("nabla_threads"), to: Get.self)())
        }
        set {
            typealias Set = @convention(c) (Int32) -> Void
            unsafeBitCast(symbol("nabla_set_threads"), to: Set.self)(Int32(clamping: max(0, newValue)))
        }
    }

    static func symbol(_ name: String) -> UnsafeRawPointer {
        loaded.symbols.first { $0.0 == name }!.1
    }

    /// The runtime kernels of this process call, decided at the first use.
    public static var origin: Origin { loaded.origin }

    /// Whether kernels call optimised runtime code.
    public static var isOptimized: Bool {
        if case .linkedUnoptimized = origin { return false }
        return true
    }

    /// The runtime's functions by name, as kernels link them.
    static var symbols: [(String, UnsafeRawPointer)] {
        _ = blasEnvironmentError  // NABLA_BLAS, applied before the first kernel
        return loaded.symbols
    }

    private struct Loaded: @unchecked Sendable {
        // Immutable addresses of code that stays mapped for the life of the process.
        let symbols: [(String, UnsafeRawPointer)]
        let origin: Origin
    }

    private static let loaded: Loaded = load()

    private static func load() -> Loaded {
        let choice = ProcessInfo.processInfo.environment["NABLA_RUNTIME"]
        let linkedIsOptimized = nabla_runtime_optimized() != 0
        if choice == "linked" || (linkedIsOptimized && choice != "built") {
            return Loaded(symbols: RuntimeSymbols.linked, origin: linkedIsOptimized ? .linkedOptimized : .linkedUnoptimized(reason: "NABLA_RUNTIME=linked"))
        }
        do {
            let (path, symbols) = try buildOrLoadCopy()
            return Loaded(symbols: symbols, origin: .built(path: path))
        } catch let NablaError.compilation(message, _, _) {
            return Loaded(symbols: RuntimeSymbols.linked, origin: .linkedUnoptimized(reason: message))
        } catch {
            return Loaded(symbols: RuntimeSymbols.linked, origin: .linkedUnoptimized(reason: "\(error)"))
        }
    }

    /// Flags of the optimised copy. -Bsymbolic binds the copy's calls to its own functions,
    /// never to the unoptimised ones of the same names in the process.
    static let flags = ["-O3", "-ffp-contract=off", "-shared", "-fPIC", "-Wl,-Bsymbolic"]

    /// The cached copy's path and its functions, built first if it is not in the cache (or
    /// if the cached file cannot be loaded: a truncated file is replaced, not kept for good).
    private static func buildOrLoadCopy() throws -> (String, [(String, UnsafeRawPointer)]) {
        let command = NativeCompiler.command
        let name = "runtime-\(fingerprint(command + flags)).so"
        guard let cache = cacheDirectory() else {
            // No cache: a private directory for this process (the mapping outlives the file).
            let directory = try NativeCompiler.makeTemporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let path = "\(directory)/\(name)"
            try build(into: path, command: command)
            return (path, try symbols(of: path))
        }
        let path = "\(cache)/\(name)"
        if FileManager.default.fileExists(atPath: path), let loaded = try? symbols(of: path) { return (path, loaded) }
        try build(into: path, command: command)
        return (path, try symbols(of: path))
    }

    /// Compiles the runtime's sources into the library `path`, written in a private directory
    /// first and renamed into place, so no process ever loads a half-written library.
    private static func build(into path: String, command: [String]) throws {
        let directory = try NativeCompiler.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: "\(directory)/include", withIntermediateDirectories: true)
        var sources: [String] = []
        for file in RuntimeSource.files {
            let target = "\(directory)/\(file.path)"
            guard FileManager.default.createFile(atPath: target, contents: Data(file.text.utf8)) else {
                throw NablaError.compilation(message: "cannot write \(target)", line: nil, sourceLine: nil)
            }
            if !file.path.contains("/") && file.path.hasSuffix(".c") { sources.append(target) }
        }
        let built = "\(directory)/runtime.so", log = "\(directory)/build.log"
        let arguments = command + flags + ["-I", "\(directory)/include", "-o", built] + sources + ["-lm"]
        let status = try NativeCompiler.run(arguments, log: log)
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw NablaError.compilation(
                message: "\(arguments[0]) could not build the runtime (status \(status)): \(output.split(separator: "\n").first ?? "")",
                line: nil, sourceLine: nil)
        }
        // Within one file system rename is atomic; the temporary directory may be on another,
        // so the library is first copied beside its final name.
        let staging = "\(path).\(getpid()).tmp"
        try? FileManager.default.removeItem(atPath: staging)
        try FileManager.default.copyItem(atPath: built, toPath: staging)
        guard rename(staging, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: staging)
            throw NablaError.compilation(message: "cannot move the runtime into \(path): \(reason)", line: nil, sourceLine: nil)
        }
    }

    /// Loads the library at `path` for good and finds every runtime function in it.
    private static func symbols(of path: String) throws -> [(String, UnsafeRawPointer)] {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw NablaError.compilation(message: "cannot load \(path): \(dlerror().map { String(cString: $0) } ?? "unknown error")", line: nil, sourceLine: nil)
        }
        typealias Flag = @convention(c) () -> Int32
        guard let optimized = dlsym(handle, "nabla_runtime_optimized"), unsafeBitCast(optimized, to: Flag.self)() == 1 else {
            dlclose(handle)
            throw NablaError.compilation(message: "\(path) was not built with optimisation", line: nil, sourceLine: nil)
        }
        var symbols: [(String, UnsafeRawPointer)] = []
        for (name, _) in RuntimeSymbols.linked {
            guard let address = dlsym(handle, name) else {
                dlclose(handle)
                throw NablaError.compilation(message: "\(path) lacks \(name)", line: nil, sourceLine: nil)
            }
            symbols.append((name, UnsafeRawPointer(address)))
        }
        return symbols
    }

    /// The cache directory (created, private to this user), or nil when there is none to use.
    static func cacheDirectory() -> String? {
        let environment = ProcessInfo.processInfo.environment
        let candidates = [
            environment["NABLA_CACHE_DIR"],
            environment["XDG_CACHE_HOME"].map { "\($0)/nabla" },
            environment["HOME"].map { "\($0)/.cache/nabla" },
        ]
        for case let directory? in candidates where directory.hasPrefix("/") {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                var info = stat()
                // Only a directory this user owns: a library loaded from it runs as this user.
                guard stat(directory, &info) == 0, info.st_uid == getuid(), info.st_mode & 0o022 == 0 else { continue }
                return directory
            } catch {
                continue
            }
        }
        return nil
    }

    /// A name for the copy that changes with the runtime's text, the compiler command and the
    /// flags (FNV-1a, 64 bits, in hexadecimal): stable across processes, unlike `Hasher`.
    static func fingerprint(_ words: [String]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ text: String) {
            for byte in text.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
            hash ^= 0xff
            hash = hash &* 0x0000_0100_0000_01b3
        }
        for word in words { mix(word) }
        for file in RuntimeSource.files {
            mix(file.path)
            mix(file.text)
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
