/// Graph simplification: constant folding, algebraic rewrites from a table of rules, and (by
/// rebuilding through a `GraphBuilder`) common-subexpression and dead-code elimination.
///
/// By default every rewrite is IEEE-safe: it never changes a result, NaN, infinity and the sign
/// of zero included. Rules that can (x * 0 -> 0, x + 0 -> x, x - x -> 0) run only with
/// `fastMath`.

/// One algebraic rewrite: a pattern on an operation and its (already simplified) operands,
/// and the replacement it builds.
public struct RewriteRule: Sendable {
    /// Short name, for statistics and tests.
    public let name: String
    /// The operation types the rule can match (it is tried on no others).
    public let operations: [any Operation.Type]
    /// When set, the rule can only match when some operand's operation has one of these roles
    /// (a constant, say), and is not tried otherwise: most nodes of large graphs have none.
    public let operandRoles: Set<OperationRole>?
    /// True when the rule may change a result for NaN, infinities or signed zeros.
    public let fastMathOnly: Bool
    /// Returns the replacement, or nil when the pattern does not match. The replacement must
    /// have the shape of `op` applied to `operands`.
    public let rewrite: @Sendable (_ op: any Operation, _ operands: [Tensor], _ shape: Shape) throws -> Tensor?

    /// A rule; each argument sets the property of the same name.
    public init(name: String, operations: [any Operation.Type], operandRoles: Set<OperationRole>? = nil, fastMathOnly: Bool,
                rewrite: @escaping @Sendable (_ op: any Operation, _ operands: [Tensor], _ shape: Shape) throws -> Tensor?) {
        self.name = name
        self.operations = operations
        self.operandRoles = operandRoles
        self.fastMathOnly = fastMathOnly
        self.rewrite = rewrite
    }
}

/// The rules that can match each operation type, in table order: a short list of the few types
/// any rule names, searched by identity (cheaper per node than hashing into a dictionary).
private struct RulesByOperation {
    /// A rule with its operand roles as a bit mask (`OperationRole.bit`), or nil for any.
    struct Entry {
        let rule: RewriteRule
        let operandRoles: UInt8?
    }

    private var entries: [(type: ObjectIdentifier, rules: [Entry])] = []

    init(_ rules: [RewriteRule]) {
        for rule in rules {
            let entry = Entry(rule: rule, operandRoles: rule.operandRoles.map { $0.reduce(0) { $0 | $1.bit } })
            for type in rule.operations {
                let key = ObjectIdentifier(type)
                if let k = entries.firstIndex(where: { $0.type == key }) { entries[k].rules.append(entry) } else { entries.append((key, [entry])) }
            }
        }
    }

    /// The rules for operations of `type`, in table order.
    subscript(type: any Operation.Type) -> [Entry] {
        let key = ObjectIdentifier(type)
        for entry in entries where entry.type == key { return entry.rules }
        return []
    }
}

extension OperationRole {
    /// A bit of its own, for sets of roles tested once per node.
    var bit: UInt8 {
        switch self {
        case .opaque: 1
        case .input: 2
        case .constant: 4
        case .elementwise: 8
        case .view: 16
        case .sum: 32
        case .padSlice: 64
        }
    }
}

/// Options for `simplify`.
public struct SimplifyOptions: Sendable {
    /// Allow rewrites that can change results for NaN, infinities or signed zeros.
    public var fastMath = false
    /// Constants are folded only when the result has at most this many elements, so folding
    /// never writes huge literals into the C.
    public var foldLimit = 4096

    /// Options; each argument sets the property of the same name.
    public init(fastMath: Bool = false, foldLimit: Int = 4096) {
        self.fastMath = fastMath
        self.foldLimit = foldLimit
    }
}

/// The value of a constant whose elements are all equal (a scalar, or a filled tensor),
/// looking through broadcasts and reshapes.
func uniformValue(_ t: Tensor) -> Double? { t.builder.uniformValues[t.id] }

/// The operand of a node (its `index`-th input) as a tensor.
func operand(_ t: Tensor, _ index: Int) -> Tensor {
    Tensor(builder: t.builder, id: t.builder.nodes[t.id].inputs[index])
}

