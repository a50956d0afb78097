/// Reverse-mode automatic differentiation as a graph transformation.
///
/// The derivative nodes are appended to the builder that holds `y`, so the forward values they
/// need are shared, not recomputed, and the result is an ordinary tensor that can be
/// differentiated again.

/// The gradient of a scalar `y` with respect to each tensor in `variables`, each shaped like its
/// variable.
///
/// A variable `y` does not depend on gets a zero gradient.
/// - Throws: `NablaError.shapeMismatch` if `y` is not a scalar.
public func gradient(of y: Tensor, wrt variables: [Tensor]) throws -> [Tensor] {
    guard y.shape.count == 1 else {
        throw NablaError.shapeMismatch(op: "gradient", shapes: [y.shape], reason: "the differentiated value must be a scalar; use vjp with a cotangent for tensors")
    }
    return try vjp(of: y, wrt: variables, cotangent: y.builder.filled(1, shape: y.shape))
}

/// The gradient of a scalar with respect to one variable.
public func gradient(of y: Tensor, wrt variable: Tensor) throws -> Tensor {
    try gradient(of: y, wrt: [variable])[0]
}

/// Vector-Jacobian product: `cotangent^T (dy/dx)` for each variable x, shaped like x.
///
/// `cotangent` must have `y`'s shape.
public func vjp(of y: Tensor, wrt variables: [Tensor], cotangent: Tensor) throws -> [Tensor] {
    try vjp(of: [y], cotangents: [cotangent], wrt: variables)
}

/// Vector-Jacobian product of several values at once: the sum over `outputs[j]` of
/// `cotangents[j]^T (d outputs[j] / dx)` for each variable x, shaped like x. `masking`: the
/// cotangents may hold zeros of a selection (`PullbackRule.cotangentMasks`), to be kept exact.
func vjp(of outputs: [Tensor], cotangents: [Tensor], wrt variables: [Tensor], masking: Bool = false) throws -> [Tensor] {
    guard let y = outputs.max(by: { $0.id < $1.id }) else { throw NablaError.invalidArgument(op: "vjp", reason: "needs at least one value") }
    let builder = y.builder
    guard outputs.count == cotangents.count else {
        throw NablaError.countMismatch(what: "cotangents", expected: outputs.count, got: cotangents.count)
    }
    guard outputs.allSatisfy({ $0.builder === builder }), cotangents.allSatisfy({ $0.builder.isBody(of: builder) }), variables.allSatisfy({ $0.builder === builder }) else {
        throw NablaError.mixedBuilders(op: "vjp")
    }
    for (output, cotangent) in zip(outputs, cotangents) where cotangent.shape != output.shape {
        throw NablaError.shapeMismatch(op: "vjp", shapes: [output.shape, cotangent.shape], reason: "the cotangent must have the shape of the differentiated value")
    }
    let last = y.id
    // Nodes that depend on some variable: only their operands' cotangents are worth building.
    var dependsOnVariable = [Bool](repeating: false, count: last + 1)
    for v in variables where v.id <= last { dependsOnVariable[v.id] = true }
    for id in 0...last where !dependsOnVariable[id] {
        dependsOnVariable[id] = builder.nodes[id].inputs.contains { dependsOnVariable[$0] }
    }
    var adjoints = [Tensor?](repeating: nil, count: last + 1)
    // Whether a node's adjoint came (in part) through a selecting operation, whose zeros must
    // stay exact upstream.
    var masks = [Bool](repeating: false, count: last + 1)
    for (output, cotangent) in zip(outputs, cotangents) {
        adjoints[output.id] = try adjoints[output.id].map { try $0 + cotangent } ?? cotangent
        masks[output.id] = masking
    }
    let earliest = variables.map(\.id).min() ?? last
    for id in stride(from: last, through: earliest, by: -1) {
        guard let g = adjoints[id], dependsOnVariable[id] else { continue }
        let node = builder.nodes[id]
        if node.inputs.isEmpty { continue }
        let operands = node.inputs.map { Tensor(builder: builder, id: $0) }
        let rule = PullbackRule(
            inputs: operands, output: Tensor(builder: builder, id: id), cotangent: g,
            needsGradient: node.inputs.map { dependsOnVariable[$0] }, cotangentMasks: masks[id])
        let contributions = try node.operation.pullback(rule)
        let masking = masks[id] || node.operation.selects
        for (operand, contribution) in zip(node.inputs, contributions) {
            guard let contribution, dependsOnVariable[operand] else { continue }
            guard contribution.shape == builder.nodes[operand].shape else {
                throw NablaError.internalInconsistency("the pullback of \(node.operation.name) returned shape \(contribution.shape) for an operand of shape \(builder.nodes[operand].shape)")
            }
            adjoints[operand] = try adjoints[operand].map { try $0 + contribution } ?? contribution
            if masking { masks[operand] = true }
        }
    }
    return variables.map { v in
        (v.id <= last ? adjoints[v.id] : nil) ?? builder.filled(0, shape: v.shape)
    }
}

extension Graph {
    /// This graph with, for each named input in `variables`, an extra output holding the
    /// gradient of the scalar output `output`, named `d<output>/d<variable>`.
    ///
    /// The forward outputs stay first and unchanged; the forward part is shared with the
    /// backward part. The result is an ordinary graph, so it can be differentiated again.
    public func appendingGradients(of output: String, wrt variables: [String]) throws -> Graph {
        let (builder, tensors) = GraphBuilder.replaying(self)
        guard let port = outputs.first(where: { $0.name == output }) else {
            throw NablaError.unknownName(kind: "output", name: output, known: outputs.map(\.name))
        }
        var wrt: [Tensor] = []
        for name in variables {
            guard let input = inputs.first(where: { $0.name == name }) else {
                throw NablaError.unknownName(kind: "input", name: name, known: inputs.map(\.name))
            }
            wrt.append(tensors[input.node])
        }
        let grads = try gradient(of: tensors[port.node], wrt: wrt)
        let named = outputs.map { ($0.name, tensors[$0.node]) } + zip(variables, grads).map { ("d\(output)/d\($0.0)", $0.1) }
        return try builder.graph(outputs: named)
    }
}
