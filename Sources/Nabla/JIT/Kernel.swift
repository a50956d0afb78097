/// The compiler that turns a kernel's C into native code.
public enum Backend: String, Sendable, CaseIterable, CustomStringConvertible {
    /// TinyCC (libtcc) in process: about a millisecond per compile, unoptimised code. Its C calls
    /// Nabla's optimised runtime for large matrix products. The default.
    case tcc
    /// The system C compiler (`cc`, or the command in `NABLA_CC`) with
    /// `-O3 -march=native -ffp-contract=off`, built into a shared library and loaded with
    /// `dlopen`: roughly 100-300 ms per compile, optimised code. It compiles standalone C (no
    /// runtime calls). Results round as the interpreter's do.
    case cc

    public var description: String { rawValue }
}

/// A graph compiled to native code, in process by TinyCC or by the system C compiler.
///
/// A kernel computes every output of its graph in one call. Compile once, call many times:
///
/// ```swift
/// let kernel = try Kernel(graph)                     // TinyCC: about a millisecond
/// let fast = try Kernel(graph, backend: .cc)         // cc -O3: slower to build, faster to run
/// let outputs = try kernel(["x": TensorData(0.5)])   // checked, convenient
/// ```
///
/// For hot loops, `callUnchecked(inputs:outputs:workspace:)` passes raw pointers straight to the
/// native function. Kernels are immutable and may be called from many threads at once, as long
/// as concurrent calls use different workspaces and output buffers (the checked calls see to
/// the workspace themselves). `TieredKernel` starts on TinyCC and moves to cc when it is built.
public final class Kernel: CompiledKernel {
    /// The native entry point: `int f(const double *const *inputs, double *const *outputs,
    /// void *workspace)`.
    public typealias Entry = @convention(c) (
        UnsafePointer<UnsafePointer<Double>?>?, UnsafePointer<UnsafeMutablePointer<Double>?>?, UnsafeMutableRawPointer?
    ) -> Int32

    /// The C the kernel was compiled from.
    public let source: CKernelSource
    /// The compiler that built the native code.
    public let backend: Backend
    /// The native entry point. Valid while this kernel is alive.
    public let entry: Entry

    private let code: NativeCode
    /// This kernel's ports and workspace size (its own C's: kernels of one graph compiled with
    /// different options may need different amounts).
    public let signature: KernelSignature

    /// Compiles `graph` with `backend`: TinyCC (the default) compiles C that calls Nabla's
    /// runtime, cc compiles standalone C (`CEmitOptions.standalone`) under a unique name.
    /// - Throws: `NablaError.compilation` if the generated C does not compile (a Nabla bug,
    ///   reported with the C line) or, for cc, if the compiler cannot run.
    public convenience init(_ graph: Graph, backend: Backend = .tcc) throws {
        let (source, code) = try NativeCode.compile(Compilation(graph, options: Kernel.emitOptions(for: backend)), backend: backend)
        try self.init(source: source, code: code, inputNames: graph.inputs.map(\.name), outputNames: graph.outputs.map(\.name), backend: backend)
    }

    /// Compiles C emitted by `emitC` with `backend`, naming its inputs and outputs. C for the cc
    /// backend must not call runtime functions (emit it with `useRuntime: false`).
    public convenience init(source: CKernelSource, inputNames: [String], outputNames: [String], backend: Backend = .tcc) throws {
        try self.init(source: source, code: NativeCode.compile(source, backend: backend), inputNames: inputNames, outputNames: outputNames, backend: backend)
    }

    /// A kernel over native code already compiled from `source`.
    init(source: CKernelSource, code: NativeCode, inputNames: [String], outputNames: [String], backend: Backend) throws {
        signature = try KernelSignature(source: source, inputNames: inputNames, outputNames: outputNames)
        self.code = code
        entry = unsafeBitCast(code.address, to: Entry.self)
        self.source = source
        self.backend = backend
    }

    /// The emission options `Kernel(_:backend:)` uses: the runtime for TinyCC; standalone C
    /// with a function name unique in the process for cc.
    static func emitOptions(for backend: Backend) -> CEmitOptions {
        switch backend {
        case .tcc:
            var options = CEmitOptions(useRuntime: true)
            options.unroll = 16
            return options
        case .cc:
            // The optimised runtime (matrix products, LU) through pointer slots.
            var options = CEmitOptions(useRuntime: true)
            options.runtimeThroughPointers = true
            options.functionName = NativeCompiler.uniqueFunctionName()
            return options
        }
    }

