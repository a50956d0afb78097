import Foundation

/// The axes of an operand split into kept and reduced ones, for operations that work on the
/// reduced elements of each kept position (logsumexp, softmax, log-softmax): each side's
/// extents and the operand's strides along them.
struct AxisSplit {
    let kept: (extents: Shape, strides: [Int])
    let reduced: (extents: Shape, strides: [Int])

    init(_ input: Shape, reducing axes: [Int]) {
        let strides = input.strides
        var kept: ([Int], [Int]) = ([], []), reduced: ([Int], [Int]) = ([], [])
        for axis in 0..<input.rank {
            if axes.contains(axis) {
                reduced.0.append(input[axis]); reduced.1.append(strides[axis])
            } else {
                kept.0.append(input[axis]); kept.1.append(strides[axis])
            }
        }
        self.kept = (Shape(kept.0), kept.1)
        self.reduced = (Shape(reduced.0), reduced.1)
    }

    /// Offsets of the reduced elements from a kept position's first element, row-major.
    var reducedOffsets: [Int] {
        var offsets: [Int] = []
        forEachOffset(reduced.extents, [reduced.strides]) { offsets.append($0[0]) }
        return offsets
    }

    /// Calls `body` with the offset of each kept position's first element, row-major.
    func forEachKept(_ body: (Int) -> Void) {
        forEachOffset(kept.extents, [kept.strides]) { body($0[0]) }
    }

    // MARK: - Loop IR

    /// Index terms over the kept counters `o0, o1, ...` with `strides` (axes of extent 1 get no
    /// counter).
    func keptTerms(_ strides: [Int]) -> [LoopIR.Index.Term] {
        kept.extents.dims.indices.filter { kept.extents[$0] > 1 }.map { LoopIR.Index.Term(.kept($0), strides[$0]) }
    }

    /// The operand's index at the current kept and reduced counters.
    var elementIndex: LoopIR.Index {
        let reducedTerms = reduced.extents.dims.indices.filter { reduced.extents[$0] > 1 }.map { LoopIR.Index.Term(.reduced($0), reduced.strides[$0]) }
        return LoopIR.Index(0, keptTerms(kept.strides) + reducedTerms)
    }

    /// `body` inside loops over the kept axes.
    func keptLoops(_ body: [LoopIR.Statement]) -> [LoopIR.Statement] { loops(LoopIR.Counter.kept, kept.extents, body) }

    /// `body` inside loops over the reduced axes (none when there are no reduced elements).
    func reducedLoops(_ body: [LoopIR.Statement]) -> [LoopIR.Statement] {
        if reduced.extents.count == 0 { return [] }
        // With every reduced extent 1 there is no loop: a block scopes the body's locals.
        if reduced.extents.dims.allSatisfy({ $0 == 1 }) { return [.block(body)] }
        return loops(LoopIR.Counter.reduced, reduced.extents, body)
    }

    private func loops(_ counter: (Int) -> LoopIR.Counter, _ extents: Shape, _ body: [LoopIR.Statement]) -> [LoopIR.Statement] {
        var statements = body
        for axis in extents.dims.indices.reversed() where extents[axis] != 1 {
            statements = [.loop(LoopIR.Loop(counter(axis), to: extents[axis], body: statements))]
        }
        return statements
    }

    /// `m = max over the reduced elements of x`, a NaN winning, starting from -inf: the first
    /// pass of every operation here, the same in the interpreter and the C.
    func maximumStatements(_ x: LoopIR.Operand, into m: LoopIR.Variable, scratch v: LoopIR.Variable) -> [LoopIR.Statement] {
        extremumStatements(x, beats: .greater, from: -.infinity, into: m, scratch: v)
    }

    /// `m` = the reduced element of x that `beats` every other (a NaN winning), starting from
    /// `identity`, in the order `extremum` visits them.
    func extremumStatements(_ x: LoopIR.Operand, beats: LoopIR.ComparisonOperator, from identity: Double, into m: LoopIR.Variable, scratch v: LoopIR.Variable) -> [LoopIR.Statement] {
        let better = LoopIR.Condition.or(.compare(beats, .variable(v), .variable(m)), .compare(.notEqual, .variable(v), .variable(v)))
        return [.declare(m, .literal(identity), mutable: true)]
            + reducedLoops([.constant(v, x.element(elementIndex)), .ifElse(better, [.assign(.variable(m), .variable(v))], [])])
    }

    /// The interpreter's twin of `maximumStatements`.
    static func maximum(_ x: [Double], _ base: Int, _ offsets: [Int]) -> Double {
        extremum(x, base, offsets, beats: .greater, from: -.infinity)
    }

    /// The interpreter's twin of `extremumStatements`.
    static func extremum(_ x: [Double], _ base: Int, _ offsets: [Int], beats: LoopIR.ComparisonOperator, from identity: Double) -> Double {
        var m = identity
        for offset in offsets {
            let v = x[base + offset]
            if Compare.holds(beats, v, m) || v.isNaN { m = v }
        }
        return m
    }
}

/// `x`'s cotangent-like tensor `t` summed over `axes` and broadcast back to `x`'s shape.
func sumBroadcast(_ t: Tensor, axes: [Int]) throws -> Tensor {
    let kept = Shape(t.shape.dims.enumerated().map { axes.contains($0.offset) ? 1 : $0.element })
    return try sum(t, axes: axes).reshaped(kept).broadcast(to: t.shape)
}

