/// Sum over the given axes (sorted, distinct), which are removed from the shape.
public struct Sum: LinearOperation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(axes: [Int]) { self.axes = axes }

    /// The axes summed over, removed from the result's shape.
    public let axes: [Int]
    public var name: String { "sum\(axes)" }
    /// A sum over the rows is a partial sum on each process; a sum of partial sums is one too.
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        split.reducing(self, axes: axes, overRows: .partial(local: self), partial: .partial(local: self))
    }
    /// A sum over no axes is a copy, computed on its own.
    public var role: OperationRole { axes.isEmpty ? .opaque : .sum }

    public func outputShape(for inputs: [Shape]) throws -> Shape { try reducedShape(inputs, axes: axes, op: "sum") }

    /// Strides into the result for each operand axis: zero along summed axes.
    func resultStrides(input: Shape, result: Shape) -> [Int] {
        let own = result.strides
        var k = 0
        return (0..<input.rank).map { axis in
            if axes.contains(axis) { return 0 }
            defer { k += 1 }
            return own[k]
        }
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let x = inputs[0]
        if shape.count == 1, let blocks = LoopIR.ReductionBlocks(extents: x.shape.dims) {
            // Many terms into one element: in blocks, as every kernel adds them.
            let scalars = x.scalars
            return TensorData(unchecked: shape, [blocks.sum { scalars[$0] }])
        }
        var result = [Double](repeating: 0, count: shape.count)
        // Operand order, as the C does, so both round identically.
        var k = 0
        forEachOffset(x.shape, [resultStrides(input: x.shape, result: shape)]) {
            result[$0[0]] += x.scalars[k]
            k += 1
        }
        return TensorData(unchecked: shape, result)
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        let input = rule.inputs[0].shape
        let kept = Shape(input.dims.enumerated().map { axes.contains($0.offset) ? 1 : $0.element })
        return [try rule.cotangent.reshaped(kept).broadcast(to: input)]
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let x = site.inputs[0], y = site.output
        let strides = resultStrides(input: Shape(x.extents), result: Shape(y.extents))
        let nest = LoopIR.loopNest(over: x.extents, [
            LoopIR.Access(y, strides: strides), LoopIR.Access(x, strides: x.strides),
        ]) { [.accumulate($0[0].place, $0[1].value)] }
        guard y.count == 1 else { return LoopIR.fill(y, with: 0) + nest }
        return LoopIR.fill(y, with: 0) + (try LoopIR.summedInBlocks(nest, extents: x.extents, into: y.place()))
    }
}

/// The shape of a reduction `op` of one operand over `axes` (distinct, in range): the operand's
/// shape without them.
/// - Throws: `NablaError.invalidArgument` for a wrong operand count or axes that do not fit.
func reducedShape(_ inputs: [Shape], axes: [Int], op: String) throws -> Shape {
    try requireOperands(inputs, 1, op)
    let shape = inputs[0]
    guard axes.allSatisfy({ $0 >= 0 && $0 < shape.rank }), Set(axes).count == axes.count else {
        throw NablaError.invalidArgument(op: op, reason: "axes \(axes) do not fit shape \(shape)")
    }
    return Shape(shape.dims.enumerated().filter { !axes.contains($0.offset) }.map(\.element))
}
