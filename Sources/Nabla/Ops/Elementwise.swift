import Foundation

/// An elementwise operation of one operand, defined by what it does to one number.
///
/// Conforming types give the scalar function, its C expression and its derivative; shape rule,
/// interpretation, pullback and C loop come from this protocol.
public protocol UnaryElementwise: Operation {
    /// The function on one element.
    func apply(_ x: Double) -> Double
    /// The function of the element `x`, in the loop IR.
    func expression(_ x: LoopIR.Expression) -> LoopIR.Expression
    /// The cotangent of the operand, given operand `x`, result `y` and result cotangent `g`
    /// (all of one shape); nil where the derivative is zero everywhere.
    func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor?
    /// True when the derivative is finite wherever the cotangent is (it is g times a constant,
    /// or zero), so a zero cotangent needs no guard (`PullbackRule.cotangentMasks`).
    var derivativeIsBounded: Bool { get }
}

extension UnaryElementwise {
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule { split.elementwise(self) }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1 else {
            throw NablaError.invalidArgument(op: name, reason: "takes one operand, got \(inputs.count)")
        }
        return inputs[0]
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        TensorData(unchecked: shape, inputs[0].scalars.map(apply))
    }

    public var derivativeIsBounded: Bool { false }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        guard rule.needsGradient[0] else { return [nil] }
        let d = try derivative(x: rule.inputs[0], y: rule.output, g: rule.cotangent)
        return [try d.map { try strongZero($0, rule, bounded: derivativeIsBounded) }]
    }

    /// f'(x) dx: the same elementwise product the pullback forms with the cotangent.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        return try derivative(x: rule.inputs[0], y: rule.output, g: t)
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        site.elementwise { expression($0[0]) }
    }

    public var role: OperationRole { .elementwise }
    public func elementwise(_ operands: [LoopIR.Expression]) -> LoopIR.Expression? { expression(operands[0]) }
}

/// An elementwise operation of two operands with NumPy broadcasting.
public protocol BinaryElementwise: Operation {
    func apply(_ a: Double, _ b: Double) -> Double
    /// The function of elements `a` and `b`, in the loop IR.
    func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression
    /// Cotangents of both operands at the broadcast shape, given operands, result and result
    /// cotangent. `needs` says which are wanted; return nil for the others. Nabla sums them back
    /// to each operand's own shape.
    func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?)
    /// True when both derivatives are finite wherever the cotangent is (g times a constant, or
    /// zero), so a zero cotangent needs no guard (`PullbackRule.cotangentMasks`).
    var derivativeIsBounded: Bool { get }
}

extension BinaryElementwise {
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule { split.elementwise(self) }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 2 else {
            throw NablaError.invalidArgument(op: name, reason: "takes two operands, got \(inputs.count)")
        }
        guard let shape = Shape.broadcast(inputs[0], inputs[1]) else {
            throw NablaError.shapeMismatch(op: name, shapes: inputs, reason: "the shapes do not broadcast")
        }
        return shape
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let a = inputs[0], b = inputs[1]
        if a.shape == shape && b.shape == shape {
            return TensorData(unchecked: shape, zip(a.scalars, b.scalars).map { apply($0, $1) })
        }
        if b.shape.count == 1 && a.shape == shape {
            let y = b.scalars[0]
            return TensorData(unchecked: shape, a.scalars.map { apply($0, y) })
        }
        if a.shape.count == 1 && b.shape == shape {
            let x = a.scalars[0]
            return TensorData(unchecked: shape, b.scalars.map { apply(x, $0) })
        }
        var result = [Double](repeating: 0, count: shape.count)
        var k = 0
        forEachOffset(shape, [a.shape.broadcastStrides(to: shape), b.shape.broadcastStrides(to: shape)]) { offsets in
            result[k] = apply(a.scalars[offsets[0]], b.scalars[offsets[1]])
            k += 1
        }
        return TensorData(unchecked: shape, result)
    }

    public var derivativeIsBounded: Bool { false }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        let a = rule.inputs[0], b = rule.inputs[1]
        let (ga, gb) = try derivatives(a: a, b: b, y: rule.output, g: rule.cotangent, needs: rule.needsGradient)
        // The guard applies at the result's shape, before a broadcast operand's sum.
        func guarded(_ d: Tensor) throws -> Tensor { try strongZero(d, rule, bounded: derivativeIsBounded) }
        return [try ga.map { try unbroadcast(guarded($0), to: a.shape) }, try gb.map { try unbroadcast(guarded($0), to: b.shape) }]
    }

    /// dy = dy/da da + dy/db db. The rule is linear in `g`, so each term is the pullback rule
    /// applied to that operand's tangent (broadcast to the result's shape).
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        let a = rule.inputs[0], b = rule.inputs[1], y = rule.output
        var total: Tensor?
        if let ta = rule.tangents[0] {
            total = try derivatives(a: a, b: b, y: y, g: ta.broadcast(to: y.shape), needs: [true, false]).0
        }
        if let tb = rule.tangents[1], let term = try derivatives(a: a, b: b, y: y, g: tb.broadcast(to: y.shape), needs: [false, true]).1 {
            total = try total.map { try $0 + term } ?? term
        }
        return total
    }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        site.elementwise { expression($0[0], $0[1]) }
    }

    public var role: OperationRole { .elementwise }
    public func elementwise(_ operands: [LoopIR.Expression]) -> LoopIR.Expression? { expression(operands[0], operands[1]) }
}

