/// Matrix product of a matrix or vector with a matrix or vector:
/// `[m, k] @ [k, n] -> [m, n]`, `[m, k] @ [k] -> [m]`, `[k] @ [k, n] -> [n]`, `[k] @ [k] -> []`.
public struct MatMul: Operation {
    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init() {}

    public var name: String { "matmul" }

    /// Rows of the left operand give rows of the result; a product over the rows (Xᵀy) is a
    /// partial sum on each process; a product is linear in each factor, so a partial sum times
    /// a replicated matrix stays a partial sum.
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule {
        let a = split.shapes[0], b = split.shapes[1]
        switch (split.placements[0], split.placements[1]) {
        case (.partial, .replicated), (.replicated, .partial):
            return .partial(local: self)
        case (.partial, .partial), (.rows, .partial):
            return .reduceFirst([1])
        case (.partial, .rows):
            return .reduceFirst([0])
        case (.rows(let axis), .replicated):
            return axis == a.rank - 1 ? .sliceFirst([(1, 0)]) : .rows(axis: 0, local: self)
        case (.replicated, .rows(let axis)):
            return axis == 0 ? .sliceFirst([(0, a.rank - 1)]) : .rows(axis: a.rank == 2 ? 1 : 0, local: self)
        case (.rows(let x), .rows(let y)):
            if x == a.rank - 1 && y == 0 { return .partial(local: self) }
            return .refused("matmul of \(a) by \(b) pairs each row of one operand with every row of the other")
        case (.replicated, .replicated):
            return .refused("no operand is split")  // never asked: replicated operands need no rule
        }
    }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 2, "matmul")
        let a = inputs[0], b = inputs[1]
        guard (1...2).contains(a.rank), (1...2).contains(b.rank) else {
            throw NablaError.shapeMismatch(op: "matmul", shapes: [a, b], reason: "operands must be vectors or matrices")
        }
        let inner = a.dims.last!, other = b[0]
        guard inner == other else {
            throw NablaError.shapeMismatch(op: "matmul", shapes: [a, b], reason: "inner dimensions differ (\(inner) and \(other))")
        }
        return Shape((a.rank == 2 ? [a[0]] : []) + (b.rank == 2 ? [b[1]] : []))
    }

    /// (m, k, n) of the product seen as [m, k] @ [k, n].
    func sizes(_ a: Shape, _ b: Shape) -> (m: Int, k: Int, n: Int) {
        (a.rank == 2 ? a[0] : 1, a.dims.last!, b.rank == 2 ? b[1] : 1)
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let (m, k, n) = sizes(inputs[0].shape, inputs[1].shape)
        let a = inputs[0].scalars, b = inputs[1].scalars
        var c = [Double](repeating: 0, count: m * n)
        // The loop order of the emitted C and of the runtime, so results agree bit for bit.
        for i in 0..<m {
            for p in 0..<k {
                let ap = a[i * k + p]
                for j in 0..<n { c[i * n + j] += ap * b[p * n + j] }
            }
        }
        return TensorData(unchecked: shape, c)
    }

    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        let a = rule.inputs[0], b = rule.inputs[1], g = rule.cotangent
        var ga: Tensor?, gb: Tensor?
        switch (a.shape.rank, b.shape.rank) {
        case (2, 2):
            if rule.needsGradient[0] { ga = try g.matmul(b.transposed) }
            if rule.needsGradient[1] { gb = try a.transposed.matmul(g) }
        case (2, 1):  // y = A x: dA = g x^T, dx = A^T g
            if rule.needsGradient[0] { ga = try outer(g, b) }
            if rule.needsGradient[1] { gb = try g.matmul(a) }
        case (1, 2):  // y = x B: dx = B g, dB = x g^T
            if rule.needsGradient[0] { ga = try b.matmul(g) }
            if rule.needsGradient[1] { gb = try outer(a, g) }
        default:  // s = a . b
            if rule.needsGradient[0] { ga = try g * b }
            if rule.needsGradient[1] { gb = try g * a }
        }
        return [ga, gb]
    }

    /// d(A B) = dA B + A dB.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        let a = rule.inputs[0], b = rule.inputs[1]
        var total: Tensor?
        if let ta = rule.tangents[0] { total = try ta.matmul(b) }
        if let tb = rule.tangents[1] {
            let term = try a.matmul(tb)
            total = try total.map { try $0 + term } ?? term
        }
        return total
    }

    /// Products at least this many multiply-adds go to the optimised runtime when allowed.
    static let runtimeThreshold = 512

    /// `nabla_matmul` of Nabla's runtime (runtime/nabla_runtime.c): the same sums in the same
    /// order, blocked and vectorised.
    static let runtime = CFunction("nabla_matmul", returns: .void, [
        .init(.long, "m"), .init(.long, "k"), .init(.long, "n"),
        .init(.constDoublePointer, "A"), .init(.constDoublePointer, "B"), .init(.doublePointer, "C"),
    ], origin: .runtime(standalone: nil))

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let a = site.inputs[0], b = site.inputs[1], c = site.output
        let (m, k, n) = sizes(Shape(a.extents), Shape(b.extents))
        if site.useRuntime && m * k * n >= MatMul.runtimeThreshold {
            return [.call(MatMul.runtime, [.integer(m), .integer(k), .integer(n), a.address(), b.address(), c.address()])]
        }
        typealias Term = LoopIR.Index.Term
        let aip = LoopIR.Index(0, [Term(.flat, k), Term(.inner, 1)])
        if n == 1 {
            // c[i] = 0.0 + a[i][0] * b[0] + ... in order of p, in a local.
            let acc = LoopIR.Variable.temporary(0)
            let inner = LoopIR.Loop(.inner, to: k, body: [.accumulate(.variable(acc), a.element(aip) * b.element(LoopIR.Index(0, [Term(.inner, 1)])))])
            return [.loop(LoopIR.Loop(.flat, to: m, body: [
                .declare(acc, .literal(0), mutable: true), .loop(inner), .assign(c.place(LoopIR.Index(0, [Term(.flat, 1)])), .variable(acc)),
            ]))]
        }
        let cij = LoopIR.Index(0, [Term(.flat, n), Term(.column, 1)])
        let ap = LoopIR.Variable.temporary(0)
        let zero = LoopIR.Loop(.column, to: n, body: [.assign(c.place(cij), .literal(0))])
        let update = LoopIR.Loop(.column, to: n, body: [
            .accumulate(c.place(cij), .variable(ap) * b.element(LoopIR.Index(0, [Term(.inner, n), Term(.column, 1)]))),
        ])
        let products = LoopIR.Loop(.inner, to: k, body: [.constant(ap, a.element(aip)), .loop(update)])
        return [.loop(LoopIR.Loop(.flat, to: m, body: [.loop(zero), .loop(products)]))]
    }
}
