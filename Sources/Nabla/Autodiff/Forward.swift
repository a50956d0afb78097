/// Forward-mode automatic differentiation as a graph transformation.
///
/// Tangents are pushed from the variables towards `y` in node order; the result is an
/// ordinary tensor in the same builder, sharing every forward value.

/// Jacobian-vector product: `(dy/dx1) v1 + (dy/dx2) v2 + ...`, shaped like `y`.
///
/// Each tangent must have its variable's shape. A `y` that depends on no variable gets a zero
/// tangent.
public func jvp(of y: Tensor, wrt variables: [Tensor], tangents: [Tensor]) throws -> Tensor {
    let builder = y.builder
    guard variables.count == tangents.count else {
        throw NablaError.countMismatch(what: "tangents", expected: variables.count, got: tangents.count)
    }
    // Tangents may come from a loop body around `y`'s graph (a Jacobian's loop over
    // directions): the tangent nodes are built there, sharing the forward values.
    guard variables.allSatisfy({ $0.builder === builder }), tangents.allSatisfy({ $0.builder.isBody(of: builder) }) else {
        throw NablaError.mixedBuilders(op: "jvp")
    }
    for (x, t) in zip(variables, tangents) where x.shape != t.shape {
        throw NablaError.shapeMismatch(op: "jvp", shapes: [x.shape, t.shape], reason: "a tangent must have the shape of its variable")
    }
    var tangent: [Int: Tensor] = [:]
    for (x, t) in zip(variables, tangents) {
        tangent[x.id] = try tangent[x.id].map { try $0 + t } ?? t
    }
    let first = variables.map(\.id).min() ?? y.id
    if first <= y.id {
        for id in first...y.id where tangent[id] == nil {
            let node = builder.nodes[id]
            let operandTangents = node.inputs.map { tangent[$0] }
            guard operandTangents.contains(where: { $0 != nil }) else { continue }
            let rule = TangentRule(
                inputs: node.inputs.map { Tensor(builder: builder, id: $0) }, output: Tensor(builder: builder, id: id),
                tangents: operandTangents)
            guard let t = try node.operation.tangent(rule) else { continue }
            guard t.shape == node.shape else {
                throw NablaError.internalInconsistency("the tangent rule of \(node.operation.name) returned shape \(t.shape) for a result of shape \(node.shape)")
            }
            tangent[id] = t
        }
    }
    return tangent[y.id] ?? builder.filled(0, shape: y.shape)
}

/// Jacobian-vector product with respect to one variable.
public func jvp(of y: Tensor, wrt variable: Tensor, tangent: Tensor) throws -> Tensor {
    try jvp(of: y, wrt: [variable], tangents: [tangent])
}

/// How a Jacobian is laid out.
public enum JacobianLayout: String, Sendable, CaseIterable {
    /// Shape `shape(y) + shape(x)`: rows are outputs (the default, as in JAX).
    case numerator
    /// Shape `shape(x) + shape(y)`: the transpose some texts use.
    case denominator
}

/// Which passes build a Jacobian.
public enum JacobianMode: String, Sendable, CaseIterable {
    /// One forward pass per input element, or one reverse pass per output element, whichever
    /// is fewer.
    case automatic
    case forward
    case reverse
}

/// The Jacobian of `y` with respect to `x`: every partial derivative dy_i/dx_j.
///
/// Built from one forward pass per element of `x` or one reverse pass per element of `y`
/// (`mode`), stacked into shape `shape(y) + shape(x)` (numerator layout) or its transpose.
public func jacobian(
    of y: Tensor, wrt x: Tensor, mode: JacobianMode = .automatic, layout: JacobianLayout = .numerator
) throws -> Tensor {
    let builder = y.builder
    let m = y.shape.count, n = x.shape.count
    let useForward = mode == .forward || (mode == .automatic && n <= m)
    var matrix: Tensor  // [m, n]
    if m == 0 || n == 0 {
        matrix = builder.filled(0, shape: [m, n])
    } else if max(m, n) > unrolledJacobianDirections {
        matrix = try loopedJacobian(of: y, wrt: x, forward: useForward)
    } else if useForward {
        var columns: [Tensor] = []
        for j in 0..<n {
            let direction = builder.constant(basis(j, x.shape))
            columns.append(try jvp(of: y, wrt: x, tangent: direction).reshaped([m, 1]))
        }
        matrix = try concat(columns, axis: 1)
    } else {
        var rows: [Tensor] = []
        for i in 0..<m {
            let direction = builder.constant(basis(i, y.shape))
            rows.append(try vjp(of: y, wrt: [x], cotangent: direction)[0].reshaped([1, n]))
        }
        matrix = try concat(rows, axis: 0)
    }
    switch layout {
    case .numerator: return try matrix.reshaped(Shape(y.shape.dims + x.shape.dims))
    case .denominator: return try matrix.transposed.reshaped(Shape(x.shape.dims + y.shape.dims))
    }
}