/// `d`, an elementwise rule's cotangent for an operand (at the result's shape), made exactly
/// zero where the rule's cotangent is zero and the rule turned that zero into NaN (0 * inf,
/// 0 / 0), when that cotangent masks and the rule could.
///
/// A zero cotangent times a finite factor is already zero, so `d` is kept wherever it is a
/// number: a second derivative then sees the rule's own dependence on the cotangent, which a
/// guard on the cotangent alone would cut at every stationary point (the Hessian of
/// `maximum((x^2 - 1)^2, -1)` at x = 1 is 8, not 0).
func strongZero(_ d: Tensor, _ rule: PullbackRule, bounded: Bool) throws -> Tensor {
    guard rule.cotangentMasks, !bounded else { return d }
    let g = rule.cotangent
    let b = g.builder
    let live = try b.apply(LogicalOr(), [b.apply(Compare(.notEqual), [g, b.constant(0)]), b.apply(Compare(.equal), [d, d])])
    return try select(live, d, b.constant(0))
}

/// Sums a cotangent computed at a broadcast shape back to the shape of the operand that was
/// broadcast: over the leading axes it lacked and the axes where it had extent 1.
func unbroadcast(_ g: Tensor, to shape: Shape) throws -> Tensor {
    if g.shape == shape { return g }
    let offset = g.shape.rank - shape.rank
    var axes = Array(0..<offset)
    for axis in 0..<shape.rank where shape[axis] == 1 && g.shape[axis + offset] != 1 {
        axes.append(axis + offset)
    }
    let reduced = axes.isEmpty ? g : try sum(g, axes: axes)
    return try reduced.reshaped(shape)
}

/// Calls `body` with the offset into each operand for every index of `shape` in row-major
/// order; operand `k` is read with `strides[k]` (zero along broadcast axes).
func forEachOffset(_ shape: Shape, _ strides: [[Int]], _ body: ([Int]) -> Void) {
    let count = shape.count
    if count == 0 { return }
    let rank = shape.rank
    var index = [Int](repeating: 0, count: rank)
    var offsets = [Int](repeating: 0, count: strides.count)
    for _ in 0..<count {
        body(offsets)
        var axis = rank - 1
        while axis >= 0 {
            index[axis] += 1
            for k in 0..<strides.count { offsets[k] += strides[k][axis] }
            if index[axis] < shape[axis] { break }
            for k in 0..<strides.count { offsets[k] -= strides[k][axis] * shape[axis] }
            index[axis] = 0
            axis -= 1
        }
    }
}

// MARK: - Arithmetic

/// a + b elementwise, broadcasting.
public struct Add: BinaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var derivativeIsBounded: Bool { true }
    public var name: String { "add" }
    /// A sum of partial sums is the partial sum of the sum.
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule { split.elementwise(self, linearIn: .additive) }
    public func apply(_ a: Double, _ b: Double) -> Double { a + b }
    public func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression { a + b }
    public func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?) {
        (needs[0] ? g : nil, needs[1] ? g : nil)
    }
}