/// `t` broadcast to `shape` if it is not already that shape.
private func shaped(_ t: Tensor, _ shape: Shape) throws -> Tensor {
    t.shape == shape ? t : try t.broadcast(to: shape)
}

/// The rewrite rules, applied in order; the first that matches wins, and its result is
/// simplified again as it is built.
public let rewriteRules: [RewriteRule] = [
    RewriteRule(name: "x * 1 -> x", operations: [Multiply.self], operandRoles: [.constant, .view], fastMathOnly: false) { op, xs, shape in
        guard op is Multiply else { return nil }
        if uniformValue(xs[1]) == 1 { return try shaped(xs[0], shape) }
        if uniformValue(xs[0]) == 1 { return try shaped(xs[1], shape) }
        return nil
    },
    RewriteRule(name: "x / 1 -> x", operations: [Divide.self], operandRoles: [.constant, .view], fastMathOnly: false) { op, xs, shape in
        guard op is Divide, uniformValue(xs[1]) == 1 else { return nil }
        return try shaped(xs[0], shape)
    },
    RewriteRule(name: "x * -1 -> -x", operations: [Multiply.self], operandRoles: [.constant, .view], fastMathOnly: false) { op, xs, shape in
        guard op is Multiply else { return nil }
        if uniformValue(xs[1]) == -1 { return -(try shaped(xs[0], shape)) }
        if uniformValue(xs[0]) == -1 { return -(try shaped(xs[1], shape)) }
        return nil
    },
    // x + (-0) is x for every x, -0 and NaN included; x + (+0) is not (-0 + 0 = +0).
    RewriteRule(name: "x + -0 -> x", operations: [Add.self], operandRoles: [.constant, .view], fastMathOnly: false) { op, xs, shape in
        guard op is Add else { return nil }
        if let c = uniformValue(xs[1]), c == 0, c.sign == .minus { return try shaped(xs[0], shape) }
        if let c = uniformValue(xs[0]), c == 0, c.sign == .minus { return try shaped(xs[1], shape) }
        return nil
    },
    RewriteRule(name: "x - +0 -> x", operations: [Subtract.self], operandRoles: [.constant, .view], fastMathOnly: false) { op, xs, shape in
        guard op is Subtract, let c = uniformValue(xs[1]), c == 0, c.sign == .plus else { return nil }
        return try shaped(xs[0], shape)
    },
    // Scaling by 2^k (k >= 0) is exact, so c * (2^k * x) rounds once, like (c * 2^k) * x; with
    // |c| >= 1 both overflow together. (Not for 2^-k: halving a subnormal rounds.)
    RewriteRule(name: "c * (2^k * x) -> (c * 2^k) * x", operations: [Multiply.self], operandRoles: [.constant, .view], fastMathOnly: false) { op, xs, shape in
        guard op is Multiply else { return nil }
        for (outer, inner) in [(0, 1), (1, 0)] {
            guard let c = uniformValue(xs[outer]), abs(c) >= 1, xs[inner].operation is Multiply else { continue }
            let product = xs[inner]
            for (scale, x) in [(0, 1), (1, 0)] {
                guard let p = uniformValue(operand(product, scale)), abs(p) >= 1, p.significand == 1,
                      (c * p).isFinite, operand(product, x).shape == product.shape else { continue }
                return try shaped(xs[0].builder.constant(c * p) * operand(product, x), shape)
            }
        }
        return nil
    },
    RewriteRule(name: "0 - x -> -x", operations: [Subtract.self], operandRoles: [.constant, .view], fastMathOnly: true) { op, xs, shape in
        guard op is Subtract, let c = uniformValue(xs[0]), c == 0 else { return nil }
        return -(try shaped(xs[1], shape))
    },
    RewriteRule(name: "-(-x) -> x", operations: [Negate.self], operandRoles: [.elementwise], fastMathOnly: false) { op, xs, _ in
        guard op is Negate, xs[0].operation is Negate else { return nil }
        return operand(xs[0], 0)
    },
    RewriteRule(name: "x + 0 -> x", operations: [Add.self], operandRoles: [.constant, .view], fastMathOnly: true) { op, xs, shape in
        guard op is Add else { return nil }
        if uniformValue(xs[1]) == 0 { return try shaped(xs[0], shape) }
        if uniformValue(xs[0]) == 0 { return try shaped(xs[1], shape) }
        return nil
    },
    RewriteRule(name: "x * 0 -> 0", operations: [Multiply.self], operandRoles: [.constant, .view], fastMathOnly: true) { op, xs, shape in
        guard op is Multiply, uniformValue(xs[0]) == 0 || uniformValue(xs[1]) == 0 else { return nil }
        return xs[0].builder.filled(0, shape: shape)
    },
    RewriteRule(name: "x - x -> 0", operations: [Subtract.self], fastMathOnly: true) { op, xs, shape in
        guard op is Subtract, xs[0].id == xs[1].id else { return nil }
        return xs[0].builder.filled(0, shape: shape)
    },
    // Elementwise operations broadcast their operands themselves, so an explicit broadcast
    // feeding one is redundant when the result's shape does not depend on it.
    RewriteRule(name: "f(broadcast(a), b) -> f(a, b)", operations: [Add.self, Subtract.self, Multiply.self, Divide.self, Power.self], operandRoles: [.view], fastMathOnly: false) { op, xs, shape in
        guard op.role == .elementwise, xs.count == 2 else { return nil }
        for k in 0..<2 where xs[k].operation is BroadcastTo {
            let source = operand(xs[k], 0)
            var replaced = xs
            replaced[k] = source
            if Shape.broadcast(replaced[0].shape, replaced[1].shape) == shape {
                return try xs[0].builder.apply(op, replaced)
            }
        }
        return nil
    },
    // A selection by a constant condition copies one branch, so taking it is exact.
    RewriteRule(name: "where(constant c, a, b) -> a or b", operations: [Select.self], operandRoles: [.constant, .view], fastMathOnly: false) { op, xs, shape in
        guard op is Select, let c = uniformValue(xs[0]) else { return nil }
        return try shaped(c != 0 ? xs[1] : xs[2], shape)
    },
    RewriteRule(name: "where(c, a, a) -> a", operations: [Select.self], fastMathOnly: false) { op, xs, shape in
        guard op is Select, xs[1].id == xs[2].id else { return nil }
        return try shaped(xs[1], shape)
    },
    RewriteRule(name: "reshape(x) to its own shape -> x", operations: [Reshape.self, BroadcastTo.self], fastMathOnly: false) { op, xs, shape in
        guard op is Reshape || op is BroadcastTo, xs[0].shape == shape else { return nil }
        return xs[0]
    },
    RewriteRule(name: "reshape(reshape(x)) -> reshape(x)", operations: [Reshape.self], fastMathOnly: false) { op, xs, shape in
        guard op is Reshape, xs[0].operation is Reshape else { return nil }
        return try operand(xs[0], 0).reshaped(shape)
    },
    RewriteRule(name: "broadcast(broadcast(x)) -> broadcast(x)", operations: [BroadcastTo.self], fastMathOnly: false) { op, xs, shape in
        guard op is BroadcastTo, xs[0].operation is BroadcastTo else { return nil }
        return try operand(xs[0], 0).broadcast(to: shape)
    },
    RewriteRule(name: "broadcast(reshape(scalar)) -> broadcast(scalar)", operations: [BroadcastTo.self], fastMathOnly: false) { op, xs, shape in
        guard op is BroadcastTo, xs[0].operation is Reshape, xs[0].shape.count == 1 else { return nil }
        return try operand(xs[0], 0).broadcast(to: shape)
    },
    RewriteRule(name: "transpose(transpose(x)) -> transpose(x)", operations: [Transpose.self], fastMathOnly: false) { op, xs, _ in
        guard let outer = op as? Transpose, let inner = xs[0].operation as? Transpose else { return nil }
        let composed = outer.permutation.map { inner.permutation[$0] }
        let source = operand(xs[0], 0)
        return composed == Array(0..<composed.count) ? source : try source.transposed(composed)
    },
    RewriteRule(name: "identity transpose -> x", operations: [Transpose.self], fastMathOnly: false) { op, xs, _ in
        guard let t = op as? Transpose, t.permutation == Array(0..<t.permutation.count) else { return nil }
        return xs[0]
    },
]