/// exp(x) normalised to sum to 1 over the given axes (sorted, distinct): per position of the
/// other axes, m = the maximum (a NaN wins), e = exp(x - m), stored, then e / sum(e). Subtracting
/// the maximum first keeps every exp in [0, 1], so large equal logits (1e16 and 1e16) give 1/2
/// each, not the 1 and 1 of exp(x - logsumexp(x)). All elements -inf, or any +inf, give NaN,
/// as in the references.
public struct Softmax: Operation {
    /// The axes normalised over; the result keeps the operand's shape.
    public let axes: [Int]
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(axes: [Int]) { self.axes = axes }
    public var name: String { "softmax\(axes)" }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        split.reducing(self, axes: axes, overRows: .refused("\(name) normalises over the rows"), partial: .reduceFirst([0]), keepsAxes: true)
    }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "softmax")
        guard axes.allSatisfy({ $0 >= 0 && $0 < inputs[0].rank }), Set(axes).count == axes.count else {
            throw NablaError.invalidArgument(op: "softmax", reason: "axes \(axes) do not fit shape \(inputs[0])")
        }
        return inputs[0]
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let x = inputs[0].scalars
        let split = AxisSplit(shape, reducing: axes)
        let offsets = split.reducedOffsets
        var y = [Double](repeating: 0, count: x.count)
        split.forEachKept { base in
            let m = AxisSplit.maximum(x, base, offsets)
            var s = 0.0
            for offset in offsets {
                let e = Foundation.exp(x[base + offset] - m)
                y[base + offset] = e
                s += e
            }
            for offset in offsets { y[base + offset] = y[base + offset] / s }
        }
        return TensorData(unchecked: shape, y)
    }

    /// With y = softmax(x): dx = y (g - sum(g y)) over the axes.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        let y = rule.output, g = rule.cotangent
        return [try y * (g - sumBroadcast(g * y, axes: axes))]
    }

    /// dy = y (dx - sum(y dx)).
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        let y = rule.output
        return try y * (t - sumBroadcast(y * t, axes: axes))
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let x = site.inputs[0], y = site.output
        guard y.count > 0 else { return [] }
        let split = AxisSplit(Shape(x.extents), reducing: axes)
        let index = split.elementIndex
        let m = LoopIR.Variable.temporary(0), s = LoopIR.Variable.temporary(1), v = LoopIR.Variable.temporary(2)
        var perPosition = split.maximumStatements(x, into: m, scratch: v)
        perPosition.append(.declare(s, .literal(0), mutable: true))
        perPosition += split.reducedLoops([
            .constant(v, .call(.exp, x.element(index) - .variable(m))),
            .assign(y.place(index), .variable(v)),
            .accumulate(.variable(s), .variable(v)),
        ])
        perPosition += split.reducedLoops([.assign(y.place(index), y.element(index) / .variable(s))])
        return [.block(split.keptLoops(perPosition))]
    }
}

/// log(softmax(x)) over the given axes: per position of the other axes, (x - m) - log(sum(exp(x
/// - m))) with m the maximum, accurate where softmax underflows and for large equal logits.
public struct LogSoftmax: Operation {
    /// The axes normalised over; the result keeps the operand's shape.
    public let axes: [Int]
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(axes: [Int]) { self.axes = axes }
    public var name: String { "log_softmax\(axes)" }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        split.reducing(self, axes: axes, overRows: .refused("\(name) normalises over the rows"), partial: .reduceFirst([0]), keepsAxes: true)
    }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try Softmax(axes: axes).outputShape(for: inputs)
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let x = inputs[0].scalars
        let split = AxisSplit(shape, reducing: axes)
        let offsets = split.reducedOffsets
        var y = [Double](repeating: 0, count: x.count)
        split.forEachKept { base in
            let m = AxisSplit.maximum(x, base, offsets)
            var s = 0.0
            for offset in offsets { s += Foundation.exp(x[base + offset] - m) }
            let l = Foundation.log(s)
            for offset in offsets { y[base + offset] = (x[base + offset] - m) - l }
        }
        return TensorData(unchecked: shape, y)
    }

    /// dx = g - softmax(x) sum(g) over the axes.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        let p = try rule.builder.apply(Softmax(axes: axes), [rule.inputs[0]])
        return [try rule.cotangent - p * sumBroadcast(rule.cotangent, axes: axes)]
    }

    /// dy = dx - sum(softmax(x) dx).
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        let p = try rule.builder.apply(Softmax(axes: axes), [rule.inputs[0]])
        return try t - sumBroadcast(p * t, axes: axes)
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let x = site.inputs[0], y = site.output
        guard y.count > 0 else { return [] }
        let split = AxisSplit(Shape(x.extents), reducing: axes)
        let index = split.elementIndex
        let m = LoopIR.Variable.temporary(0), s = LoopIR.Variable.temporary(1), v = LoopIR.Variable.temporary(2)
        let l = LoopIR.Variable.temporary(3)
        var perPosition = split.maximumStatements(x, into: m, scratch: v)
        perPosition.append(.declare(s, .literal(0), mutable: true))
        perPosition += split.reducedLoops([.accumulate(.variable(s), .call(.exp, x.element(index) - .variable(m)))])
        perPosition.append(.constant(l, .call(.log, .variable(s))))
        perPosition += split.reducedLoops([.assign(y.place(index), (x.element(index) - .variable(m)) - .variable(l))])
        return [.block(split.keptLoops(perPosition))]
    }
}
