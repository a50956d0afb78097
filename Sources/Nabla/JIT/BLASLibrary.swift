import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension KernelRuntime {
    /// A BLAS and LAPACK library (OpenBLAS) the runtime hands its large work to.
    public struct BLAS: Sendable, Equatable, CustomStringConvertible {
        /// The name or path it was loaded by.
        public let path: String
        /// What the library says of itself (`openblas_get_config`), when it says.
        public let configuration: String?

        public var description: String { configuration.map { "\(path) (\($0))" } ?? path }
    }

    /// The library `useBLAS` loads by default: Debian's and most distributions' OpenBLAS.
    public static let defaultBLAS = "libopenblas.so.0"

    /// The BLAS in use, or nil when kernels use the runtime's own kernels throughout (the
    /// default).
    public static var blas: BLAS? {
        _ = environmentBLAS
        return blasState.withLock { $0 }
    }

    /// Hands the runtime's large matrix products, Cholesky factors and triangular solves to the
    /// BLAS and LAPACK `library` (a name the dynamic loader finds, or a path) where it was
    /// measured faster (benchmarks/blas/README.md): products whose three dimensions are all at
    /// least 32 and which do at least 2^18 multiply-adds; Cholesky factors from n = 200 (n = 64
    /// below AVX-512), falling back to the runtime's factor when the matrix is not positive
    /// definite; single right-hand-side triangular solves without transposition from n = 200,
    /// several right-hand sides from n = 800 (n = 64 below AVX-512). LU stays with the runtime.
    /// Applies to every kernel of the process, from its next call.
    ///
    /// Results then are no longer the interpreter's bits (the library uses fused multiply-adds
    /// and its own summation order) but agree with them to about 1e-15 relative (1e-12 at
    /// most in the tests). Under `NABLA_ISA=avx2` or `baseline`, OpenBLAS is told to use its
    /// Haswell or Prescott kernels (`OPENBLAS_CORETYPE`, when unset, before the library is
    /// loaded): without that, OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to
    /// its slowest kernels. The library runs on one thread (`OPENBLAS_NUM_THREADS`, when unset,
    /// and `openblas_set_num_threads`); the runtime's own pool (`threadCount`) splits the work.
    ///
    /// `NABLA_BLAS=openblas` (or a path) at start-up does the same; `NABLA_BLAS=off` or unset
    /// leaves it off.
    /// - Throws: `NablaError.library` when the library cannot be loaded or lacks one of
    ///   cblas_dgemm, cblas_dtrsm, cblas_dtrsv and dpotrf_.
    @discardableResult
    public static func useBLAS(_ library: String = defaultBLAS) throws -> BLAS {
        _ = environmentBLAS
        return try install(library)
    }

    /// Goes back to the runtime's own kernels everywhere, from the next call of each kernel.
    public static func stopUsingBLAS() {
        _ = environmentBLAS
        blasState.withLock { state in
            setBLAS(nil, nil, nil, nil)
            state = nil
        }
    }

    /// Why `NABLA_BLAS` could not be honoured, or nil (unset, `off`, or loaded).
    public static var blasEnvironmentError: String? {
        environmentBLAS
    }

    private static let blasState = Lock<BLAS?>(nil)

    /// `NABLA_BLAS`, applied once, before the first use of the BLAS state: the reason it failed.
    private static let environmentBLAS: String? = {
        guard let value = ProcessInfo.processInfo.environment["NABLA_BLAS"], !value.isEmpty, value != "off" else { return nil }
        do {
            _ = try install(value == "openblas" ? defaultBLAS : value)
            return nil
        } catch {
            return "\(error)"
        }
    }()

    private static func install(_ library: String) throws -> BLAS {
        try blasState.withLock { state in
            prepareOpenBLASEnvironment()
            guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
                let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
                throw NablaError.library("cannot load the BLAS '\(library)': \(reason) (install OpenBLAS, e.g. apt-get install libopenblas0-pthread, or give the path of a library)")
            }
            func address(_ name: String) throws -> UnsafeMutableRawPointer {
                guard let address = dlsym(handle, name) else {
                    throw NablaError.library("the BLAS '\(library)' has no '\(name)': Nabla needs a CBLAS and LAPACK such as OpenBLAS's")
                }
                return address
            }
            let dgemm = try address("cblas_dgemm"), dtrsm = try address("cblas_dtrsm")
            let dtrsv = try address("cblas_dtrsv"), dpotrf = try address("dpotrf_")
            typealias SetThreads = @convention(c) (Int32) -> Void
            typealias Config = @convention(c) () -> UnsafePointer<CChar>?
            if let set = dlsym(handle, "openblas_set_num_threads") { unsafeBitCast(set, to: SetThreads.self)(1) }
            let configuration = dlsym(handle, "openblas_get_config").flatMap { unsafeBitCast($0, to: Config.self)() }.map { String(cString: $0) }
            setBLAS(dgemm, dtrsm, dtrsv, dpotrf)
            let blas = BLAS(path: library, configuration: configuration)
            state = blas
            return blas
        }
    }

    /// The core and thread count OpenBLAS reads when it is loaded, unless the user set them.
    private static func prepareOpenBLASEnvironment() {
        let environment = ProcessInfo.processInfo.environment
        if environment["OPENBLAS_CORETYPE"] == nil {
            let core: String
            switch instructionSet {
            case .avx512: core = "SkylakeX"
            case .avx2: core = "Haswell"
            case .baseline: core = "Prescott"
            }
            setenv("OPENBLAS_CORETYPE", core, 0)
        }
        if environment["OPENBLAS_NUM_THREADS"] == nil { setenv("OPENBLAS_NUM_THREADS", "1", 0) }
    }

    private static func setBLAS(_ dgemm: UnsafeMutableRawPointer?, _ dtrsm: UnsafeMutableRawPointer?,
                                _ dtrsv: UnsafeMutableRawPointer?, _ dpotrf: UnsafeMutableRawPointer?) {
        typealias Set = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void
        unsafeBitCast(symbol("nabla_set_blas"), to: Set.self)(dgemm, dtrsm, dtrsv, dpotrf)
    }
}