/// Statistics of one `simplify` run.
public struct SimplifyStatistics: Sendable {
    /// Nodes of the graph passed in.
    public var nodesBefore = 0
    /// Nodes of the simplified graph.
    public var nodesAfter = 0
    /// Nodes replaced by a constant computed from their constant operands.
    public var foldedConstants = 0
    /// How often each rule fired, by name.
    public var rewrites: [String: Int] = [:]
    /// True when the result is the graph passed in (without nodes no output needs): no node
    /// changed, and none was shared with another.
    var keptTheGraph = false

    /// Statistics with these node counts, nothing folded and no rule fired.
    public init(nodesBefore: Int = 0, nodesAfter: Int = 0) {
        self.nodesBefore = nodesBefore
        self.nodesAfter = nodesAfter
    }
}

/// The simplified graph: same inputs (in order) and outputs, fewer nodes.
public func simplify(_ graph: Graph, options: SimplifyOptions = SimplifyOptions()) throws -> Graph {
    try simplifyWithStatistics(graph, options: options).graph
}

/// `simplify`, also reporting what it did.
public func simplifyWithStatistics(_ graph: Graph, options: SimplifyOptions = SimplifyOptions()) throws -> (graph: Graph, statistics: SimplifyStatistics) {
    try simplifyWithStatistics(graph, options: options, onFirstChange: {})
}

