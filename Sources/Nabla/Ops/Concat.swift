/// Joins tensors along one axis; every other extent must agree.
public struct Concat: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(axis: Int) { self.axis = axis }

    /// The axis joined along (0-based).
    public let axis: Int
    public var name: String { "concat[axis \(axis)]" }

    /// Values split along the same axis (not the joined one) join block by block; replicated
    /// ones are cut to the block. Partial sums join into a partial sum, replicated values
    /// with them as partial sums too.
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        let partial = split.partialOperands
        let rowed = split.rowOperands
        if rowed.isEmpty {
            return partial.count == split.placements.count
                ? .partial(local: self) : .promoteFirst(split.placements.indices.filter { split.placements[$0] == .replicated })
        }
        if !partial.isEmpty { return .reduceFirst(partial) }
        let axes = Set(rowed.map { split.rowAxis($0)! })
        guard axes.count == 1, let rows = axes.first, rows != axis else {
            return .refused("\(name) joins along the rows")
        }
        let replicated = split.placements.indices.filter { split.placements[$0] == .replicated }
        if !replicated.isEmpty { return .sliceFirst(replicated.map { ($0, rows) }) }
        return .rows(axis: rows, local: self)
    }

    /// Its copy loops read elements only.
    public var readsContiguousViewsInPlace: Bool { true }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        guard let first = inputs.first else {
            throw NablaError.invalidArgument(op: "concat", reason: "needs at least one operand")
        }
        guard axis >= 0, axis < first.rank else {
            throw NablaError.invalidArgument(op: "concat", reason: "axis \(axis) is out of range for rank \(first.rank)")
        }
        var dims = first.dims
        for shape in inputs.dropFirst() {
            guard shape.rank == first.rank, (0..<first.rank).allSatisfy({ $0 == axis || shape[$0] == first[$0] }) else {
                throw NablaError.shapeMismatch(op: "concat", shapes: [first, shape], reason: "extents differ off axis \(axis)")
            }
            dims[axis] += shape[axis]
        }
        return Shape(dims)
    }

    /// Offset of each operand along the axis.
    private func offsets(_ shapes: [Shape]) -> [Int] {
        var running = 0
        return shapes.map { shape in
            defer { running += shape[axis] }
            return running
        }
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        var result = [Double](repeating: 0, count: shape.count)
        let strides = shape.strides
        for (input, start) in zip(inputs, offsets(inputs.map(\.shape))) {
            var k = 0
            forEachOffset(input.shape, [strides]) {
                result[start * strides[axis] + $0[0]] = input.scalars[k]
                k += 1
            }
        }
        return TensorData(unchecked: shape, result)
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        let shapes = rule.inputs.map(\.shape)
        return try zip(shapes, offsets(shapes)).enumerated().map { i, item in
            guard rule.needsGradient[i] else { return nil }
            let (shape, start) = item
            var ranges = [SliceRange](repeating: .all, count: shape.rank)
            ranges[axis] = .between(start, start + shape[axis])
            return try rule.cotangent.slice(ranges)
        }
    }

    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard rule.tangents.contains(where: { $0 != nil }) else { return nil }
        let parts = zip(rule.inputs, rule.tangents).map { input, t in t ?? rule.builder.filled(0, shape: input.shape) }
        return try rule.builder.apply(self, parts)
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let strides = site.output.strides
        let starts = offsets(site.inputs.map { Shape($0.extents) })
        return zip(site.inputs, starts).flatMap { input, start in
            LoopIR.loopNest(over: input.extents, [
                LoopIR.Access(site.output, offset: start * strides[axis], strides: strides), LoopIR.Access(input, strides: input.strides),
            ]) { [.assign($0[0].place, $0[1].value)] }
        }
    }
}

/// Joins tensors along `axis` (negative counts from the end).
public func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
    guard let first = tensors.first else {
        throw NablaError.invalidArgument(op: "concat", reason: "needs at least one operand")
    }
    if tensors.count == 1 { return first }
    let resolved = axis < 0 ? axis + first.shape.rank : axis
    return try first.builder.apply(Concat(axis: resolved), tensors)
}
