// Graph nodes to terms: each operation as the matrix notation it stands for, built node by
// node in topological order (no recursion over the graph), naming the terms that are too deep,
// too large or too often used to be written inline, and the file's named bindings.

/// A named term a formula refers to: a binding of the file, an intermediate, or a loop.
struct Definition: Hashable, Sendable {
    enum Origin: Hashable, Sendable { case binding, intermediate }
    let name: String
    let term: Term
    let origin: Origin
}

/// Builds the terms of a graph's nodes on demand.
struct GraphTerms {
    /// Terms deeper than this are named, so every recursion over terms stays shallow.
    static let maximumDepth = 10
    /// Terms larger than this are named.
    static let maximumSize = 40
    /// A binding used once is written by name when its term is at least this large.
    static let bindingSize = 6
    /// A term used more than once is named when it is at least this large.
    static let sharedSize = 10

    let nodes: [Graph.Node]
    /// Names of nodes: the inputs, and the bindings of the file.
    let inputNames: [Int: String]
    let bindingNames: [Int: String]
    private(set) var terms: [Int: Term] = [:]
    private(set) var definitions: [Definition] = []
    private(set) var loopCount = 0
    private var taken: Set<String>
    private var intermediateCount = 0

    init(nodes: [Graph.Node], inputNames: [Int: String], bindingNames: [Int: String]) {
        self.nodes = nodes
        self.inputNames = inputNames
        self.bindingNames = bindingNames
        taken = Set(inputNames.values).union(bindingNames.values)
    }

    /// Each input port's name by its node, as `inputNames` takes them.
    static func names(of ports: [Graph.Port]) -> [Int: String] {
        Dictionary(ports.map { ($0.node, $0.name) }, uniquingKeysWith: { a, _ in a })
    }

    /// Reserves a name (a direction's, say) so that no intermediate takes it.
    mutating func reserve(_ name: String) { taken.insert(name) }

    /// A fresh name `base` + number.
    mutating func freshName(_ base: String) -> String {
        while true {
            intermediateCount += 1
            let name = "\(base)\(intermediateCount)"
            if taken.insert(name).inserted { return name }
        }
    }

    /// The term of node `id` (built with every node it needs).
    mutating func term(of id: Int) throws -> Term {
        if let known = terms[id] { return known }
        let (order, uses) = liveNodes(from: id)
        for node in order where terms[node] == nil {
            let built = try convert(node)
            guard built.shape == nodes[node].shape else {
                throw NablaError.internalInconsistency("the formula of node \(node) (\(nodes[node].operation.name)) has shape \(built.shape), the node \(nodes[node].shape)")
            }
            terms[node] = name(built, node: node, uses: uses[node] ?? 0)
        }
        return terms[id]!
    }

    /// The nodes `id` needs that have no term yet, in topological order, and how often each is
    /// used by the others.
    private func liveNodes(from id: Int) -> ([Int], [Int: Int]) {
        var seen: Set<Int> = [id]
        var stack = [id]
        var uses: [Int: Int] = [:]
        while let n = stack.popLast() {
            guard terms[n] == nil else { continue }
            for operand in formulaOperands(n) {
                uses[operand, default: 0] += 1
                if seen.insert(operand).inserted { stack.append(operand) }
            }
        }
        return (seen.sorted(), uses)
    }

    /// The operands a node's formula reads: the LU factors that linear-algebra operations take
    /// as an extra operand are an implementation detail, not part of the formula.
    private func formulaOperands(_ id: Int) -> [Int] {
        let node = nodes[id]
        switch node.operation {
        case is Determinant, is Adjugate, is LogAbsDeterminant, is MatrixInverse, is InverseTransposed:
            return [node.inputs[0]]
        case is Solve: return [node.inputs[0], node.inputs[1]]
        default: return node.inputs
        }
    }

