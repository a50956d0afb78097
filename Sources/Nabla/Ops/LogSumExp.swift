import Foundation

/// log(sum(exp(x))) over the given axes (sorted, distinct), which are removed from the shape.
///
/// Computed stably, per result element: a pass for the maximum m, then a pass summing
/// exp(x - m), and m + log(sum). When m is not finite the result is m itself: all elements
/// -inf (or none at all) give -inf rather than the NaN of -inf - -inf, any +inf gives +inf,
/// and a NaN anywhere gives NaN (the maximum pass lets a NaN win). The emitted C runs the same
/// passes in the same order.
public struct LogSumExp: Operation {
    /// The axes reduced, removed from the result's shape.
    public let axes: [Int]
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(axes: [Int]) { self.axes = axes }
    public var name: String { "logsumexp\(axes)" }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        split.reducing(self, axes: axes, overRows: .refused("\(name) is not a sum over the rows"), partial: .reduceFirst([0]))
    }

    public func outputShape(for inputs: [Shape]) throws -> Shape { try reducedShape(inputs, axes: axes, op: "logsumexp") }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let x = inputs[0].scalars
        let split = AxisSplit(inputs[0].shape, reducing: axes)
        let offsets = split.reducedOffsets
        var result: [Double] = []
        result.reserveCapacity(shape.count)
        split.forEachKept { base in
            let m = AxisSplit.maximum(x, base, offsets)
            if m - m == 0 {
                var s = 0.0
                for offset in offsets { s += Foundation.exp(x[base + offset] - m) }
                result.append(m + Foundation.log(s))
            } else {
                result.append(m)
            }
        }
        return TensorData(unchecked: shape, result)
    }

    /// The operand's shape with the reduced axes kept at extent 1.
    private func keptShape(_ input: Shape) -> Shape {
        Shape(input.dims.enumerated().map { axes.contains($0.offset) ? 1 : $0.element })
    }

    /// softmax(x) over the axes: the derivative, computed stably on its own (the same node as
    /// the builder's `softmax`, so the two are shared).
    private func weights(_ x: Tensor) throws -> Tensor {
        try x.builder.apply(Softmax(axes: axes), [x])
    }

    /// d/dx logsumexp = softmax: g broadcast back, times softmax(x).
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        let x = rule.inputs[0]
        let g = try rule.cotangent.reshaped(keptShape(x.shape)).broadcast(to: x.shape)
        return [try g * weights(x)]
    }

    /// d logsumexp = sum(softmax * dx) over the axes.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        let product = try weights(rule.inputs[0]) * t
        return axes.isEmpty ? product : try rule.builder.apply(Sum(axes: axes), [product])
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let x = site.inputs[0], y = site.output
        guard y.count > 0 else { return [] }
        let split = AxisSplit(Shape(x.extents), reducing: axes)
        let target = y.place(LoopIR.Index(0, split.keptTerms(split.kept.extents.strides)))
        let element = x.element(split.elementIndex)
        let m = LoopIR.Variable.temporary(0), s = LoopIR.Variable.temporary(1), v = LoopIR.Variable.temporary(2)
        var perPosition = split.maximumStatements(x, into: m, scratch: v)
        perPosition.append(.declare(s, .literal(0), mutable: true))
        var finite = split.reducedLoops([.accumulate(.variable(s), .call(.exp, element - .variable(m)))])
        finite.append(.assign(target, .variable(m) + .call(.log, .variable(s))))
        perPosition.append(.ifElse(.compare(.equal, .variable(m) - .variable(m), .literal(0)), finite, [.assign(target, .variable(m))]))
        let nest = split.keptLoops(perPosition)
        // The emitter puts a node with several elements in a block of its own; a scalar needs one
        // for its locals.
        return y.count == 1 ? [.block(nest)] : nest
    }
}
