/// Writes the C for fused groups (one loop each) and for stored views (one copy loop each).
final class FusedEmitter {
    let graph: Graph
    let fusion: FusionPlan
    let values: [CValue]
    let writer: CWriter
    /// Expressions of scalars that are not stored but written into their one reader.
    private var scalarExpressions: [Int: String] = [:]

    init(graph: Graph, fusion: FusionPlan, values: [CValue], writer: CWriter) {
        self.graph = graph
        self.fusion = fusion
        self.values = values
        self.writer = writer
    }

    /// A read or write of some storage inside a loop over the group's index space.
    private struct LoopAccess: Hashable {
        var node: Int  // whose storage (values[node])
        var offset: Int
        var strides: [Int]
        /// Written by the loop (never cached in a local).
        var isWrite = false
    }

    /// The loop over a group's index space computing every member.
    func emitGroup(_ groupIndex: Int) {
        let group = fusion.groups[groupIndex]
        let space = group.shape
        let nodes = graph.nodes
        var accesses: [LoopAccess] = []
        var accessIndex: [LoopAccess: Int] = [:]
        func register(_ access: LoopAccess) -> String {
            if let k = accessIndex[access] { return "\u{1}\(k)\u{1}" }
            accessIndex[access] = accesses.count
            accesses.append(access)
            return "\u{1}\(accesses.count - 1)\u{1}"
        }
        /// The expression reading operand `o` of a member at the current index: a token for a
        /// member of this loop (resolved below), else a strided read.
        func read(_ o: Int) -> String {
            if fusion.group[o] == groupIndex, nodes[o].shape == space,
               !FusionPlan.isTerminal(nodes[o].operation) {
                return "\u{2}\(o)\u{2}"
            }
            if let inlined = scalarExpressions[o] { return inlined }
            let a = fusion.access[o]!
            return register(LoopAccess(node: a.base, offset: a.offset, strides: broadcastStrides(nodes[o].shape, a.strides, to: space)))
        }

        var before: [() -> Void] = []
        var description: [String] = []
        var expressions: [Int: String] = [:]  // elementwise members
        // Sums accumulate (+=) and padded slices scatter (=) into results of other shapes.
        var sums: [(member: Int, slot: String, operand: String, assignment: String)] = []
        for m in group.members {
            let node = nodes[m]
            description.append("%\(m) = \(node.operation.name)(\(node.inputs.map { "%\($0)" }.joined(separator: ", ")))")
            if let sum = node.operation as? Sum {
                let target = values[m]
                before.append {
                    if node.shape.rank == 0 {
                        self.writer.line("\(target.element("0")) = 0.0;")
                    } else {
                        CNode(output: target, inputs: [], useRuntime: false, writer: self.writer).fill(0)
                    }
                }
                let slot = register(LoopAccess(node: m, offset: 0, strides: sum.resultStrides(input: space, result: node.shape), isWrite: true))
                sums.append((m, slot, read(node.inputs[0]), "+="))
                continue
            }
            if let pad = node.operation as? PadSlice {
                let target = values[m]
                before.append { self.zeroOutsideSlice(pad, target) }
                let (offset, strides) = pad.slice.view(of: node.shape, result: space)
                let slot = register(LoopAccess(node: m, offset: offset, strides: strides, isWrite: true))
                sums.append((m, slot, read(node.inputs[0]), "="))
                continue
            }
            let operands = node.inputs.map(read)
            if let unary = node.operation as? any UnaryElementwise {
                expressions[m] = unary.cExpression(operands[0])
            } else {
                expressions[m] = (node.operation as! any BinaryElementwise).cExpression(operands[0], operands[1])
            }
        }
        // A value read once in the loop and never stored is written into its reader's
        // expression: TinyCC then keeps it in a register instead of a stack slot.
        var occurrences: [Int: Int] = [:]
        for text in Array(expressions.values) + sums.map(\.operand) {
            let parts = text.split(separator: "\u{2}", omittingEmptySubsequences: false)
            for k in stride(from: 1, to: parts.count, by: 2) { occurrences[Int(parts[k])!, default: 0] += 1 }
        }
        let inlined = Set(expressions.keys.filter { space.rank > 0 && !fusion.materialized[$0] && occurrences[$0] == 1 })
        var resolved: [Int: String] = [:]
        func resolve(_ text: String) -> String {
            let parts = text.split(separator: "\u{2}", omittingEmptySubsequences: false)
            var result = ""
            for (k, part) in parts.enumerated() {
                if k % 2 == 0 { result += part; continue }
                let o = Int(part)!
                result += inlined.contains(o) ? resolved[o]! : "v\(o)"
            }
            return result
        }
        var statements: [String] = []
        var sumIndex = 0
        for m in group.members {
            if sumIndex < sums.count, sums[sumIndex].member == m {
                statements.append("\(sums[sumIndex].slot) \(sums[sumIndex].assignment) \(resolve(sums[sumIndex].operand));")
                sumIndex += 1
                continue
            }
            let expression = resolve(expressions[m]!)
            if inlined.contains(m) {
                resolved[m] = expression
                continue
            }
            if space.rank == 0 {
                if !fusion.materialized[m] {
                    // Its one reader comes later and takes the expression itself.
                    scalarExpressions[m] = substitute(expression, accesses.map { values[$0.node].element(String($0.offset)) })
                    continue
                }
                // Scalars live in their locals.
                statements.append("\(values[m].element("0")) = \(expression);")
                statements.append("const double v\(m) = \(values[m].element("0"));")
                continue
            }
            statements.append("const double v\(m) = \(expression);")
            if fusion.materialized[m] {
                statements.append("\(register(LoopAccess(node: m, offset: 0, strides: space.strides, isWrite: true))) = v\(m);")
            }
        }

        writer.line("/* " + description.joined(separator: "; ") + " \(space) */")
        if space.rank == 0 {
            // No block: the locals assigned here are read by later statements.
            for step in before { step() }
            let expressions = accesses.map { values[$0.node].element(String($0.offset)) }
            for statement in statements where !statement.hasPrefix("const double v") {
                writer.line(substitute(statement, expressions))
            }
            return
        }
        writer.block("") {
            for step in before { step() }
            emitLoop(over: space, accesses: accesses, statements: statements)
        }
    }

