import Foundation

// Comparisons, logic and selection: the operations of branches. Their results are exact (a
// comparison is 1 or 0, a selection copies one of its operands), so the interpreter and the C
// agree bit for bit. The selecting operations declare `selects`, which makes reverse mode keep
// the branch not taken out of every derivative (see `PullbackRule.cotangentMasks`).

// MARK: - Comparisons

/// An elementwise comparison, broadcasting: 1 where `a relation b` holds, else 0. As in IEEE
/// arithmetic, a NaN compares false with everything, except under `!=`. Its derivative is zero.
public struct Compare: BinaryElementwise {
    /// The comparison, applied as `a relation b`.
    public let relation: LoopIR.ComparisonOperator

    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(_ relation: LoopIR.ComparisonOperator) { self.relation = relation }

    public var name: String {
        switch relation {
        case .less: return "less"
        case .lessOrEqual: return "less_equal"
        case .greater: return "greater"
        case .greaterOrEqual: return "greater_equal"
        case .equal: return "equal"
        case .notEqual: return "not_equal"
        }
    }

    /// Whether `a relation b` holds for two numbers.
    public static func holds(_ relation: LoopIR.ComparisonOperator, _ a: Double, _ b: Double) -> Bool {
        switch relation {
        case .less: return a < b
        case .lessOrEqual: return a <= b
        case .greater: return a > b
        case .greaterOrEqual: return a >= b
        case .equal: return a == b
        case .notEqual: return a != b
        }
    }

    public func apply(_ a: Double, _ b: Double) -> Double { Compare.holds(relation, a, b) ? 1 : 0 }
    public func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression {
        .select(.compare(relation, a, b), .literal(1), .literal(0))
    }
    public func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?) { (nil, nil) }
    public var derivativeIsBounded: Bool { true }
}

/// True (nonzero, NaN included) as a condition of the loop IR.
private func isTrue(_ x: LoopIR.Expression) -> LoopIR.Condition { .compare(.notEqual, x, .literal(0)) }

/// Logical and of two masks, elementwise and broadcasting: 1 where both are nonzero, else 0.
public struct LogicalAnd: BinaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "and" }
    public func apply(_ a: Double, _ b: Double) -> Double { a != 0 && b != 0 ? 1 : 0 }
    public func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression {
        .select(.and(isTrue(a), isTrue(b)), .literal(1), .literal(0))
    }
    public func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?) { (nil, nil) }
    public var derivativeIsBounded: Bool { true }
}

/// Logical or of two masks, elementwise and broadcasting: 1 where either is nonzero, else 0.
public struct LogicalOr: BinaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "or" }
    public func apply(_ a: Double, _ b: Double) -> Double { a != 0 || b != 0 ? 1 : 0 }
    public func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression {
        .select(.or(isTrue(a), isTrue(b)), .literal(1), .literal(0))
    }
    public func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?) { (nil, nil) }
    public var derivativeIsBounded: Bool { true }
}

/// Logical not of a mask, elementwise: 1 where it is zero, else 0 (a NaN counts as true).
public struct LogicalNot: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "not" }
    public func apply(_ x: Double) -> Double { x == 0 ? 1 : 0 }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression {
        .select(.compare(.equal, x, .literal(0)), .literal(1), .literal(0))
    }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { nil }
    public var derivativeIsBounded: Bool { true }
}

// MARK: - Selection

/// `where(c, a, b)`: elementwise, `a` where `c` is nonzero (a NaN counts as true) and `b`
/// elsewhere, all three broadcasting to one shape.
///
/// The cotangent of `a` is the result's cotangent where `c` holds and exactly zero elsewhere,
/// and the other way round for `b`; `c` gets none. Reverse mode keeps those zeros exact through
/// the elementwise operations that computed the branch (see `PullbackRule.cotangentMasks`), so
/// `grad sum(where(x > 0, log(x), 0))` is 0, not NaN, at x = 0.
public struct Select: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "where" }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule { split.elementwise(self) }
    public var role: OperationRole { .elementwise }
    public var selects: Bool { true }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 3, "where")
        guard let ab = Shape.broadcast(inputs[1], inputs[2]), let shape = Shape.broadcast(inputs[0], ab) else {
            throw NablaError.shapeMismatch(op: "where", shapes: inputs, reason: "the condition and the two branches do not broadcast to one shape")
        }
        return shape
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let c = inputs[0].scalars, a = inputs[1].scalars, b = inputs[2].scalars
        var result = [Double](repeating: 0, count: shape.count)
        var k = 0
        forEachOffset(shape, inputs.map { $0.shape.broadcastStrides(to: shape) }) { offsets in
            result[k] = c[offsets[0]] != 0 ? a[offsets[1]] : b[offsets[2]]
            k += 1
        }
        return TensorData(unchecked: shape, result)
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        let c = rule.inputs[0], g = rule.cotangent
        let zero = g.builder.constant(0)
        let ga = rule.needsGradient[1] ? try unbroadcast(select(c, g, zero), to: rule.inputs[1].shape) : nil
        let gb = rule.needsGradient[2] ? try unbroadcast(select(c, zero, g), to: rule.inputs[2].shape) : nil
        return [nil, ga, gb]
    }

    /// The tangent selected as the value is: the branch not taken contributes nothing, even
    /// where its own tangent is not finite.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        let ta = rule.tangents[1], tb = rule.tangents[2]
        guard ta != nil || tb != nil else { return nil }
        let zero = rule.builder.constant(0)
        let chosen = try select(rule.inputs[0], ta ?? zero, tb ?? zero)
        return chosen.shape == rule.output.shape ? chosen : try chosen.broadcast(to: rule.output.shape)
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        site.elementwise { elementwise($0)! }
    }

    public func elementwise(_ operands: [LoopIR.Expression]) -> LoopIR.Expression? {
        .select(isTrue(operands[0]), operands[1], operands[2])
    }
}

