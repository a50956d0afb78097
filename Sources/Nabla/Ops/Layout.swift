/// An operation whose result is a rearrangement of its single operand's elements: element `i`
/// of the result (row-major) is operand element `offset + sum(index[k] * strides[k])`.
///
/// Conforming types give the view; evaluation and C emission follow from it.
public protocol StridedView: LinearOperation {
    /// Composes this view with an operand that is itself read at
    /// `offset + sum(index[k] * strides[k])` of some buffer: the offset and per-result-axis
    /// strides into that buffer, or nil when the result is not such a strided view of it (a
    /// reshape of a non-contiguous operand).
    func view(of input: Shape, offset: Int, strides: [Int], result: Shape) -> (offset: Int, strides: [Int])?
}

extension StridedView {
    /// Offset and per-result-axis strides into a contiguous operand of shape `input`.
    public func view(of input: Shape, result: Shape) -> (offset: Int, strides: [Int]) {
        // A contiguous operand always composes.
        view(of: input, offset: 0, strides: input.strides, result: result)!
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let (offset, strides) = view(of: inputs[0].shape, result: shape)
        let source = inputs[0].scalars
        var result = [Double]()
        result.reserveCapacity(shape.count)
        forEachOffset(shape, [strides]) { result.append(source[offset + $0[0]]) }
        return TensorData(unchecked: shape, result)
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let (offset, strides) = view(of: Shape(site.inputs[0].extents), result: Shape(site.output.extents))
        return site.gather(offset: offset, strides: strides)
    }

    public var role: OperationRole { .view }
}

/// Strides for reading a value of `shape`, itself read with `strides`, broadcast to `target`:
/// zero along the axes it lacks and where it has extent 1 but the target does not.
func broadcastStrides(_ shape: Shape, _ strides: [Int], to target: Shape) -> [Int] {
    let offset = target.rank - shape.rank
    return (0..<target.rank).map { axis in
        let mine = axis - offset
        if mine < 0 { return 0 }
        return shape[mine] == 1 && target[axis] != 1 ? 0 : strides[mine]
    }
}

func requireOperands(_ inputs: [Shape], _ count: Int, _ op: String) throws {
    guard inputs.count == count else {
        throw NablaError.invalidArgument(op: op, reason: "takes \(count) operand\(count == 1 ? "" : "s"), got \(inputs.count)")
    }
}

/// Permutes axes: axis `i` of the result is axis `permutation[i]` of the operand.
public struct Transpose: StridedView {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(permutation: [Int]) { self.permutation = permutation }

    /// For each axis of the result, the operand axis it is.
    public let permutation: [Int]
    public var name: String { "transpose\(permutation)" }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        guard let axis = split.rowAxis(0) else { return .partial(local: self) }
        return .rows(axis: permutation.firstIndex(of: axis)!, local: self)
    }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, name)
        let rank = inputs[0].rank
        guard permutation.count == rank, permutation.sorted() == Array(0..<rank) else {
            throw NablaError.invalidArgument(op: "transpose", reason: "\(permutation) is not a permutation of the axes of shape \(inputs[0])")
        }
        return Shape(permutation.map { inputs[0][$0] })
    }

    public func view(of input: Shape, offset: Int, strides: [Int], result: Shape) -> (offset: Int, strides: [Int])? {
        (offset, permutation.map { strides[$0] })
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        var inverse = [Int](repeating: 0, count: permutation.count)
        for (i, p) in permutation.enumerated() { inverse[p] = i }
        return [try rule.cotangent.transposed(inverse)]
    }
}

/// The operand's elements, row-major, in a new shape of the same element count.
public struct Reshape: StridedView {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(shape: Shape) { self.shape = shape }

    /// The result's shape.
    public let shape: Shape
    public var name: String { "reshape\(shape)" }
    /// Rows stay rows when the reshape keeps the row axis whole, with the same elements before
    /// and after it.
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        guard let axis = split.rowAxis(0) else { return .partial(local: self) }
        let input = split.shapes[0]
        let before = Shape.product(input.dims[..<axis]), after = Shape.product(input.dims[(axis + 1)...])
        for target in 0..<shape.rank where shape[target] == input[axis]
            && Shape.product(shape.dims[..<target]) == before && Shape.product(shape.dims[(target + 1)...]) == after {
            return .rows(axis: target, local: Reshape(shape: split.localized(shape, axis: target)))
        }
        return .refused("\(name) of \(input) mixes the rows with other axes")
    }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, name)
        guard inputs[0].count == shape.count else {
            throw NablaError.shapeMismatch(op: "reshape", shapes: [inputs[0], shape], reason: "element counts differ (\(inputs[0].count) and \(shape.count))")
        }
        return shape
    }

    public func view(of input: Shape, offset: Int, strides: [Int], result: Shape) -> (offset: Int, strides: [Int])? {
        if strides == input.strides { return (offset, result.strides) }
        // Adding or dropping axes of extent 1 keeps any strides.
        let kept = (0..<input.rank).filter { input[$0] != 1 }
        guard kept.map({ input[$0] }) == result.dims.filter({ $0 != 1 }) else { return nil }
        var next = kept.makeIterator()
        return (offset, result.dims.map { $0 == 1 ? 0 : strides[next.next()!] })
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        return [try rule.cotangent.reshaped(rule.inputs[0].shape)]
    }
}

/// Broadcasts the operand to a larger shape under NumPy rules.
public struct BroadcastTo: StridedView {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(shape: Shape) { self.shape = shape }

