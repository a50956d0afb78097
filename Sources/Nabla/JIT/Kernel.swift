import Synchronization

/// A graph compiled to native code in process by TinyCC.
///
/// A kernel computes every output of its graph in one call. Compile once, call many times:
///
/// ```swift
/// let kernel = try Kernel(graph)
/// let outputs = try kernel(["x": TensorData(0.5)])   // checked, convenient
/// ```
///
/// For hot loops, `callUnchecked(inputs:outputs:workspace:)` passes raw pointers straight to the
/// native function. Kernels are immutable and may be called from many threads at once, as long
/// as concurrent calls use different workspaces and output buffers (the checked calls see to
/// the workspace themselves).
public final class Kernel: Sendable {
    /// The native entry point: `int f(const double *const *inputs, double *const *outputs,
    /// void *workspace)`.
    public typealias Entry = @convention(c) (
        UnsafePointer<UnsafePointer<Double>?>?, UnsafePointer<UnsafeMutablePointer<Double>?>?, UnsafeMutableRawPointer?
    ) -> Int32

    /// Names and shapes of the inputs, in the order the kernel takes them.
    public let inputs: [(name: String, shape: Shape)]
    /// Names and shapes of the outputs, in the order the kernel writes them.
    public let outputs: [(name: String, shape: Shape)]
    /// Scratch bytes one call needs.
    public let workspaceBytes: Int
    /// The C the kernel was compiled from.
    public let source: CKernelSource
    /// The native entry point. Valid while this kernel is alive.
    public let entry: Entry

    private let module: TinyCC.Module
    private let spareWorkspaces = Mutex<[Workspace]>([])

    /// Compiles `graph` with TinyCC.
    /// - Throws: `NablaError.compilation` if the generated C does not compile (a Nabla bug,
    ///   reported with the C line).
    public convenience init(_ graph: Graph) throws {
        let source = try emitC(graph, options: CEmitOptions(useRuntime: true))
        try self.init(source: source, inputNames: graph.inputs.map(\.name), outputNames: graph.outputs.map(\.name))
    }

    /// Compiles C emitted by `emitC`, naming its inputs and outputs.
    public init(source: CKernelSource, inputNames: [String], outputNames: [String]) throws {
        guard inputNames.count == source.inputShapes.count else {
            throw NablaError.countMismatch(what: "input names", expected: source.inputShapes.count, got: inputNames.count)
        }
        guard outputNames.count == source.outputShapes.count else {
            throw NablaError.countMismatch(what: "output names", expected: source.outputShapes.count, got: outputNames.count)
        }
        module = try TinyCC.compile(source.code, symbol: source.functionName)
        entry = unsafeBitCast(module.symbol, to: Entry.self)
        self.source = source
        inputs = Array(zip(inputNames, source.inputShapes)).map { (name: $0.0, shape: $0.1) }
        outputs = Array(zip(outputNames, source.outputShapes)).map { (name: $0.0, shape: $0.1) }
        workspaceBytes = source.workspaceBytes
    }

    /// Scratch memory for one call at a time. Make one per thread for `callUnchecked`.
    public func makeWorkspace() -> Workspace { Workspace(byteCount: workspaceBytes) }

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

    /// Calls the kernel on caller-owned buffers after checking every count and size.
    ///
    /// Allocates nothing when `workspace` is given.
    /// - Throws: `NablaError.countMismatch` or `.sizeMismatch` naming the offending buffer.
    public func call(
        inputs inputBuffers: [UnsafeBufferPointer<Double>], outputs outputBuffers: [UnsafeMutableBufferPointer<Double>],
        workspace: Workspace? = nil
    ) throws {
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
        if let workspace, workspace.byteCount < workspaceBytes {
            throw NablaError.sizeMismatch(what: "workspace bytes", expected: workspaceBytes, got: workspace.byteCount)
        }
        let scratch = workspace ?? takeWorkspace()
        defer { if workspace == nil { returnWorkspace(scratch) } }
        let status = withUnsafeTemporaryAllocation(of: UnsafePointer<Double>?.self, capacity: max(inputs.count, 1)) { ins in
            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Double>?.self, capacity: max(outputs.count, 1)) { outs in
                for (i, buffer) in inputBuffers.enumerated() { ins[i] = buffer.baseAddress ?? Kernel.emptyInput }
                for (i, buffer) in outputBuffers.enumerated() { outs[i] = buffer.baseAddress ?? Kernel.emptyOutput }
                return entry(UnsafePointer(ins.baseAddress!), UnsafePointer(outs.baseAddress!), scratch.pointer)
            }
        }
        guard status == 0 else { throw NablaError.kernelFailed(status: status) }
    }

    /// Calls the kernel on named inputs and returns every output by name.
    ///
    /// Convenient and checked, but it allocates the results; use `call(inputs:outputs:workspace:)`
    /// or `callUnchecked` in loops.
    /// - Throws: `NablaError.unknownName` for a missing or unexpected input, `.shapeMismatch` for
    ///   an input of the wrong shape.
    public func callAsFunction(_ named: [String: TensorData]) throws -> [String: TensorData] {
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
        let results = try callAsFunction(arrays)
        var byName: [String: TensorData] = [:]
        for (output, scalars) in zip(outputs, results) { byName[output.name] = TensorData(unchecked: output.shape, scalars) }
        return byName
    }

    /// Calls the kernel on inputs given in declaration order and returns the outputs in order.
    public func callAsFunction(_ inputArrays: [[Double]]) throws -> [[Double]] {
        // One allocation for every output, split afterwards.
        let counts = outputs.map(\.shape.count)
        var flat = [Double](repeating: 0, count: counts.reduce(0, +))
        try withBuffers(inputArrays) { inputBuffers in
            try flat.withUnsafeMutableBufferPointer { all in
                var start = 0
                let outputBuffers = counts.map { n in
                    defer { start += n }
                    return UnsafeMutableBufferPointer(rebasing: all[start..<start + n])
                }
                try call(inputs: inputBuffers, outputs: outputBuffers)
            }
        }
        var start = 0
        return counts.map { n in
            defer { start += n }
            return Array(flat[start..<start + n])
        }
    }

    nonisolated(unsafe) private static let emptyInput = UnsafePointer<Double>(bitPattern: 8)!
    nonisolated(unsafe) private static let emptyOutput = UnsafeMutablePointer<Double>(bitPattern: 8)!

    private func takeWorkspace() -> Workspace {
        spareWorkspaces.withLock { $0.popLast() } ?? makeWorkspace()
    }

    private func returnWorkspace(_ workspace: Workspace) {
        spareWorkspaces.withLock { if $0.count < 64 { $0.append(workspace) } }
    }
}

/// Scratch memory for kernel calls, 64-byte aligned, freed on deinit.
public final class Workspace: @unchecked Sendable {
    // The memory is handed to one call at a time; the class itself never touches it.
    public let byteCount: Int
    /// Start of the memory; nil when the kernel needs none.
    public let pointer: UnsafeMutableRawPointer?

    public init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = byteCount > 0 ? UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64) : nil
    }

    deinit { pointer?.deallocate() }
}

private func checkNoOverlap(_ inputs: [UnsafeBufferPointer<Double>], _ outputs: [UnsafeMutableBufferPointer<Double>]) throws {
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