/// `where(c, a, b)` in the builder; `Select` documents it.
func select(_ c: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    try c.builder.apply(Select(), [c, a, b])
}

/// The larger of two numbers, a NaN in either winning, as the C helper computes it.
private func larger(_ a: Double, _ b: Double) -> Double { a > b || a.isNaN ? a : b }
/// The smaller of two numbers, a NaN in either winning.
private func smaller(_ a: Double, _ b: Double) -> Double { a < b || a.isNaN ? a : b }

/// The cotangent of the first operand of `maximum` (or, with `relation` `.less`, `minimum`): all
/// of `g` where that operand wins, half where the two tie, none elsewhere.
private func winnerShare(_ a: Tensor, _ b: Tensor, _ g: Tensor, wins relation: LoopIR.ComparisonOperator) throws -> Tensor {
    let builder = g.builder
    let half = try select(builder.apply(Compare(.equal), [a, b]), 0.5 * g, builder.constant(0))
    return try select(builder.apply(Compare(relation), [a, b]), g, half)
}

/// The larger of `a` and `b`, elementwise and broadcasting; a NaN in either gives NaN. Where the
/// two are equal each gets half the derivative, as in JAX.
public struct Maximum: BinaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    static let helper = CFunction("nabla_maximum", [.init(.double, "a"), .init(.double, "b")], origin: .helper(
        definition: "static double nabla_maximum(double a, double b) { return a > b || a != a ? a : b; }"))
    public var name: String { "maximum" }
    public var selects: Bool { true }
    public func apply(_ a: Double, _ b: Double) -> Double { larger(a, b) }
    public func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression { .call(Maximum.helper, a, b) }
    public func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?) {
        (needs[0] ? try winnerShare(a, b, g, wins: .greater) : nil, needs[1] ? try winnerShare(b, a, g, wins: .greater) : nil)
    }
    public var derivativeIsBounded: Bool { true }
}

/// The smaller of `a` and `b`, elementwise and broadcasting; a NaN in either gives NaN. Where the
/// two are equal each gets half the derivative.
public struct Minimum: BinaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    static let helper = CFunction("nabla_minimum", [.init(.double, "a"), .init(.double, "b")], origin: .helper(
        definition: "static double nabla_minimum(double a, double b) { return a < b || a != a ? a : b; }"))
    public var name: String { "minimum" }
    public var selects: Bool { true }
    public func apply(_ a: Double, _ b: Double) -> Double { smaller(a, b) }
    public func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression { .call(Minimum.helper, a, b) }
    public func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?) {
        (needs[0] ? try winnerShare(a, b, g, wins: .less) : nil, needs[1] ? try winnerShare(b, a, g, wins: .less) : nil)
    }
    public var derivativeIsBounded: Bool { true }
}

// MARK: - Reductions

/// The largest (or smallest) element over the given axes (sorted, distinct), which are removed
/// from the shape; a NaN among them gives NaN, and no elements at all give -inf (+inf for the
/// minimum), the identity of the reduction. The derivative is shared evenly among the elements
/// that attain the extremum, as in JAX.
public struct Extremum: Operation {
    /// Which extremum.
    public enum Kind: String, Hashable, Sendable {
        case maximum = "max", minimum = "min"
    }

    /// Which extremum the operation takes.
    public let kind: Kind
    /// The axes reduced, removed from the result's shape.
    public let axes: [Int]

    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(_ kind: Kind, axes: [Int]) {
        self.kind = kind
        self.axes = axes
    }