/// `simplifyWithStatistics`, calling `onFirstChange` as soon as it is known that the result
/// will not be the graph passed in (`SimplifyStatistics.keptTheGraph` false).
func simplifyWithStatistics(
    _ graph: Graph, options: SimplifyOptions, onFirstChange: () -> Void
) throws -> (graph: Graph, statistics: SimplifyStatistics) {
    var statistics = SimplifyStatistics()
    statistics.nodesBefore = graph.nodes.count
    let recorded = scansRecordedElsewhere(graph)
    // While no node has changed, the builder is a view of the graph itself (nothing is copied
    // or hashed): most nodes of large graphs stay as they are, and often all do. That needs
    // a graph without nodes to share (as builders make them), and its inputs first, where a
    // new builder would put them.
    let inputsFirst = graph.inputs.enumerated().allSatisfy { $0.element.node == $0.offset }
    let builder: GraphBuilder
    var mapped = [Int](repeating: -1, count: graph.nodes.count)
    if recorded.isEmpty && inputsFirst && graph.isHashConsed {
        builder = GraphBuilder.viewing(graph)
        for port in graph.inputs { mapped[port.node] = port.node }
    } else {
        onFirstChange()
        builder = GraphBuilder(capacity: graph.nodes.count)
        for port in graph.inputs {
            mapped[port.node] = try builder.input(port.name, shape: graph.nodes[port.node].shape).id
        }
    }
    let rules = RulesByOperation(rewriteRules.filter { options.fastMath || !$0.fastMathOnly })
    for (id, node) in graph.nodes.enumerated() where mapped[id] < 0 {
        let viewing = builder.isViewing
        if viewing { builder.extendView(to: id) }
        mapped[id] = try simplifiedNode(id, node, mapped, builder, rules, recorded, options, &statistics)
        guard viewing, mapped[id] != id || !builder.isViewing else { continue }
        builder.endView()
        onFirstChange()
    }
    if builder.isViewing {
        // Nothing changed: the graph as it was, without the nodes no output needs.
        let result = graph.pruned()
        statistics.nodesAfter = result.nodes.count
        statistics.keptTheGraph = true
        return (result, statistics)
    }
    let result = try builder.graph(outputs: graph.outputs.map { ($0.name, Tensor(builder: builder, id: mapped[$0.node])) })
    statistics.nodesAfter = result.nodes.count
    return (result, statistics)
}

