import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds C with the system compiler into a shared library and loads it with `dlopen`: the
/// `cc` backend, Nabla's optimising second tier.
///
/// Each compilation writes the C to a private temporary directory (`mkdtemp`, mode 0700, under
/// `$TMPDIR` or `/tmp`), runs
///
///     cc -O3 -march=native -ffp-contract=off -shared -fPIC -o kN.so kN.c -lm
///
/// (`-march=native -mno-avx512f` or `-march=x86-64` instead when `NABLA_ISA` is `avx2` or
/// `baseline`)
///
/// loads the library with `RTLD_NOW | RTLD_LOCAL`, looks the entry point up and removes the
/// directory; the mapped code stays valid until the library object is freed (`dlclose`).
///
/// - `-O3 -march=native`: full optimisation for the machine the kernel runs on (the library is
///   never written anywhere it could be reused on another machine).
/// - `-ffp-contract=off`: no fused multiply-adds, so every operation rounds as the interpreter's
///   does and results agree with it (and with the TinyCC tier) to the last bit, or nearly.
///   `-O3` alone allows no value-changing transformation (no `-ffast-math`).
/// - `-shared -fPIC ... -lm`: a position-independent shared library that needs only libm.
///
/// The compiler is `cc` on `PATH`; the environment variable `NABLA_CC` overrides it with a
/// command (split at spaces, so `NABLA_CC="clang -fno-slp-vectorize"` works). Compilations
/// share nothing (a unique directory, file name and library each), so any number may run at
/// once from any threads.
enum NativeCompiler {
    /// The flags given before the output and source files: the machine's instruction set, or
    /// the narrower one `NABLA_ISA` asks for (`KernelRuntime.instructionSet`).
    static var flags: [String] { ["-O3"] + architectureFlags + ["-ffp-contract=off", "-shared", "-fPIC"] }

    /// `-march=native`, narrowed to AVX2 (no AVX-512) or to the x86-64 baseline by `NABLA_ISA`.
    static var architectureFlags: [String] {
        #if arch(x86_64)
        switch KernelRuntime.instructionSet {
        case .avx512: return ["-march=native"]
        case .avx2: return ["-march=native", "-mno-avx512f"]
        case .baseline: return ["-march=x86-64", "-mtune=native"]
        }
        #else
        return ["-march=native"]
        #endif
    }

    /// The compiler command: `$NABLA_CC` split at whitespace, or `cc`.
    static var command: [String] {
        if let value = ProcessInfo.processInfo.environment["NABLA_CC"] {
            let words = value.split(whereSeparator: \.isWhitespace).map(String.init)
            if !words.isEmpty { return words }
        }
        return ["cc"]
    }

    private static let counter = Atomic<Int>(0)

    /// A number no other call in this process gets.
    private static func nextSerial() -> Int { counter.add(1, ordering: .relaxed).newValue }

    /// A C function name no other kernel of this process has, for C compiled by this backend
    /// (letters and digits only, so `cIdentifier` keeps it as it is).
    static func uniqueFunctionName() -> String { "nablaCCKernel\(nextSerial())" }

    /// Compiles `source` into a shared library, loads it and returns it with the address of
    /// `symbol`.
    /// - Throws: `NablaError.compilation` with the compiler's first error message and the C line
    ///   it points at, or with the reason the compiler could not run or the library not load.
    /// `runtimeFunctions`: the runtime functions the C reaches through pointer slots
    /// (`CKernelSource.runtimeFunctions`), which are filled after loading.
    static func compile(_ source: String, symbol: String, runtimeFunctions: [String] = []) throws -> NativeCode {
        let serial = nextSerial()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cPath = "\(directory)/k\(serial).c"
        let libraryPath = "\(directory)/k\(serial).so"
        let logPath = "\(directory)/k\(serial).log"
        guard FileManager.default.createFile(atPath: cPath, contents: Data(source.utf8)) else {
            throw NablaError.compilation(message: "cannot write \(cPath)", line: nil, sourceLine: nil)
        }
        let arguments = command + flags + ["-o", libraryPath, cPath, "-lm"]
        let status = try run(arguments, log: logPath)
        guard status == 0 else {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw CompilerDiagnostics.failure(
                log.split(separator: "\n").map(String.init), source: source,
                fallback: "\(arguments[0]) exited with status \(status) and no message")
        }
        guard let handle = dlopen(libraryPath, RTLD_NOW | RTLD_LOCAL) else {
            throw NablaError.compilation(message: "dlopen failed: \(dlerrorText())", line: nil, sourceLine: nil)
        }
        guard let address = dlsym(handle, symbol) else {
            dlclose(handle)
            throw NablaError.compilation(message: "symbol \(symbol) not found in the compiled library", line: nil, sourceLine: nil)
        }
        // Runtime functions the C reaches through pointer slots (see runtimeThroughPointers).
        // Every slot the C declares must be filled: an empty one would be a call through null.
        let runtime = Dictionary(RuntimeSymbols.all, uniquingKeysWith: { a, _ in a })
        for name in runtimeFunctions {
            guard let function = runtime[name], let slot = dlsym(handle, CFunction.slotPrefix + name) else {
                dlclose(handle)
                throw NablaError.compilation(message: "the C calls runtime function \(name) through a slot that cannot be filled", line: nil, sourceLine: nil)
            }
            slot.storeBytes(of: function, as: UnsafeRawPointer.self)
        }
        return NativeCode(address: address, owner: .sharedLibrary(handle))
    }

    /// A new directory only this process's user can read, under the temporary directory.
    static func makeTemporaryDirectory() throws -> String {
        var base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        if base.isEmpty { base = "/tmp" }
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array("\(base)/nabla-cc-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw NablaError.compilation(
                message: "cannot create a temporary directory in \(base): \(String(cString: strerror(errno)))", line: nil, sourceLine: nil)
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Runs `arguments` (looked up on PATH) with standard output and error written to `log` and
    /// standard input from /dev/null; returns the exit status (128 + N for signal N).
    static func run(_ arguments: [String], log: String) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Descriptors other threads have open (pipes to their own children, say) stay out of
        // the compiler, so it cannot hold them open (glibc 2.34 and later).
        if let closeFrom { _ = closeFrom(&actions, 3) }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw NablaError.compilation(
                message: "cannot run the C compiler '\(arguments[0])' (set NABLA_CC to choose another): \(String(cString: strerror(spawned)))",
                line: nil, sourceLine: nil)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else {
                throw NablaError.compilation(message: "waitpid failed: \(String(cString: strerror(errno)))", line: nil, sourceLine: nil)
            }
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc's `posix_spawn_file_actions_addclosefrom_np`, when the C library has it (the Swift
    /// overlay does not declare it).
    private static let closeFrom: CloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }

    private static func dlerrorText() -> String {
        dlerror().map { String(cString: $0) } ?? "unknown error"
    }
}