    public var name: String { "\(kind.rawValue)\(axes)" }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        split.reducing(self, axes: axes, overRows: .refused("\(name) takes the \(kind.rawValue)imum over the rows"), partial: .reduceFirst([0]))
    }
    public var selects: Bool { true }

    /// The comparison by which an element beats the best so far.
    private var beats: LoopIR.ComparisonOperator { kind == .maximum ? .greater : .less }
    /// The result over no elements.
    private var identity: Double { kind == .maximum ? -.infinity : .infinity }

    public func outputShape(for inputs: [Shape]) throws -> Shape { try reducedShape(inputs, axes: axes, op: kind.rawValue) }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let x = inputs[0].scalars
        let split = AxisSplit(inputs[0].shape, reducing: axes)
        let offsets = split.reducedOffsets
        var result: [Double] = []
        result.reserveCapacity(shape.count)
        split.forEachKept { result.append(AxisSplit.extremum(x, $0, offsets, beats: beats, from: identity)) }
        return TensorData(unchecked: shape, result)
    }

    /// The operand's shape with the reduced axes kept at extent 1.
    private func keptShape(_ input: Shape) -> Shape {
        Shape(input.dims.enumerated().map { axes.contains($0.offset) ? 1 : $0.element })
    }

    /// Where `x` attains the extremum `y` (broadcast back), and how many elements do per result.
    private func winners(_ x: Tensor, _ y: Tensor) throws -> (mask: Tensor, count: Tensor) {
        let mask = try x.builder.apply(Compare(.equal), [x, y.reshaped(keptShape(x.shape)).broadcast(to: x.shape)])
        return (mask, try x.builder.apply(Sum(axes: axes), [mask]))
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        let x = rule.inputs[0]
        let (mask, count) = try winners(x, rule.output)
        let share = try (rule.cotangent / count).reshaped(keptShape(x.shape)).broadcast(to: x.shape)
        return [try select(mask, share, x.builder.constant(0))]
    }

    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        let x = rule.inputs[0]
        let (mask, count) = try winners(x, rule.output)
        let chosen = try select(mask, t, x.builder.constant(0))
        return try x.builder.apply(Sum(axes: axes), [chosen]) / count
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let x = site.inputs[0], y = site.output
        guard y.count > 0 else { return [] }
        let split = AxisSplit(Shape(x.extents), reducing: axes)
        let target = y.place(LoopIR.Index(0, split.keptTerms(split.kept.extents.strides)))
        let m = LoopIR.Variable.temporary(0), v = LoopIR.Variable.temporary(1)
        var perPosition = split.extremumStatements(x, beats: beats, from: identity, into: m, scratch: v)
        perPosition.append(.assign(target, .variable(m)))
        let nest = split.keptLoops(perPosition)
        return y.count == 1 ? [.block(nest)] : nest
    }
}

// MARK: - Builder functions

extension Tensor {
    /// 1 where `lhs < rhs`, else 0, elementwise and broadcasting (a NaN compares false).
    /// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
    public static func .< (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Compare(.less), [lhs, rhs]) }
    /// 1 where `lhs <= rhs`, else 0, elementwise and broadcasting.
    public static func .<= (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Compare(.lessOrEqual), [lhs, rhs]) }
    /// 1 where `lhs > rhs`, else 0, elementwise and broadcasting.
    public static func .> (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Compare(.greater), [lhs, rhs]) }
    /// 1 where `lhs >= rhs`, else 0, elementwise and broadcasting.
    public static func .>= (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Compare(.greaterOrEqual), [lhs, rhs]) }
    /// 1 where `lhs == rhs`, else 0, elementwise and broadcasting.
    public static func .== (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Compare(.equal), [lhs, rhs]) }
    /// 1 where `lhs != rhs` (a NaN differs from everything), else 0, elementwise and broadcasting.
    public static func .!= (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.builder.apply(Compare(.notEqual), [lhs, rhs]) }

    // A scalar operand always broadcasts, so these cannot fail.
    /// 1 where an element is below `rhs`, else 0.
    public static func .< (lhs: Tensor, rhs: Double) -> Tensor { try! lhs .< lhs.constant(rhs) }
    /// 1 where an element is at most `rhs`, else 0.
    public static func .<= (lhs: Tensor, rhs: Double) -> Tensor { try! lhs .<= lhs.constant(rhs) }
    /// 1 where an element is above `rhs`, else 0.
    public static func .> (lhs: Tensor, rhs: Double) -> Tensor { try! lhs .> lhs.constant(rhs) }
    /// 1 where an element is at least `rhs`, else 0.
    public static func .>= (lhs: Tensor, rhs: Double) -> Tensor { try! lhs .>= lhs.constant(rhs) }
    /// 1 where an element equals `rhs`, else 0.
    public static func .== (lhs: Tensor, rhs: Double) -> Tensor { try! lhs .== lhs.constant(rhs) }
    /// 1 where an element differs from `rhs`, else 0.
    public static func .!= (lhs: Tensor, rhs: Double) -> Tensor { try! lhs .!= lhs.constant(rhs) }
}