    /// The term itself, or a symbol standing for it when it is a binding or too large.
    private mutating func name(_ term: Term, node: Int, uses: Int) -> Term {
        if let input = inputNames[node] { return Algebra.symbol(input, term.shape) }
        // A binding is written by name where that is shorter: when it is used more than once or
        // is more than a product of three (never when it is another name).
        if let binding = bindingNames[node], term.size > 1, uses > 1 || term.size >= Self.bindingSize {
            definitions.append(Definition(name: binding, term: term, origin: .binding))
            return Algebra.symbol(binding, term.shape, row: term.row)
        }
        let isLoop: Bool = { if case .loop = term.kind { return true } else { return false } }()
        guard isLoop || term.depth > Self.maximumDepth || term.size > Self.maximumSize || (uses > 1 && term.size >= Self.sharedSize) else {
            return term
        }
        let name = freshName(isLoop ? "loop" : "t")
        definitions.append(Definition(name: name, term: term, origin: .intermediate))
        return Algebra.symbol(name, term.shape, row: term.row)
    }

    // MARK: Operations

    private mutating func convert(_ id: Int) throws -> Term {
        let node = nodes[id]
        if let input = inputNames[id] { return Algebra.symbol(input, node.shape) }
        let xs = formulaOperands(id).map { terms[$0]! }
        let shape = node.shape
        let op = node.operation
        if let term = elementwise(op, xs, shape) { return term }
        switch op {
        case let c as Constant: return Algebra.constant(c.value)
        case is MatMul: return Algebra.matmul(xs[0], xs[1])
        case let s as Sum: return Algebra.sum(xs[0], axes: s.axes, shape)
        case let t as Transpose:
            if t.permutation == Array(0..<t.permutation.count) { return xs[0] }
            if t.permutation == [1, 0] { return Algebra.transposed(xs[0]) }
            return Term(.permute(xs[0], t.permutation), shape)
        case let r as Reshape: return Algebra.reshape(xs[0], r.shape)
        case let b as BroadcastTo: return Algebra.broadcast(xs[0], b.shape)
        case let s as Slice: return slice(xs[0], s, shape)
        case let p as PadSlice: return Algebra.reshape(Term(.pad(xs[0], p.slice), p.shape), p.shape)
        case let c as Concat: return Term(.concat(xs, axis: c.axis), shape)
        case is Determinant: return Algebra.call(.det, xs, shape)
        case is LogAbsDeterminant: return Algebra.call(.logAbsDet, xs, shape)
        case is Adjugate: return Algebra.call(.adjugate, xs, shape)
        case is MatrixInverse: return Term(.inverse(xs[0]), shape)
        case is InverseTransposed: return Algebra.transposed(Term(.inverse(xs[0]), shape))
        case let s as Solve:
            let inverse = Term(.inverse(xs[0]), xs[0].shape)
            return Algebra.product([s.transposed ? Algebra.transposed(inverse) : inverse, Algebra.oriented(xs[1], row: false)])
        case is CholeskyFactor: return Algebra.call(.cholesky, xs, shape)
        case is CholeskyAdjoint:
            // Phi(S + S^T), S = L^-T Phi(L^T B) L^-1, Phi the lower triangle, diagonal halved.
            let phi = FormulaFunction.triangle(lower: true, diagonal: 0.5)
            let inverse = Term(.inverse(xs[0]), shape)
            let inner = Algebra.call(phi, [Algebra.matmul(Algebra.transposed(xs[0]), xs[1])], shape)
            let s = Algebra.product([Algebra.transposed(inverse), inner, inverse])
            return Algebra.call(phi, [Algebra.add([s, Algebra.transposed(s)], shape)], shape)
        case let s as TriangularSolve:
            // Only the triangle is read (a Cholesky factor is triangular already).
            let isFactor: Bool = { if case .call(.cholesky, _) = xs[0].kind { return true } else { return false } }()
            let triangle = isFactor && s.lower ? xs[0] : Algebra.call(.triangle(lower: s.lower, diagonal: 1), [xs[0]], xs[0].shape)
            let inverse = Term(.inverse(triangle), xs[0].shape)
            return Algebra.product([s.transpose ? Algebra.transposed(inverse) : inverse, Algebra.oriented(xs[1], row: false)])
        case let t as Triangle: return Algebra.call(.triangle(lower: t.lower, diagonal: t.diagonal), xs, shape)
        case let e as Extremum: return Algebra.call(.extremum(maximum: e.kind == .maximum, axes: e.axes, all: e.axes.count == xs[0].rank), xs, shape)
        case let s as Softmax: return Algebra.call(.softmax(axes: s.axes), xs, shape)
        case let s as LogSoftmax: return Algebra.call(.logSoftmax(axes: s.axes), xs, shape)
        case let l as LogSumExp: return Algebra.call(.logsumexp(axes: l.axes, all: l.axes.count == xs[0].rank), xs, shape)
        case let o as OneHot: return Algebra.call(.oneHot(count: o.count), xs, shape)
        case let s as Scan:
            return try loop(s, xs, shape)
        default:
            throw NablaError.invalidArgument(op: op.name, reason: "has no formula")
        }
    }

