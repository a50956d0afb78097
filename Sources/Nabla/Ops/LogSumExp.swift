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

    public func emitC(_ node: CNode) throws {
        let x = node.inputs[0], y = node.output
        let (kept, reduced) = split(x.shape)
        guard y.shape.count > 0 else { return }
        // Flat indices from the kept loop indices o0, o1, ... and the reduced ones r0, r1, ...
        // (axes of extent 1 get no loop).
        func terms(_ variable: String, _ extents: Shape, _ strides: [Int]) -> [String] {
            extents.dims.indices.filter { extents[$0] > 1 }.map { strides[$0] == 1 ? "\(variable)\($0)" : "\(variable)\($0) * \(strides[$0])" }
        }
        func flat(_ terms: [String]) -> String { terms.isEmpty ? "0" : terms.joined(separator: " + ") }
        let target = y.element(flat(terms("o", kept.0, kept.0.strides)))
        let element = x.element(flat(terms("o", kept.0, kept.1) + terms("r", reduced.0, reduced.1)))

        /// Loops over the reduced axes (extent-1 axes need none) around `body`.
        func reducedLoops(_ axis: Int, _ body: () -> Void) {
            if axis == reduced.0.rank { return body() }
            if reduced.0[axis] == 1 { return reducedLoops(axis + 1, body) }
            node.block("for (long r\(axis) = 0; r\(axis) < \(reduced.0[axis]); r\(axis)++)") { reducedLoops(axis + 1, body) }
        }
        func keptLoops(_ axis: Int) {
            if axis < kept.0.rank {
                if kept.0[axis] == 1 { return keptLoops(axis + 1) }
                node.block("for (long o\(axis) = 0; o\(axis) < \(kept.0[axis]); o\(axis)++)") { keptLoops(axis + 1) }
                return
            }
            node.line("double m = \(cLiteral(-.infinity));")
            node.line("double s = 0.0;")
            if reduced.0.count > 0 {
                reducedLoops(0) {
                    node.line("const double v = \(element);")
                    node.line("if (v > m || v != v) m = v;")
                }
            }
            node.block("if (m - m == 0.0)") {
                if reduced.0.count > 0 {
                    reducedLoops(0) { node.line("s += exp(\(element) - m);") }
                }
                node.line("\(target) = m + log(s);")
            }
            node.block("else") { node.line("\(target) = m;") }
        }
        // The emitter puts a node with several elements in a block of its own; a scalar needs one
        // for its locals.
        if y.shape.count == 1 { node.block("") { keptLoops(0) } } else { keptLoops(0) }
    }
}