    /// Calls the native code with no checks at all.
    ///
    /// `inputs` holds one pointer per input (declaration order) to its row-major elements,
    /// `outputs` one pointer per output to room for its elements; `workspace` must be
    /// `workspaceBytes` bytes (from `makeWorkspace()`), used by no other call at the same time.
    /// Outputs must not overlap inputs or each other.
    @inlinable
    public func callUnchecked(
        inputs: UnsafePointer<UnsafePointer<Double>?>, outputs: UnsafePointer<UnsafeMutablePointer<Double>?>,
        workspace: UnsafeMutableRawPointer?
    ) {
        _ = entry(inputs, outputs, workspace)
    }
}

/// What every compiled kernel offers callers: its signature, the unchecked call, and the
/// checked calls, which are written once here for ``Kernel`` and ``TieredKernel``.
public protocol CompiledKernel: AnyObject, Sendable {
    /// The native entry point calls run now, valid while the kernel lives.
    var entry: Kernel.Entry { get }
    /// The kernel's ports and workspace size, with the checks of the checked calls.
    var signature: KernelSignature { get }
    /// Calls the native code with no checks at all.
    ///
    /// `inputs` holds one pointer per input (declaration order) to its row-major elements,
    /// `outputs` one pointer per output to room for its elements; `workspace` must be
    /// `workspaceBytes` bytes (from `makeWorkspace()`), used by no other call at the same time.
    /// Outputs must not overlap inputs or each other.
    func callUnchecked(
        inputs: UnsafePointer<UnsafePointer<Double>?>, outputs: UnsafePointer<UnsafeMutablePointer<Double>?>,
        workspace: UnsafeMutableRawPointer?)
}

extension CompiledKernel {
    /// Names and shapes of the inputs, in the order the kernel takes them.
    public var inputs: [(name: String, shape: Shape)] { signature.inputs }
    /// Names and shapes of the outputs, in the order the kernel writes them.
    public var outputs: [(name: String, shape: Shape)] { signature.outputs }
    /// Scratch bytes one call needs.
    public var workspaceBytes: Int { signature.workspaceBytes }

    /// Scratch memory for one call at a time. Make one per thread for `callUnchecked`.
    public func makeWorkspace() -> Workspace { Workspace(byteCount: workspaceBytes) }

    /// Calls the kernel on caller-owned buffers after checking every count and size.
    ///
    /// Allocates nothing when `workspace` is given.
    /// - Throws: `NablaError.countMismatch` or `.sizeMismatch` naming the offending buffer.
    public func call(
        inputs inputBuffers: [UnsafeBufferPointer<Double>], outputs outputBuffers: [UnsafeMutableBufferPointer<Double>],
        workspace: Workspace? = nil
    ) throws {
        try signature.call(entry, inputs: inputBuffers, outputs: outputBuffers, workspace: workspace)
    }

    /// Calls the kernel on named inputs and returns every output by name.
    ///
    /// Convenient and checked, but it allocates the results; use `call(inputs:outputs:workspace:)`
    /// or `callUnchecked` in loops.
    /// - Throws: `NablaError.unknownName` for a missing or unexpected input, `.shapeMismatch` for
    ///   an input of the wrong shape.
    public func callAsFunction(_ named: [String: TensorData]) throws -> [String: TensorData] {
        try signature.call(entry, named: named)
    }

    /// Calls the kernel on inputs given in declaration order and returns the outputs in order.
    /// - Throws: `NablaError.countMismatch` or `.shapeMismatch` for inputs that do not fit.
    public func callAsFunction(_ inputArrays: [[Double]]) throws -> [[Double]] {
        try signature.call(entry, arrays: inputArrays)
    }
}

/// A kernel's ports (names and shapes) and workspace size, with what its checked calls share:
/// the checks, the marshalling and a pool of workspaces. Each call is handed the entry point to
/// run, which the caller loads once.
public final class KernelSignature: Sendable {
    /// Names and shapes of the inputs, in the order the kernel takes them.
    public let inputs: [(name: String, shape: Shape)]
    /// Names and shapes of the outputs, in the order the kernel writes them.
    public let outputs: [(name: String, shape: Shape)]
    /// Scratch bytes a call needs; workspaces from the pool have this many.
    public let workspaceBytes: Int
    private let spareWorkspaces = Lock<[Workspace]>([])