    /// The result's shape, which the operand's broadcasts to.
    public let shape: Shape
    public var name: String { "broadcast\(shape)" }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        guard let axis = split.rowAxis(0) else { return .partial(local: self) }
        let target = axis + shape.rank - split.shapes[0].rank
        guard shape[target] == split.rows else { return .refused("\(name) repeats the rows") }
        return .rows(axis: target, local: BroadcastTo(shape: split.localized(shape, axis: target)))
    }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, name)
        guard inputs[0].broadcasts(to: shape) else {
            throw NablaError.shapeMismatch(op: "broadcast", shapes: [inputs[0], shape], reason: "the first does not broadcast to the second")
        }
        return shape
    }

    public func view(of input: Shape, offset: Int, strides: [Int], result: Shape) -> (offset: Int, strides: [Int])? {
        (offset, broadcastStrides(input, strides, to: result))
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        return [try unbroadcast(rule.cotangent, to: rule.inputs[0].shape)]
    }
}

/// A strided box of the operand: along each axis, elements `start, start + step, ...` below
/// `end`. Bounds are already resolved (non-negative, within the extent).
public struct Slice: StridedView {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(starts: [Int], ends: [Int], steps: [Int]) {
        self.starts = starts
        self.ends = ends
        self.steps = steps
    }

    /// First element taken along each axis.
    public let starts: [Int]
    /// Bound along each axis (exclusive), at least the start and at most the extent.
    public let ends: [Int]
    /// Distance between the elements taken along each axis (positive).
    public let steps: [Int]
    public var name: String {
        "slice[" + (0..<starts.count).map { "\(starts[$0]):\(ends[$0])" + (steps[$0] == 1 ? "" : ":\(steps[$0])") }.joined(separator: ", ") + "]"
    }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "slice")
        let shape = inputs[0]
        guard starts.count == shape.rank, ends.count == shape.rank, steps.count == shape.rank else {
            throw NablaError.invalidArgument(op: "slice", reason: "\(starts.count) bounds for shape \(shape)")
        }
        var dims: [Int] = []
        for axis in 0..<shape.rank {
            guard steps[axis] > 0, 0 <= starts[axis], starts[axis] <= ends[axis], ends[axis] <= shape[axis] else {
                throw NablaError.invalidArgument(op: "slice", reason: "bounds \(starts[axis]):\(ends[axis]):\(steps[axis]) do not fit axis \(axis) of shape \(shape)")
            }
            dims.append((ends[axis] - starts[axis] + steps[axis] - 1) / steps[axis])
        }
        return Shape(dims)
    }

    public func view(of input: Shape, offset: Int, strides: [Int], result: Shape) -> (offset: Int, strides: [Int])? {
        (zip(starts, strides).reduce(offset) { $0 + $1.0 * $1.1 }, zip(strides, steps).map { $0 * $1 })
    }

    /// True when the slice keeps all of `axis`, of extent `extent`.
    func keepsWhole(_ axis: Int, extent: Int) -> Bool { starts[axis] == 0 && ends[axis] == extent && steps[axis] == 1 }

    /// The slice with `axis` (kept whole) cut to `extent`.
    func withWhole(_ axis: Int, extent: Int) -> Slice {
        var ends = ends
        ends[axis] = extent
        return Slice(starts: starts, ends: ends, steps: steps)
    }

    /// A slice that keeps the rows whole slices each block alike; one that picks rows cannot
    /// run on blocks.
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        guard let axis = split.rowAxis(0) else { return .partial(local: self) }
        guard keepsWhole(axis, extent: split.rows) else { return .refused("\(name) picks some of the rows") }
        return .rows(axis: axis, local: withWhole(axis, extent: split.localRows))
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        return [try rule.builder.apply(PadSlice(slice: self, shape: rule.inputs[0].shape), [rule.cotangent])]
    }
}

/// The adjoint of `Slice`: a tensor of `shape` holding the operand at the slice's positions and
/// zeros elsewhere.
public struct PadSlice: LinearOperation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(slice: Slice, shape: Shape) {
        self.slice = slice
        self.shape = shape
    }

    /// The slice whose positions the operand fills.
    public let slice: Slice
    /// The result's shape: that of the tensor the slice is taken from.
    public let shape: Shape
    public var role: OperationRole { .padSlice }
    public var name: String { "pad\(shape)<-" + slice.name }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        guard let axis = split.rowAxis(0) else { return .partial(local: self) }
        guard shape[axis] == split.rows, slice.keepsWhole(axis, extent: split.rows) else {
            return .refused("\(name) places rows among others")
        }
        return .rows(axis: axis, local: PadSlice(slice: slice.withWhole(axis, extent: split.localRows), shape: split.localized(shape, axis: axis)))
    }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "pad")
        let sliced = try slice.outputShape(for: [shape])
        guard sliced == inputs[0] else {
            throw NablaError.shapeMismatch(op: "pad", shapes: [inputs[0], sliced], reason: "operand does not match the slice")
        }
        return shape
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        var result = [Double](repeating: 0, count: shape.count)
        let (offset, strides) = slice.view(of: shape, result: inputs[0].shape)
        var k = 0
        forEachOffset(inputs[0].shape, [strides]) {
            result[offset + $0[0]] = inputs[0].scalars[k]
            k += 1
        }
        return TensorData(unchecked: shape, result)
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        return [try rule.builder.apply(slice, [rule.cotangent])]
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let source = site.inputs[0]
        let (offset, strides) = slice.view(of: shape, result: Shape(source.extents))
        return LoopIR.fill(site.output, with: 0) + LoopIR.loopNest(over: source.extents, [
            LoopIR.Access(site.output, offset: offset, strides: strides), LoopIR.Access(source, strides: source.strides),
        ]) { [.assign($0[0].place, $0[1].value)] }
    }
}

extension PullbackRule {
    /// The builder the differentiated graph lives in.
    public var builder: GraphBuilder { output.builder }
}
