import Foundation

/// log(sum(exp(x))) over the given axes (sorted, distinct), which are removed from the shape.
///
/// Computed stably, per result element: a pass for the maximum m, then a pass summing
/// exp(x - m), and m + log(sum). When m is not finite the result is m itself: all elements
/// -inf (or none at all) give -inf rather than the NaN of -inf - -inf, any +inf gives +inf,
/// and a NaN anywhere gives NaN (the maximum pass lets a NaN win). The emitted C runs the same
/// passes in the same order.
public struct LogSumExp: Operation {
    public let axes: [Int]
    public init(axes: [Int]) { self.axes = axes }
    public var name: String { "logsumexp\(axes)" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "logsumexp")
        let shape = inputs[0]
        guard axes.allSatisfy({ $0 >= 0 && $0 < shape.rank }), Set(axes).count == axes.count else {
            throw NablaError.invalidArgument(op: "logsumexp", reason: "axes \(axes) do not fit shape \(shape)")
        }
        return Shape(shape.dims.enumerated().filter { !axes.contains($0.offset) }.map(\.element))
    }

    /// The kept and the reduced axes of an operand, each as (extents, operand strides).
    private func split(_ input: Shape) -> (kept: (Shape, [Int]), reduced: (Shape, [Int])) {
        let strides = input.strides
        var kept: ([Int], [Int]) = ([], []), reduced: ([Int], [Int]) = ([], [])
        for axis in 0..<input.rank {
            if axes.contains(axis) {
                reduced.0.append(input[axis]); reduced.1.append(strides[axis])
            } else {
                kept.0.append(input[axis]); kept.1.append(strides[axis])
            }
        }
        return ((Shape(kept.0), kept.1), (Shape(reduced.0), reduced.1))
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let x = inputs[0].scalars
        let (kept, reduced) = split(inputs[0].shape)
        var offsets: [Int] = []  // of the reduced elements from a result element's base, row-major
        forEachOffset(reduced.0, [reduced.1]) { offsets.append($0[0]) }
        var result: [Double] = []
        result.reserveCapacity(shape.count)
        forEachOffset(kept.0, [kept.1]) {
            let base = $0[0]
            var m = -Double.infinity
            for offset in offsets {
                let v = x[base + offset]
                if v > m || v.isNaN { m = v }
            }
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

    /// exp(x - y), y broadcast back over the reduced axes: the softmax along them. `softmax`
    /// builds the same nodes, so the builder shares them.
    private func weights(_ x: Tensor, _ y: Tensor) throws -> Tensor {
        exp(try x - y.reshaped(keptShape(x.shape)).broadcast(to: x.shape))
    }

    /// d/dx logsumexp = softmax: g broadcast back, times exp(x - y).
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        let x = rule.inputs[0]
        let g = try rule.cotangent.reshaped(keptShape(x.shape)).broadcast(to: x.shape)
        return [try g * weights(x, rule.output)]
    }

    /// d logsumexp = sum(softmax * dx) over the axes.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        let x = rule.inputs[0]
        let product = try weights(x, rule.output) * t
        return axes.isEmpty ? product : try rule.builder.apply(Sum(axes: axes), [product])
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let x = site.inputs[0], y = site.output
        let (kept, reduced) = split(Shape(x.extents))
        guard y.count > 0 else { return [] }
        // Flat indices from the kept loop counters o0, o1, ... and the reduced ones r0, r1, ...
        // (axes of extent 1 get no loop).
        func terms(_ counter: (Int) -> LoopIR.Counter, _ extents: Shape, _ strides: [Int]) -> [LoopIR.Index.Term] {
            extents.dims.indices.filter { extents[$0] > 1 }.map { LoopIR.Index.Term(counter($0), strides[$0]) }
        }
        let target = y.place(LoopIR.Index(0, terms(LoopIR.Counter.kept, kept.0, kept.0.strides)))
        let element = x.element(LoopIR.Index(0, terms(LoopIR.Counter.kept, kept.0, kept.1) + terms(LoopIR.Counter.reduced, reduced.0, reduced.1)))
        /// `body` inside loops over the axes of `extents` (extent-1 axes need none).
        func loops(_ counter: (Int) -> LoopIR.Counter, _ extents: Shape, _ body: [LoopIR.Statement]) -> [LoopIR.Statement] {
            var statements = body
            for axis in extents.dims.indices.reversed() where extents[axis] != 1 {
                statements = [.loop(LoopIR.Loop(counter(axis), to: extents[axis], body: statements))]
            }
            return statements
        }
        let m = LoopIR.Variable.temporary(0), s = LoopIR.Variable.temporary(1), v = LoopIR.Variable.temporary(2)
        var perElement: [LoopIR.Statement] = [.declare(m, .literal(-.infinity), mutable: true), .declare(s, .literal(0), mutable: true)]
        var finite: [LoopIR.Statement] = []
        if reduced.0.count > 0 {
            let larger = LoopIR.Condition.or(.compare(.greater, .variable(v), .variable(m)), .compare(.notEqual, .variable(v), .variable(v)))
            perElement += loops(LoopIR.Counter.reduced, reduced.0, [.constant(v, element), .ifElse(larger, [.assign(.variable(m), .variable(v))], [])])
            finite = loops(LoopIR.Counter.reduced, reduced.0, [.accumulate(.variable(s), .call(.exp, element - .variable(m)))])
        }
        finite.append(.assign(target, .variable(m) + .call(.log, .variable(s))))
        perElement.append(.ifElse(.compare(.equal, .variable(m) - .variable(m), .literal(0)), finite, [.assign(target, .variable(m))]))
        let nest = loops(LoopIR.Counter.kept, kept.0, perElement)
        // The emitter puts a node with several elements in a block of its own; a scalar needs one
        // for its locals.
        return y.count == 1 ? [.block(nest)] : nest
    }
}