    /// The signature of `source` with these names.
    /// - Throws: `NablaError.countMismatch` when the names do not match the source's ports.
    convenience init(source: CKernelSource, inputNames: [String], outputNames: [String]) throws {
        guard inputNames.count == source.inputShapes.count else {
            throw NablaError.countMismatch(what: "input names", expected: source.inputShapes.count, got: inputNames.count)
        }
        guard outputNames.count == source.outputShapes.count else {
            throw NablaError.countMismatch(what: "output names", expected: source.outputShapes.count, got: outputNames.count)
        }
        self.init(
            inputs: Array(zip(inputNames, source.inputShapes)).map { (name: $0.0, shape: $0.1) },
            outputs: Array(zip(outputNames, source.outputShapes)).map { (name: $0.0, shape: $0.1) },
            workspaceBytes: source.workspaceBytes)
    }

    init(inputs: [(name: String, shape: Shape)], outputs: [(name: String, shape: Shape)], workspaceBytes: Int) {
        self.inputs = inputs
        self.outputs = outputs
        self.workspaceBytes = workspaceBytes
    }

    /// True when both have the same port names and shapes, in the same order.
    func sameSignature(as other: KernelSignature) -> Bool {
        inputs.map(\.name) == other.inputs.map(\.name) && inputs.map(\.shape) == other.inputs.map(\.shape)
            && outputs.map(\.name) == other.outputs.map(\.name) && outputs.map(\.shape) == other.outputs.map(\.shape)
    }

    /// Checks every count and size, then runs `entry` on the buffers.
    func call(
        _ entry: Kernel.Entry, inputs inputBuffers: [UnsafeBufferPointer<Double>],
        outputs outputBuffers: [UnsafeMutableBufferPointer<Double>], workspace: Workspace?
    ) throws {
        try check(inputs: inputBuffers, outputs: outputBuffers)
        if let workspace, workspace.byteCount < workspaceBytes {
            throw NablaError.sizeMismatch(what: "workspace bytes", expected: workspaceBytes, got: workspace.byteCount)
        }
        let scratch = workspace ?? takeWorkspace()
        defer { if workspace == nil { returnWorkspace(scratch) } }
        let status = withUnsafeTemporaryAllocation(of: UnsafePointer<Double>?.self, capacity: max(inputs.count, 1)) { ins in
            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Double>?.self, capacity: max(outputs.count, 1)) { outs in
                for (i, buffer) in inputBuffers.enumerated() { ins[i] = buffer.baseAddress ?? KernelSignature.emptyInput }
                for (i, buffer) in outputBuffers.enumerated() { outs[i] = buffer.baseAddress ?? KernelSignature.emptyOutput }
                return entry(UnsafePointer(ins.baseAddress!), UnsafePointer(outs.baseAddress!), scratch.pointer)
            }
        }
        guard status == 0 else { throw NablaError.kernelFailed(status: status) }
    }

    /// Checks that there is one buffer per port, of its size, and that outputs overlap
    /// nothing.
    /// - Throws: `NablaError.countMismatch` or `.sizeMismatch` naming the offending buffer.
    func check(inputs inputBuffers: [UnsafeBufferPointer<Double>], outputs outputBuffers: [UnsafeMutableBufferPointer<Double>]) throws {
        guard inputBuffers.count == inputs.count else {
            throw NablaError.countMismatch(what: "input buffers", expected: inputs.count, got: inputBuffers.count)
        }
        guard outputBuffers.count == outputs.count else {
            throw NablaError.countMismatch(what: "output buffers", expected: outputs.count, got: outputBuffers.count)
        }
        for (buffer, input) in zip(inputBuffers, inputs) where buffer.count != input.shape.count {
            throw NablaError.sizeMismatch(what: "input '\(input.name)' (shape \(input.shape))", expected: input.shape.count, got: buffer.count)
        }
        for (buffer, output) in zip(outputBuffers, outputs) where buffer.count != output.shape.count {
            throw NablaError.sizeMismatch(what: "output '\(output.name)' (shape \(output.shape))", expected: output.shape.count, got: buffer.count)
        }
        try checkNoOverlap(inputBuffers, outputBuffers)
    }

    /// Runs `entry` on named inputs and returns every output by name.
    func call(_ entry: Kernel.Entry, named: [String: TensorData]) throws -> [String: TensorData] {
        for name in named.keys where !inputs.contains(where: { $0.name == name }) {
            throw NablaError.unknownName(kind: "input", name: name, known: inputs.map(\.name))
        }
        var arrays: [[Double]] = []
        for input in inputs {
            guard let value = named[input.name] else {
                throw NablaError.unknownName(kind: "input", name: input.name, known: Array(named.keys).sorted())
            }
            guard value.shape == input.shape else {
                throw NablaError.shapeMismatch(op: "input '\(input.name)'", shapes: [value.shape, input.shape], reason: "given data does not have the declared shape")
            }
            arrays.append(value.scalars)
        }
        let results = try call(entry, arrays: arrays)
        var byName: [String: TensorData] = [:]
        for (output, scalars) in zip(outputs, results) { byName[output.name] = TensorData(unchecked: output.shape, scalars) }
        return byName
    }

    /// Runs `entry` on inputs in declaration order and returns the outputs in order.
    func call(_ entry: Kernel.Entry, arrays inputArrays: [[Double]]) throws -> [[Double]] {
        try withBuffers(inputArrays) { inputBuffers in
            try withOutputArrays(counts: outputs.map(\.shape.count)) { outputBuffers in
                try call(entry, inputs: inputBuffers, outputs: outputBuffers, workspace: nil)
            }
        }
    }

    nonisolated(unsafe) private static let emptyInput = UnsafePointer<Double>(bitPattern: 8)!
    nonisolated(unsafe) private static let emptyOutput = UnsafeMutablePointer<Double>(bitPattern: 8)!

    private func takeWorkspace() -> Workspace {
        spareWorkspaces.withLock { $0.popLast() } ?? Workspace(byteCount: workspaceBytes)
    }

    private func returnWorkspace(_ workspace: Workspace) {
        spareWorkspaces.withLock { if $0.count < 64 { $0.append(workspace) } }
    }
}