/// The id in `builder` of node `id` of the graph being simplified (`node`), whose operands are
/// at `mapped`: a folded constant, what a rule rewrote it to, or the node as it was (an
/// equal node of the builder, or itself). While `builder` views the graph, a node that stays
/// as it is keeps its own id.
private func simplifiedNode(
    _ id: Int, _ node: Graph.Node, _ mapped: [Int], _ builder: GraphBuilder, _ rules: RulesByOperation,
    _ recorded: Set<Int>, _ options: SimplifyOptions, _ statistics: inout SimplifyStatistics
) throws -> Int {
    if node.inputs.isEmpty, let constant = node.operation as? Constant {
        return builder.isViewing ? id : builder.constant(constant.value).id
    }
    // The node's own operand list where no operand moved (no copy), else a renumbered one.
    var inputs = node.inputs
    for k in inputs.indices where mapped[inputs[k]] != inputs[k] { inputs[k] = mapped[inputs[k]] }
    if !recorded.isEmpty, recorded.contains(id), let scan = node.operation as? Scan {
        // The same loop also runs keeping its carries (for a reverse pass): one loop does
        // both, its result the first part of the other's.
        let keeping = try builder.apply(Scan(body: scan.body, steps: scan.steps, reverse: scan.reverse, keepsCarries: true), inputs.map { Tensor(builder: builder, id: $0) })
        statistics.rewrites["scan -> part of the same scan keeping its carries", default: 0] += 1
        return try keeping.slice([.range(start: 0, end: node.shape.count, step: 1)]).id
    }
    // Most nodes have no rule that could apply: found without building arrays (and without
    // holding on to the builder's roles, which it appends to below).
    var operandRoles: UInt8 = 0
    for input in inputs { operandRoles |= builder.roles[input].bit }
    var candidates: [RewriteRule] = []
    for entry in rules[type(of: node.operation)] where entry.operandRoles.map({ $0 & operandRoles != 0 }) ?? true {
        candidates.append(entry.rule)
    }
    let foldable = !inputs.isEmpty && node.operation.foldsConstants && operandRoles == OperationRole.constant.bit
    if !candidates.isEmpty || foldable {
        let operands = inputs.map { Tensor(builder: builder, id: $0) }
        if let replacement = try simplified(node.operation, operands, node.shape, builder, candidates, options, &statistics) {
            return replacement.id
        }
    }
    // Nothing changed this node: it is looked up, or appended as it is (its operands' shapes,
    // and so its own, are unchanged). A rule that built nodes and then did not match has
    // ended the view.
    return builder.isViewing ? id : builder.reapply(node, inputs: inputs)
}

/// Scans that do not keep their carries while an equal scan of the same operands does (reverse
/// mode made it): the first's result is the start of the second's.
private func scansRecordedElsewhere(_ graph: Graph) -> Set<Int> {
    struct Key: Hashable {
        let body: LoopBody
        let steps: Int
        let reverse: Bool
        let operands: [Int]
    }
    var keeping = Set<Key>()
    var candidates: [(Int, Key)] = []
    for (id, node) in graph.nodes.enumerated() {
        // The type is compared first: a cast of every node of a large graph costs more.
        guard type(of: node.operation) == Scan.self, let scan = node.operation as? Scan else { continue }
        let key = Key(body: scan.body, steps: scan.steps, reverse: scan.reverse, operands: node.inputs)
        if scan.keepsCarries { keeping.insert(key) } else { candidates.append((id, key)) }
    }
    return Set(candidates.filter { keeping.contains($0.1) }.map(\.0))
}

/// The node's replacement (a folded constant, or what a rule rewrote it to), or nil when it
/// stays as it is.
private func simplified(
    _ op: any Operation, _ operands: [Tensor], _ shape: Shape, _ builder: GraphBuilder, _ rules: [RewriteRule],
    _ options: SimplifyOptions, _ statistics: inout SimplifyStatistics
) throws -> Tensor? {
    // Constant folding: the interpreter's own arithmetic, so results are unchanged.
    // Operations that enlarge their operands (a broadcast, say) stay symbolic: a loop filling
    // memory beats a large literal array.
    let values = operands.allSatisfy({ builder.roles[$0.id] == .constant }) ? operands.compactMap { ($0.operation as? Constant)?.value } : []
    if values.count == operands.count, let value = op.folded(values, shape: shape, limit: options.foldLimit) {
        statistics.foldedConstants += 1
        return builder.constant(value)
    }
    for rule in rules {
        if let replacement = try rule.rewrite(op, operands, shape) {
            guard replacement.shape == shape else {
                throw NablaError.internalInconsistency("rewrite '\(rule.name)' changed a shape from \(shape) to \(replacement.shape)")
            }
            statistics.rewrites[rule.name, default: 0] += 1
            return replacement
        }
    }
    return nil
}