    /// Zeros the elements of a padded slice's result that the slice does not cover: the ends of
    /// a one-axis unit-step slice, everything otherwise (the loop then overwrites the slice).
    private func zeroOutsideSlice(_ pad: PadSlice, _ target: CValue) {
        let shape = pad.shape
        if shape.rank == 1, pad.slice.steps == [1] {
            let (start, end) = (pad.slice.starts[0], pad.slice.ends[0])
            for (from, to) in [(0, start), (end, shape[0])] where to > from {
                if to - from == 1 {
                    writer.line("\(target.element(String(from))) = 0.0;")
                } else {
                    writer.block("for (long i = \(from); i < \(to); i++)") { writer.line("\(target.element("i")) = 0.0;") }
                }
            }
            return
        }
        CNode(output: target, inputs: [], useRuntime: false, writer: writer).fill(0)
    }

    /// A stored view: a copy loop from what it reads.
    func emitViewCopy(_ i: Int) {
        let node = graph.nodes[i]
        let view = node.operation as! any StridedView
        let operand = node.inputs[0]
        let source = fusion.access[operand]!
        let operandShape = graph.nodes[operand].shape
        let (offset, strides) = view.view(of: operandShape, offset: source.offset, strides: source.strides, result: node.shape)
            ?? view.view(of: operandShape, result: node.shape)
        let base = view.view(of: operandShape, offset: source.offset, strides: source.strides, result: node.shape) == nil ? operand : source.base
        writer.line("/* %\(i) = \(node.operation.name)(%\(operand)) \(node.shape) */")
        let accesses = [LoopAccess(node: i, offset: 0, strides: node.shape.strides), LoopAccess(node: base, offset: offset, strides: strides)]
        if node.shape.count <= 1 {
            emitLoop(over: node.shape, accesses: accesses, statements: ["\u{1}0\u{1} = \u{1}1\u{1};"])
            return
        }
        writer.block("") { emitLoop(over: node.shape, accesses: accesses, statements: ["\u{1}0\u{1} = \u{1}1\u{1};"]) }
    }

    /// Replaces the placeholders `\u{1}k\u{1}` with the k-th expression.
    private func substitute(_ statement: String, _ expressions: [String]) -> String {
        let parts = statement.split(separator: "\u{1}", omittingEmptySubsequences: false)
        var result = ""
        for (k, part) in parts.enumerated() {
            result += k % 2 == 1 ? expressions[Int(part)!] : String(part)
        }
        return result
    }

    /// A loop nest over `shape`, flat when every access walks memory contiguously or not at all.
    private func emitLoop(over shape: Shape, accesses: [LoopAccess], statements: [String]) {
        let count = shape.count
        if count == 0 { return }
        // An element read more than once per iteration is loaded once into a local: TinyCC
        // would otherwise redo the address arithmetic and the load each time.
        var uses = [Int](repeating: 0, count: accesses.count)
        for statement in statements {
            let parts = statement.split(separator: "\u{1}", omittingEmptySubsequences: false)
            for k in stride(from: 1, to: parts.count, by: 2) { uses[Int(parts[k])!] += 1 }
        }
        let cached = Set(accesses.indices.filter { !accesses[$0].isWrite && uses[$0] > 1 && accesses[$0].strides.contains { $0 != 0 } })
        func body(_ expressions: [String]) {
            var names = expressions
            for k in cached.sorted() {
                writer.line("const double a\(k) = \(expressions[k]);")
                names[k] = "a\(k)"
            }
            for statement in statements { writer.line(substitute(statement, names)) }
        }
        if count == 1 {
            let expressions = accesses.map { values[$0.node].element(String($0.offset)) }
            for statement in statements { writer.line(substitute(statement, expressions)) }
            return
        }
        let contiguous = shape.strides
        let flat = accesses.allSatisfy { $0.strides == contiguous || $0.strides.allSatisfy { $0 == 0 } }
        if flat {
            writer.block("for (long i = 0; i < \(count); i++)") {
                let expressions = accesses.map { a -> String in
                    let moving = a.strides.contains { $0 != 0 }
                    return values[a.node].element(moving ? (a.offset == 0 ? "i" : "\(a.offset) + i") : String(a.offset))
                }
                body(expressions)
            }
            return
        }
        let rank = shape.rank
        func nest(_ axis: Int) {
            if axis == rank {
                let expressions = accesses.map { a -> String in
                    var terms: [String] = a.offset == 0 ? [] : [String(a.offset)]
                    for k in 0..<rank where a.strides[k] != 0 {
                        terms.append(a.strides[k] == 1 ? "i\(k)" : "i\(k) * \(a.strides[k])")
                    }
                    return values[a.node].element(terms.isEmpty ? "0" : terms.joined(separator: " + "))
                }
                body(expressions)
                return
            }
            writer.block("for (long i\(axis) = 0; i\(axis) < \(shape[axis]); i\(axis)++)") { nest(axis + 1) }
        }
        nest(0)
    }
}