/// a - b elementwise, broadcasting.
public struct Subtract: BinaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var derivativeIsBounded: Bool { true }
    public var name: String { "sub" }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule { split.elementwise(self, linearIn: .additive) }
    public func apply(_ a: Double, _ b: Double) -> Double { a - b }
    public func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression { a - b }
    public func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?) {
        (needs[0] ? g : nil, needs[1] ? -g : nil)
    }
}

/// a * b elementwise, broadcasting.
public struct Multiply: BinaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "mul" }
    /// A partial sum times a replicated factor stays a partial sum.
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule { split.elementwise(self, linearIn: .multiplicative([0, 1])) }
    public func apply(_ a: Double, _ b: Double) -> Double { a * b }
    public func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression { a * b }
    public func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?) {
        (needs[0] ? try g * b : nil, needs[1] ? try g * a : nil)
    }
}

/// a / b elementwise, broadcasting.
public struct Divide: BinaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "div" }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule { split.elementwise(self, linearIn: .multiplicative([0])) }
    public func apply(_ a: Double, _ b: Double) -> Double { a / b }
    public func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression { a / b }
    public func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?) {
        // d(a/b)/db = -a/b^2 = -y/b, which reuses the quotient.
        let ga = needs[0] ? try g / b : nil
        let gb = needs[1] ? try -(g * y) / b : nil
        return (ga, gb)
    }
}

/// a^b elementwise with a tensor exponent.
public struct Power: BinaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "pow" }
    public func apply(_ a: Double, _ b: Double) -> Double { Foundation.pow(a, b) }
    public func expression(_ a: LoopIR.Expression, _ b: LoopIR.Expression) -> LoopIR.Expression { .call(.pow, a, b) }
    public func derivatives(a: Tensor, b: Tensor, y: Tensor, g: Tensor, needs: [Bool]) throws -> (Tensor?, Tensor?) {
        // b a^(b-1) rather than b y / a, which would divide by zero at a = 0.
        let ga = needs[0] ? try g * b * (a ** (b - 1)) : nil
        let gb = needs[1] ? try g * y * log(a) : nil
        return (ga, gb)
    }
}

/// -x elementwise.
public struct Negate: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var derivativeIsBounded: Bool { true }
    public var name: String { "neg" }
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule { split.elementwise(self, linearIn: .additive) }
    public func apply(_ x: Double) -> Double { -x }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { -x }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { -g }
}

/// x^c for a constant exponent c.
public struct PowConstant: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(exponent: Double) { self.exponent = exponent }

    /// The exponent c; 2, 3, 0.5 and -1 are computed without `pow`.
    public let exponent: Double
    public var name: String { "pow[\(formatDouble(exponent))]" }
    public func apply(_ x: Double) -> Double {
        switch exponent {
        case 2: return x * x
        case 3: return x * x * x
        case 0.5: return x.squareRoot()
        case -1: return 1 / x
        default: return Foundation.pow(x, exponent)
        }
    }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression {
        switch exponent {
        case 2: return x * x
        case 3: return x * x * x
        case 0.5: return .call(.sqrt, x)
        case -1: return .literal(1) / x
        default: return .call(.pow, x, .literal(exponent))
        }
    }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? {
        if exponent == 0 { return nil }
        return try g * (exponent * pow(x, exponent - 1))
    }
}

// MARK: - Transcendental and activation functions

/// The square root of x, elementwise.
public struct Sqrt: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "sqrt" }
    public func apply(_ x: Double) -> Double { x.squareRoot() }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(.sqrt, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { try 0.5 * g / y }
}

/// e^x elementwise.
public struct Exp: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "exp" }
    public func apply(_ x: Double) -> Double { Foundation.exp(x) }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(.exp, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { try g * y }
}

/// The natural logarithm of x, elementwise.
public struct Log: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "log" }
    public func apply(_ x: Double) -> Double { Foundation.log(x) }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(.log, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { try g / x }
}

/// sin x elementwise.
public struct Sin: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "sin" }
    public func apply(_ x: Double) -> Double { Foundation.sin(x) }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(.sin, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { try g * cos(x) }
}