    /// The elementwise operations, or nil for the others.
    private func elementwise(_ op: any Operation, _ xs: [Term], _ shape: Shape) -> Term? {
        switch op {
        case is Add: return Algebra.add([Algebra.broadcast(xs[0], shape), Algebra.broadcast(xs[1], shape)], shape)
        case is Subtract: return Algebra.subtract(Algebra.broadcast(xs[0], shape), Algebra.broadcast(xs[1], shape), shape)
        case is Multiply: return Algebra.hadamard(xs[0], xs[1], shape)
        case is Divide: return Algebra.quotient(xs[0], xs[1], shape)
        case is Power: return Algebra.power(xs[0], xs[1], shape)
        case is Negate: return Algebra.negate(xs[0])
        case let p as PowConstant: return Algebra.power(xs[0], Algebra.number(p.exponent), shape)
        case let c as Compare: return Algebra.elementwise(.compare(c.relation.rawValue), xs, shape)
        case is LogicalAnd: return Algebra.elementwise(.and, xs, shape)
        case is LogicalOr: return Algebra.elementwise(.or, xs, shape)
        case is Maximum: return Algebra.elementwise(.maximum, xs, shape)
        case is Minimum: return Algebra.elementwise(.minimum, xs, shape)
        case is Select: return Algebra.elementwise(.select, xs, shape)
        default: break
        }
        guard let f = unaryFunction(op) else { return nil }
        return Algebra.elementwise(.unary(f), xs, shape)
    }

    private func unaryFunction(_ op: any Operation) -> UnaryFunction? {
        switch op {
        case is Sqrt: return .sqrt
        case is Exp: return .exp
        case is Log: return .log
        case is Sin: return .sin
        case is Cos: return .cos
        case is Tan: return .tan
        case is Tanh: return .tanh
        case is Sigmoid: return .sigmoid
        case is Relu: return .relu
        case is Abs: return .abs
        case is Softplus: return .softplus
        case is Step: return .step
        case is Sign: return .sign
        case is LogicalNot: return .not
        default: return nil
        }
    }

    /// A loop, with the terms of its body over parameters named after their roles.
    private mutating func loop(_ s: Scan, _ xs: [Term], _ shape: Shape) throws -> Term {
        loopCount += 1
        let index = loopCount
        let b = s.body
        let parameters = (0..<b.carryCount).map { "c\($0)" } + (0..<b.sequenceCount).map { "r\($0)" } + ["k"]
            + (0..<b.captureCount).map { "w\($0)" }
        let names = Dictionary(zip(b.graph.inputs.map(\.node), parameters), uniquingKeysWith: { a, _ in a })
        var body = GraphTerms(nodes: b.graph.nodes, inputNames: names, bindingNames: [:])
        body.loopCount = loopCount * 100
        var results: [Term] = []
        for port in b.graph.outputs { results.append(try body.term(of: port.node)) }
        return Term(.loop(LoopTerm(scan: s, operands: xs, index: index, parameters: parameters,
                                   bodyDefinitions: body.definitions, bodyResults: results)), shape)
    }

    /// A slice, with the diagonal of a flattened square matrix read as diag(X).
    private func slice(_ t: Term, _ s: Slice, _ shape: Shape) -> Term {
        if case let .reshape(m) = t.kind, m.rank == 2, m.shape[0] == m.shape[1], t.rank == 1,
           s.starts == [0], s.steps == [m.shape[0] + 1] || m.shape[0] == 1, shape == [m.shape[0]] {
            return Term(.call(.diagonal, [m]), shape)
        }
        if s.starts == Array(repeating: 0, count: t.rank), s.ends == t.shape.dims, s.steps.allSatisfy({ $0 == 1 }) { return t }
        return Term(.slice(t, s), shape, row: t.row)
    }
}
