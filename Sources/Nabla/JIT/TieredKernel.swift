import Dispatch
import Synchronization

/// A kernel that runs TinyCC's code at once and moves to the system compiler's optimised code
/// (the `cc` backend) once that is built on a background thread.
///
/// ```swift
/// let kernel = try TieredKernel(graph, upgradeImmediately: true)  // callable now, on TinyCC
/// let out = try kernel(["x": TensorData(0.5)])                      // never waits for cc
/// // ... later calls run the -O3 code as soon as it is loaded (kernel.currentBackend == .cc)
/// ```
///
/// The switch is one atomic store of the entry point; every call loads it once, so a call runs
/// wholly on one tier. Neither tier's code is freed while the tiered kernel lives, so a call
/// still running on the TinyCC code when the switch happens stays valid. Workspaces have room
/// for either tier. If the cc build fails, the kernel stays on TinyCC (its results are the same)
/// and `waitForUpgrade()` throws the error.
///
/// Like `Kernel`, it may be called from many threads at once, each with its own workspace and
/// output buffers; `upgrade()` and `waitForUpgrade()` may be called from any thread.
public final class TieredKernel: CompiledKernel {
    /// The TinyCC tier, which runs until the cc tier is loaded.
    public let baseline: Kernel
    /// The C the cc tier is (or will be) compiled from.
    public let optimizedSource: CKernelSource

    /// Address of the entry point of the tier calls use now.
    @usableFromInline let current: Atomic<UInt>
    /// The ports, and a workspace size that is the larger of the two tiers' needs, so any
    /// workspace from `makeWorkspace()` serves whichever tier runs the call.
    public let signature: KernelSignature
    private let state = Lock(UpgradeState())
    private let finished = DispatchGroup()

    private struct UpgradeState {
        var started = false
        var optimized: Kernel?
        var error: NablaError?
    }

    /// Compiles `graph` with TinyCC now, and with cc on a background thread when asked
    /// (`upgrade()`) or, with `upgradeImmediately`, at once.
    /// - Throws: `NablaError.compilation` if the TinyCC tier does not compile (a cc failure is
    ///   reported by `waitForUpgrade()` instead).
    public convenience init(_ graph: Graph, upgradeImmediately: Bool = false) throws {
        // One compilation: both tiers' C is written from the same plan.
        let compilation = try Compilation(graph)
        try self.init(
            baseline: compilation.emit(Kernel.emitOptions(for: .tcc)),
            optimized: compilation.emit(Kernel.emitOptions(for: .cc)),
            inputNames: graph.inputs.map(\.name), outputNames: graph.outputs.map(\.name),
            upgradeImmediately: upgradeImmediately)
    }

    /// Compiles `baseline` with TinyCC now; `optimized` (standalone C for the same graph, with
    /// the same input and output shapes) is built with cc when the kernel is upgraded.
    /// - Throws: `NablaError.compilation` if `baseline` does not compile, `.countMismatch` for
    ///   names that do not match the sources, `.invalidArgument` if the two sources' shapes differ.
    public init(
        baseline: CKernelSource, optimized: CKernelSource, inputNames: [String], outputNames: [String],
        upgradeImmediately: Bool = false
    ) throws {
        let first = try Kernel(source: baseline, inputNames: inputNames, outputNames: outputNames, backend: .tcc)
        let second = try KernelSignature(source: optimized, inputNames: inputNames, outputNames: outputNames)
        guard first.signature.sameSignature(as: second) else {
            throw NablaError.invalidArgument(op: "TieredKernel", reason: "the two tiers' C take or produce different shapes")
        }
        self.baseline = first
        optimizedSource = optimized
        signature = KernelSignature(
            inputs: first.inputs, outputs: first.outputs, workspaceBytes: max(first.workspaceBytes, optimized.workspaceBytes))
        current = Atomic(TieredKernel.address(of: first.entry))
        if upgradeImmediately { upgrade() }
    }

    /// The backend calls run on now: `.tcc` until the cc tier is loaded, then `.cc`.
    public var currentBackend: Backend {
        current.load(ordering: .acquiring) == TieredKernel.address(of: baseline.entry) ? .tcc : .cc
    }

    /// The kernel calls run on now.
    public var currentKernel: Kernel {
        state.withLock { $0.optimized } ?? baseline
    }

    /// The entry point of the current tier, valid while this tiered kernel lives.
    public var entry: Kernel.Entry {
        TieredKernel.entry(at: current.load(ordering: .acquiring))
    }

    /// Why the cc tier could not be built, once its build has failed.
    public var upgradeError: NablaError? {
        state.withLock { $0.error }
    }

    @usableFromInline static func address(of entry: Kernel.Entry) -> UInt {
        UInt(bitPattern: unsafeBitCast(entry, to: UnsafeRawPointer.self))
    }

    @inlinable static func entry(at address: UInt) -> Kernel.Entry {
        unsafeBitCast(UnsafeRawPointer(bitPattern: address)!, to: Kernel.Entry.self)
    }

    /// Starts building the cc tier on a background thread, unless it has been started already.
    /// Returns at once; calls keep running on TinyCC until the new code is loaded.
    public func upgrade() {
        let start = state.withLock { state -> Bool in
            guard !state.started else { return false }
            state.started = true
            finished.enter()
            return true
        }
        guard start else { return }
        DispatchQueue.global(qos: .utility).async { [self] in
            let result: Result<Kernel, NablaError>
            do {
                result = .success(try Kernel(
                    source: optimizedSource, inputNames: inputs.map(\.name), outputNames: outputs.map(\.name), backend: .cc))
            } catch let error as NablaError {
                result = .failure(error)
            } catch {
                result = .failure(.compilation(message: "\(error)", line: nil, sourceLine: nil))
            }
            state.withLock { state in
                switch result {
                case .success(let kernel):
                    // The kernel is kept (and its library mapped) for as long as this object.
                    state.optimized = kernel
                    current.store(TieredKernel.address(of: kernel.entry), ordering: .releasing)
                case .failure(let error):
                    state.error = error
                }
            }
            finished.leave()
        }
    }

    /// Starts the upgrade if needed and blocks until the cc tier is loaded or has failed; for
    /// tests and for programs that would rather wait than run unoptimised code.
    /// - Returns: the backend calls now run on (`.cc`).
    /// - Throws: the cc build's `NablaError.compilation`; the kernel then stays on TinyCC.
    @discardableResult
    public func waitForUpgrade() throws -> Backend {
        upgrade()
        finished.wait()
        if let error = upgradeError { throw error }
        return currentBackend
    }

    /// Calls the current tier's native code with no checks at all, loading its entry point once.
    /// The contract is `Kernel.callUnchecked`'s, with a workspace of this kernel's
    /// `workspaceBytes`.
    @inlinable
    public func callUnchecked(
        inputs: UnsafePointer<UnsafePointer<Double>?>, outputs: UnsafePointer<UnsafeMutablePointer<Double>?>,
        workspace: UnsafeMutableRawPointer?
    ) {
        let entry = TieredKernel.entry(at: current.load(ordering: .acquiring))
        _ = entry(inputs, outputs, workspace)
    }
}