/// cos x elementwise.
public struct Cos: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "cos" }
    public func apply(_ x: Double) -> Double { Foundation.cos(x) }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(.cos, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { try -(g * sin(x)) }
}

/// tan x elementwise.
public struct Tan: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "tan" }
    public func apply(_ x: Double) -> Double { Foundation.tan(x) }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(.tan, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { try g * (1 + square(y)) }
}

/// tanh x elementwise.
public struct Tanh: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "tanh" }
    public func apply(_ x: Double) -> Double { Foundation.tanh(x) }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(.tanh, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { try g * (1 - square(y)) }
}

/// 1 / (1 + e^-x) elementwise, without overflow for large |x|.
public struct Sigmoid: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    /// The C twin of `apply`, operation for operation, so both round the same way.
    static let helper = CFunction("nabla_sigmoid", [.init(.double, "x")], origin: .helper(definition: """
        static double nabla_sigmoid(double x) {
            double e;
            if (x >= 0) return 1.0 / (1.0 + exp(-x));
            e = exp(x);
            return e / (1.0 + e);
        }
        """), calls: [.exp])
    public var name: String { "sigmoid" }
    public func apply(_ x: Double) -> Double {
        // The branch keeps exp's argument non-positive, so neither side overflows.
        if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
        let e = Foundation.exp(x)
        return e / (1 + e)
    }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(Sigmoid.helper, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { try g * (y * (1 - y)) }
}

/// max(x, 0) elementwise; its derivative at 0 is 0.
public struct Relu: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    static let helper = CFunction("nabla_relu", [.init(.double, "x")], origin: .helper(
        definition: "static double nabla_relu(double x) { return x < 0 ? 0.0 : x; }"))
    public var name: String { "relu" }
    public var selects: Bool { true }
    public func apply(_ x: Double) -> Double { x < 0 ? 0 : x }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(Relu.helper, x) }
    /// g where x > 0, exactly zero elsewhere (a selection, so forward mode too ignores a
    /// non-finite tangent where the value is clamped).
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? {
        let b = x.builder
        return try select(b.apply(Compare(.greater), [x, b.constant(0)]), g, b.constant(0))
    }
    public var derivativeIsBounded: Bool { true }
}

/// |x| elementwise; its derivative at 0 is 0.
public struct Abs: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "abs" }
    public func apply(_ x: Double) -> Double { Swift.abs(x) }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(.fabs, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { try g * sign(x) }
}

/// log(1 + e^x) elementwise, without overflow for large x.
public struct Softplus: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    /// The C twin of `apply`.
    static let helper = CFunction("nabla_softplus", [.init(.double, "x")], origin: .helper(
        definition: "static double nabla_softplus(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }"),
        calls: [.log1p, .exp, .fabs])
    public var name: String { "softplus" }
    public func apply(_ x: Double) -> Double {
        // log(1 + e^x) = max(x, 0) + log1p(e^-|x|), which neither overflows nor loses small values.
        (x > 0 ? x : 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x)))
    }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(Softplus.helper, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { try g * sigmoid(x) }
}

/// Heaviside step: 1 for x > 0, else 0 (NaN stays NaN).
public struct Step: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    static let helper = CFunction("nabla_step", [.init(.double, "x")], origin: .helper(
        definition: "static double nabla_step(double x) { return x > 0 ? 1.0 : (x != x ? x : 0.0); }"))
    public var name: String { "step" }
    public func apply(_ x: Double) -> Double { x > 0 ? 1 : (x.isNaN ? x : 0) }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(Step.helper, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { nil }
}

/// Sign: -1, 0 or 1 (NaN stays NaN).
public struct Sign: UnaryElementwise {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    static let helper = CFunction("nabla_sign", [.init(.double, "x")], origin: .helper(
        definition: "static double nabla_sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : (x != x ? x : 0.0)); }"))
    public var name: String { "sign" }
    public func apply(_ x: Double) -> Double { x > 0 ? 1 : (x < 0 ? -1 : (x.isNaN ? x : 0)) }
    public func expression(_ x: LoopIR.Expression) -> LoopIR.Expression { .call(Sign.helper, x) }
    public func derivative(x: Tensor, y: Tensor, g: Tensor) throws -> Tensor? { nil }
}