/// Scratch memory for kernel calls, 64-byte aligned, freed on deinit.
public final class Workspace: @unchecked Sendable {
    // The memory is handed to one call at a time; the class itself never touches it.
    /// Size of the memory, in bytes.
    public let byteCount: Int
    /// Start of the memory; nil when the kernel needs none.
    public let pointer: UnsafeMutableRawPointer?

    /// Allocates `byteCount` bytes, 64-byte aligned (nothing when it is 0).
    public init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = byteCount > 0 ? UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64) : nil
    }

    deinit { pointer?.deallocate() }
}

func checkNoOverlap(_ inputs: [UnsafeBufferPointer<Double>], _ outputs: [UnsafeMutableBufferPointer<Double>]) throws {
    func range(_ base: UnsafeRawPointer?, _ count: Int) -> Range<UInt>? {
        guard let base, count > 0 else { return nil }
        let start = UInt(bitPattern: base)
        return start..<start + UInt(count * MemoryLayout<Double>.stride)
    }
    let outs = outputs.map { range($0.baseAddress.map(UnsafeRawPointer.init), $0.count) }
    let ins = inputs.map { range($0.baseAddress.map(UnsafeRawPointer.init), $0.count) }
    for (j, o) in outs.enumerated() {
        guard let o else { continue }
        for (i, r) in ins.enumerated() where r.map(o.overlaps) == true {
            throw NablaError.invalidArgument(op: "kernel call", reason: "output buffer \(j) overlaps input buffer \(i)")
        }
        for (k, other) in outs.enumerated() where k != j && other.map(o.overlaps) == true {
            throw NablaError.invalidArgument(op: "kernel call", reason: "output buffers \(j) and \(k) overlap")
        }
    }
}

/// Runs `body` with buffer views of every array.
/// Runs `body` with one buffer of each of `counts` elements (zeros), all in one allocation,
/// and returns their contents afterwards.
func withOutputArrays(counts: [Int], _ body: ([UnsafeMutableBufferPointer<Double>]) throws -> Void) rethrows -> [[Double]] {
    var flat = [Double](repeating: 0, count: counts.reduce(0, +))
    try flat.withUnsafeMutableBufferPointer { all in
        var start = 0
        let buffers = counts.map { n in
            defer { start += n }
            return UnsafeMutableBufferPointer(rebasing: all[start..<start + n])
        }
        try body(buffers)
    }
    var start = 0
    return counts.map { n in
        defer { start += n }
        return Array(flat[start..<start + n])
    }
}

func withBuffers<R>(_ arrays: [[Double]], _ body: ([UnsafeBufferPointer<Double>]) throws -> R) rethrows -> R {
    var buffers: [UnsafeBufferPointer<Double>] = []
    func step(_ index: Int) throws -> R {
        if index == arrays.count { return try body(buffers) }
        return try arrays[index].withUnsafeBufferPointer { buffer in
            buffers.append(buffer)
            return try step(index + 1)
        }
    }
    return try step(0)
}