/// 1 where both masks are nonzero, else 0, elementwise and broadcasting (the language's `and`).
/// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
public func and(_ a: Tensor, _ b: Tensor) throws -> Tensor { try a.builder.apply(LogicalAnd(), [a, b]) }
/// 1 where either mask is nonzero, else 0, elementwise and broadcasting (the language's `or`).
/// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
public func or(_ a: Tensor, _ b: Tensor) throws -> Tensor { try a.builder.apply(LogicalOr(), [a, b]) }
/// 1 where the mask is zero, else 0 (the language's `not`).
public func not(_ x: Tensor) -> Tensor { x.unary(LogicalNot()) }

/// `a` where `condition` is nonzero and `b` elsewhere, all three broadcasting (the language's
/// `where`; call it as `Nabla.where(c, a, b)`, or with its name in backticks). The branch not taken
/// contributes nothing to any derivative, even where its own derivative is inf or NaN.
/// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
public func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor { try select(condition, a, b) }
/// `where` with a constant for the second branch.
public func `where`(_ condition: Tensor, _ a: Tensor, _ b: Double) throws -> Tensor { try select(condition, a, a.constant(b)) }
/// `where` with a constant for the first branch.
public func `where`(_ condition: Tensor, _ a: Double, _ b: Tensor) throws -> Tensor { try select(condition, b.constant(a), b) }

/// The larger of `a` and `b`, elementwise and broadcasting; ties share the derivative evenly.
/// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
public func maximum(_ a: Tensor, _ b: Tensor) throws -> Tensor { try a.builder.apply(Maximum(), [a, b]) }
/// The larger of each element and a constant.
public func maximum(_ a: Tensor, _ b: Double) -> Tensor { try! maximum(a, a.constant(b)) }
/// The smaller of `a` and `b`, elementwise and broadcasting; ties share the derivative evenly.
/// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
public func minimum(_ a: Tensor, _ b: Tensor) throws -> Tensor { try a.builder.apply(Minimum(), [a, b]) }
/// The smaller of each element and a constant.
public func minimum(_ a: Tensor, _ b: Double) -> Tensor { try! minimum(a, a.constant(b)) }
/// `x` clamped to `[lo, hi]` elementwise: `minimum(maximum(x, lo), hi)`, as in JAX.
/// - Throws: `NablaError.shapeMismatch` when the shapes do not broadcast.
public func clip(_ x: Tensor, _ lo: Tensor, _ hi: Tensor) throws -> Tensor { try minimum(maximum(x, lo), hi) }
/// `x` clamped to the constants `[lo, hi]`.
public func clip(_ x: Tensor, _ lo: Double, _ hi: Double) -> Tensor { minimum(maximum(x, lo), hi) }

/// The largest element (a scalar); a NaN gives NaN.
public func max(_ x: Tensor) -> Tensor { try! x.builder.apply(Extremum(.maximum, axes: Array(0..<x.shape.rank)), [x]) }
/// The largest element over the given axes, which are removed. Negative axes count from the end.
public func max(_ x: Tensor, axes: [Int]) throws -> Tensor {
    try x.builder.apply(Extremum(.maximum, axes: normalizedAxes(axes, rank: x.shape.rank, op: "max")), [x])
}
/// The largest element along one axis.
public func max(_ x: Tensor, axis: Int) throws -> Tensor { try max(x, axes: [axis]) }
/// The smallest element (a scalar); a NaN gives NaN.
public func min(_ x: Tensor) -> Tensor { try! x.builder.apply(Extremum(.minimum, axes: Array(0..<x.shape.rank)), [x]) }
/// The smallest element over the given axes, which are removed. Negative axes count from the end.
public func min(_ x: Tensor, axes: [Int]) throws -> Tensor {
    try x.builder.apply(Extremum(.minimum, axes: normalizedAxes(axes, rank: x.shape.rank, op: "min")), [x])
}
/// The smallest element along one axis.
public func min(_ x: Tensor, axis: Int) throws -> Tensor { try min(x, axes: [axis]) }

/// Tensors of one shape stacked along a new leading axis: shape `[count] + shape`.
/// - Throws: `NablaError.invalidArgument` for no tensors, `.shapeMismatch` when shapes differ.
public func stack(_ tensors: [Tensor]) throws -> Tensor {
    guard let first = tensors.first else { throw NablaError.invalidArgument(op: "stack", reason: "needs at least one tensor") }
    guard tensors.allSatisfy({ $0.shape == first.shape }) else {
        throw NablaError.shapeMismatch(op: "stack", shapes: tensors.map(\.shape), reason: "the stacked tensors must have one shape")
    }
    let row = Shape([1] + first.shape.dims)
    return try concat(tensors.map { try $0.reshaped(row) }, axis: 0)
}