/// Jacobians with at most this many directions (elements of `x` in forward mode, of `y` in
/// reverse mode) are built with one pass per direction, which fuses with the rest of the
/// kernel; larger ones are one loop over the directions, so their code does not grow with them.
public let unrolledJacobianDirections = 8

/// The Jacobian as `[m, n]`, from one loop over the basis directions: step k takes direction
/// e_k and computes its JVP (a column) or VJP (a row) in the loop's body, reading the forward
/// values computed once outside.
private func loopedJacobian(of y: Tensor, wrt x: Tensor, forward: Bool) throws -> Tensor {
    let m = y.shape.count, n = x.shape.count
    let directions = forward ? n : m
    let made = try makeBody(parent: loopBuilder([y, x], fallback: y.builder), carries: [], rows: []) { _, _, k in
        let e = try k.builder.apply(OneHot(count: directions), [k])
        let line = forward
            ? try jvp(of: y, wrt: [x], tangents: [e.reshaped(x.shape)]).reshaped([m])
            : try vjp(of: [y], cotangents: [e.reshaped(y.shape)], wrt: [x])[0].reshaped([n])
        return ([], [line])
    }
    let stacked = try runScan([], [], steps: directions, made).1[0]
    return forward ? stacked.transposed : stacked
}

/// The Hessian of a scalar `y` with respect to `x`, shaped `shape(x) + shape(x)`: forward mode
/// over the reverse-mode gradient.
public func hessian(of y: Tensor, wrt x: Tensor) throws -> Tensor {
    let g = try gradient(of: y, wrt: x)
    return try jacobian(of: g, wrt: x, mode: .forward)
}

/// The Hessian of a scalar `y` times `v`, without forming the Hessian: one forward pass over
/// the gradient.
public func hvp(of y: Tensor, wrt x: Tensor, along v: Tensor) throws -> Tensor {
    try jvp(of: gradient(of: y, wrt: x), wrt: x, tangent: v)
}

/// The `order`-th derivative of a scalar `y` with respect to a scalar `x`, by repeated
/// differentiation of the derivative graph. Order 0 is `y` itself.
public func derivative(of y: Tensor, wrt x: Tensor, order: Int) throws -> Tensor {
    guard y.shape.count == 1, x.shape.count == 1 else {
        throw NablaError.shapeMismatch(op: "derivative", shapes: [y.shape, x.shape], reason: "n-th derivatives need a scalar function of a scalar")
    }
    guard order >= 0 else { throw NablaError.invalidArgument(op: "derivative", reason: "order must be non-negative, got \(order)") }
    var d = y
    for _ in 0..<order { d = try gradient(of: d, wrt: x) }
    return d
}

/// Taylor coefficients `f^(k)(x) / k!` for k = 0...order of a scalar `y` in a scalar `x`, at the
/// graph's value of `x`, as a vector of length order + 1.
public func taylorCoefficients(of y: Tensor, wrt x: Tensor, order: Int) throws -> Tensor {
    guard order >= 0 else { throw NablaError.invalidArgument(op: "taylor", reason: "order must be non-negative, got \(order)") }
    var terms: [Tensor] = []
    var d = y
    var factorial = 1.0
    for k in 0...order {
        if k > 0 {
            d = try gradient(of: d, wrt: x)
            factorial *= Double(k)
        }
        terms.append(try (d * (1 / factorial)).reshaped([1]))
    }
    return try concat(terms, axis: 0)
}

/// The tensor of `shape` with a one at flat index `i` and zeros elsewhere.
private func basis(_ i: Int, _ shape: Shape) -> TensorData {
    var scalars = [Double](repeating: 0, count: shape.count)
    scalars[i] = 1
    return TensorData(unchecked: shape, scalars)
}
