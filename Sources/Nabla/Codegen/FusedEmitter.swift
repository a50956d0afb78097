/// Writes the C for fused groups (one loop each) and for stored views (one copy loop each).
///
/// A loop body is a list of steps whose expressions hold placeholders: `\u{1}k\u{1}` for the
/// element of access `k` at the current index and `\u{3}m\u{3}` for the local holding member
/// `m`'s value. Placeholders are resolved when the body is written out, once per copy of the
/// body when the loop is unrolled.
final class FusedEmitter {
    let graph: Graph
    let fusion: FusionPlan
    let values: [CValue]
    let writer: CWriter
    /// Most copies of a loop body one iteration runs (1: loops are not unrolled).
    let unroll: Int
    /// Expressions of scalars that are not stored but written into their one reader.
    private var scalarExpressions: [Int: String] = [:]

    init(graph: Graph, fusion: FusionPlan, values: [CValue], writer: CWriter, unroll: Int = 1) {
        self.graph = graph
        self.fusion = fusion
        self.values = values
        self.writer = writer
        self.unroll = max(1, unroll)
    }

    /// A read or write of some storage inside a loop over the group's index space.
    private struct LoopAccess: Hashable {
        var node: Int  // whose storage (values[node])
        var offset: Int
        var strides: [Int]
        /// Written by the loop (never cached in a local).
        var isWrite = false
    }

    /// One statement of a loop body.
    private enum Step {
        /// `const double v<member> = expression;`
        case define(member: Int, expression: String)
        /// `<access> = expression;`
        case assign(access: Int, expression: String)
        /// `<access> += expression;` (a sum accumulating).
        case accumulate(access: Int, expression: String)
    }

    private static func accessToken(_ k: Int) -> String { "\u{1}\(k)\u{1}" }
    private static func localToken(_ m: Int) -> String { "\u{3}\(m)\u{3}" }
    /// Member `m`'s value `shift` positions before the current index.
    private static func carryToken(_ m: Int, _ shift: Int) -> String { "\u{4}\(m):\(shift)\u{4}" }
    /// The local holding member `m`'s value `j` positions before the first index of the
    /// current iteration (after the loop: before its end).
    private static func carryName(_ m: Int, _ j: Int) -> String { "k\(m)_\(j)" }

    /// The loop over a group's index space computing every member.
    func emitGroup(_ groupIndex: Int) {
        let group = fusion.groups[groupIndex]
        let space = group.shape
        let nodes = graph.nodes
        var accesses: [LoopAccess] = []
        var accessIndex: [LoopAccess: Int] = [:]
        func register(_ access: LoopAccess) -> Int {
            if let k = accessIndex[access] { return k }
            accessIndex[access] = accesses.count
            accesses.append(access)
            return accesses.count - 1
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
            return Self.accessToken(register(LoopAccess(node: a.base, offset: a.offset, strides: broadcastStrides(nodes[o].shape, a.strides, to: space))))
        }

        var before: [() -> Void] = []
        var after: [() -> Void] = []
        var description: [String] = []
        var expressions: [Int: String] = [:]  // elementwise members
        // Sums accumulate (+=) and padded slices scatter (=) into results of other shapes.
        var terminals: [(member: Int, slot: Int, operand: String, accumulates: Bool)] = []
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
                terminals.append((m, slot, read(node.inputs[0]), true))
                continue
            }
            if let pair = fusion.padPairs[m] {
                // At the register pad's positions: the memory pad's stored element with the
                // register pad's operand; elsewhere the register pad is zero.
                let binary = node.operation as! any BinaryElementwise
                let pad = nodes[pair.register].operation as! PadSlice
                let (offset, strides) = pad.slice.view(of: node.shape, result: space)
                let slot = register(LoopAccess(node: m, offset: offset, strides: strides, isWrite: true))
                let shift = FusionPlan.shift(of: pair, nodes)
                let carried = fusion.carriedPads[pair.memory] != nil
                // The memory pad's element here: stored by now, or carried in a local.
                let stored = carried
                    ? Self.carryToken(pair.memory, shift)
                    : Self.accessToken(register(LoopAccess(node: pair.memory, offset: offset, strides: strides)))
                let inLoop = read(nodes[pair.register].inputs[0])
                let memoryFirst = node.inputs[0] == pair.memory
                terminals.append((m, slot, memoryFirst ? binary.cExpression(stored, inLoop) : binary.cExpression(inLoop, stored), false))
                let (target, memory) = (values[m], values[pair.memory])
                let (start, end) = (pad.slice.starts[0], pad.slice.ends[0])
                let (memoryStart, length) = ((nodes[pair.memory].operation as! PadSlice).slice.starts[0], space.count)
                after.append {
                    // Where the register pad is zero: the memory pad's element, stored or (after
                    // the loop, carry j holds its operand's element j from the end) carried.
                    let window = carried ? (memoryStart + length - shift)..<(memoryStart + length) : 0..<0
                    func assign(_ index: String, _ value: String) {
                        self.writer.line("\(target.element(index)) = \(memoryFirst ? binary.cExpression(value, "0.0") : binary.cExpression("0.0", value));")
                    }
                    func assignRange(_ range: Range<Int>) {
                        guard !range.isEmpty else { return }
                        let value = { (index: String) in carried ? "0.0" : memory.element(index) }
                        if range.count == 1 {
                            assign(String(range.lowerBound), value(String(range.lowerBound)))
                        } else {
                            // Not `i`: an unrolled loop's counter is still in scope here.
                            self.writer.block("for (long q = \(range.lowerBound); q < \(range.upperBound); q++)") { assign("q", value("q")) }
                        }
                    }
                    for uncovered in [0..<start, end..<node.shape[0]] where !uncovered.isEmpty {
                        let carriedPart = uncovered.clamped(to: window)
                        guard !carriedPart.isEmpty else { assignRange(uncovered); continue }
                        assignRange(uncovered.lowerBound..<carriedPart.lowerBound)
                        for position in carriedPart {
                            assign(String(position), Self.carryName(pair.memory, memoryStart + length - position))
                        }
                        assignRange(carriedPart.upperBound..<uncovered.upperBound)
                    }
                }
                continue
            }
            if let pad = node.operation as? PadSlice {
                if fusion.carriedPads[m] != nil {
                    // Its operand's value at each index, kept for the pad pairs that read it.
                    expressions[m] = read(node.inputs[0])
                    continue
                }
                // Read only by pad pairs, from the loop's own values: nothing to store.
                guard fusion.materialized[m] else { continue }
                let target = values[m]
                before.append { self.zeroOutsideSlice(pad, target) }
                let (offset, strides) = pad.slice.view(of: node.shape, result: space)
                let slot = register(LoopAccess(node: m, offset: offset, strides: strides, isWrite: true))
                terminals.append((m, slot, read(node.inputs[0]), false))
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
        for text in Array(expressions.values) + terminals.map(\.operand) {
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
                result += inlined.contains(o) ? resolved[o]! : Self.localToken(o)
            }
            return result
        }
        var steps: [Step] = []
        var scalarStatements: [String] = []
        var terminalIndex = 0
        for m in group.members {
            if terminalIndex < terminals.count, terminals[terminalIndex].member == m {
                let t = terminals[terminalIndex]
                let expression = resolve(t.operand)
                steps.append(t.accumulates ? .accumulate(access: t.slot, expression: expression) : .assign(access: t.slot, expression: expression))
                terminalIndex += 1
                continue
            }
            if nodes[m].operation is PadSlice {
                // Not stored; a carried pad's value is a local of each copy of the body.
                if fusion.carriedPads[m] != nil { steps.append(.define(member: m, expression: resolve(expressions[m]!))) }
                continue
            }
            let expression = resolve(expressions[m]!)
            if inlined.contains(m) {
                resolved[m] = expression
                continue
            }
            if space.rank == 0 {
                // A scalar group is one elementwise member and no loop.
                let reads = accesses.map { values[$0.node].element(String($0.offset)) }
                let text = substitute(expression, reads: reads, locals: { "v\($0)" })
                if fusion.materialized[m] {
                    scalarStatements.append("\(values[m].element("0")) = \(text);")
                } else {
                    // Its one reader comes later and takes the expression itself.
                    scalarExpressions[m] = text
                }
                continue
            }
            guard fusion.materialized[m] else {
                steps.append(.define(member: m, expression: expression))
                continue
            }
            let store = register(LoopAccess(node: m, offset: 0, strides: space.strides, isWrite: true))
            if occurrences[m, default: 0] == 0 {
                // Nothing in the loop reads it: store the expression itself.
                steps.append(.assign(access: store, expression: expression))
            } else {
                steps.append(.define(member: m, expression: expression))
                steps.append(.assign(access: store, expression: Self.localToken(m)))
            }
        }

        writer.line("/* " + description.joined(separator: "; ") + " \(space) */")
        if space.rank == 0 {
            // No block: the locals assigned here are read by later statements.
            for step in before { step() }
            for statement in scalarStatements { writer.line(statement) }
            return
        }
        writer.block("") {
            for step in before { step() }
            let carries = group.members.compactMap { m in fusion.carriedPads[m].map { (member: m, depth: $0) } }
            emitLoop(over: space, accesses: accesses, steps: steps, carries: carries)
            for step in after { step() }
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
        let accesses = [LoopAccess(node: i, offset: 0, strides: node.shape.strides, isWrite: true), LoopAccess(node: base, offset: offset, strides: strides)]
        let steps = [Step.assign(access: 0, expression: Self.accessToken(1))]
        if node.shape.count <= 1 {
            emitLoop(over: node.shape, accesses: accesses, steps: steps)
            return
        }
        writer.block("") { emitLoop(over: node.shape, accesses: accesses, steps: steps) }
    }

    /// Replaces access placeholders with `reads[k]`, local placeholders with `locals(m)` and
    /// carried values with `carried(m, shift)`.
    private func substitute(_ text: String, reads: [String], locals: (Int) -> String,
                            carried: (Int, Int) -> String = { _, _ in preconditionFailure("no carried values here") }) -> String {
        let markers: Set<Character> = ["\u{1}", "\u{3}", "\u{4}"]
        guard text.contains(where: { markers.contains($0) }) else { return text }
        var result = ""
        var token = ""
        var inside: Character?
        for c in text {
            if markers.contains(c) {
                if inside == c {
                    switch c {
                    case "\u{1}": result += reads[Int(token)!]
                    case "\u{3}": result += locals(Int(token)!)
                    default:
                        let parts = token.split(separator: ":")
                        result += carried(Int(parts[0])!, Int(parts[1])!)
                    }
                    token = ""
                    inside = nil
                } else {
                    inside = c
                }
            } else if inside != nil {
                token.append(c)
            } else {
                result.append(c)
            }
        }
        return result
    }

    /// Accesses named in `text`, in order, with repeats.
    private func accessesNamed(in text: String) -> [Int] {
        let parts = text.split(separator: "\u{1}", omittingEmptySubsequences: false)
        return stride(from: 1, to: parts.count, by: 2).map { Int(parts[$0])! }
    }

    /// A loop nest over `shape`, flat when every access walks memory contiguously or not at all.
    ///
    /// TinyCC does not unroll, and keeps nothing in registers from one statement to the next, so
    /// the innermost loop runs up to `unroll` copies of the body per iteration, written
    /// statement by statement across the copies, with their own locals: the copies' loads and
    /// stores are independent, each element read by several copies (`x[i + 1]` in one is `x[i]`
    /// in the next) is loaded once, and a sum along the loop adds the copies' terms in one
    /// expression, in order, so its running total stays in a register. Every element still sees
    /// the same operations in the same order as in the plain loop.
    ///
    /// `carries` are members whose last `depth` values are kept from one iteration to the
    /// next (carried pads, on one-axis loops): locals declared before the loop, starting at the
    /// pad's +0.0.
    private func emitLoop(over shape: Shape, accesses: [LoopAccess], steps: [Step], carries: [(member: Int, depth: Int)] = []) {
        let count = shape.count
        if count == 0 { return }
        for (m, depth) in carries {
            for j in stride(from: 1, through: depth, by: 1) { writer.line("double \(Self.carryName(m, j)) = 0.0;") }
        }
        if count == 1 {
            let reads = accesses.map { values[$0.node].element(String($0.offset)) }
            writeBody(steps, accesses: accesses, lanes: 1, reads: { k, _ in reads[k] }, carries: carries)
            return
        }
        let contiguous = shape.strides
        let flat = accesses.allSatisfy { $0.strides == contiguous || $0.strides.allSatisfy { $0 == 0 } }
        // Loop axes and each access's stride along them.
        let extents = flat ? [count] : shape.dims
        let strides = flat ? accesses.map { $0.strides.contains { $0 != 0 } ? [1] : [0] } : accesses.map(\.strides)
        let names = flat ? ["i"] : extents.indices.map { "i\($0)" }
        let inner = extents.count - 1
        let lanes = laneCount(extent: extents[inner], steps: steps.count)

        /// Index terms of access `k` at lane 0, without its offset.
        func terms(_ k: Int) -> [String] {
            extents.indices.compactMap { axis in
                let s = strides[k][axis]
                return s == 0 ? nil : (s == 1 ? names[axis] : "\(names[axis]) * \(s)")
            }
        }
        func index(_ k: Int) -> String {
            let parts = (accesses[k].offset == 0 ? [] : [String(accesses[k].offset)]) + terms(k)
            return parts.isEmpty ? "0" : parts.joined(separator: " + ")
        }
        // Elements every iteration reads (broadcasts from memory) are loaded once, before the
        // loop; nothing the loop writes can be one of them.
        var hoisted: [Int: String] = [:]
        for k in accesses.indices where !accesses[k].isWrite && accesses[k].strides.allSatisfy({ $0 == 0 }) {
            guard case .pointer = values[accesses[k].node].storage else { continue }
            hoisted[k] = "h\(k)"
            writer.line("const double h\(k) = \(values[accesses[k].node].element(String(accesses[k].offset)));")
        }
        func rolledBody() {
            writeBody(steps, accesses: accesses, lanes: 1, reads: { k, _ in
                hoisted[k] ?? self.values[accesses[k].node].element(index(k))
            }, carries: carries)
        }
        func unrolledBody() {
            // A pointer per moving access at copy 0's element, declared where first used; copy
            // `l` reads `p[l * stride]`.
            var declared = Set<Int>()
            writeBody(steps, accesses: accesses, lanes: lanes, reads: { k, lane in
                guard strides[k][inner] != 0 else { return hoisted[k] ?? self.values[accesses[k].node].element(index(k)) }
                if declared.insert(k).inserted {
                    let qualifier = accesses[k].isWrite ? "" : "const "
                    self.writer.line("\(qualifier)double *const p\(k) = \(self.values[accesses[k].node].address(at: index(k)));")
                }
                return "p\(k)[\(lane * strides[k][inner])]"
            }, innerStride: { strides[$0][inner] }, carries: carries)
        }
        func nest(_ axis: Int) {
            let name = names[axis]
            if axis < inner {
                writer.block("for (long \(name) = 0; \(name) < \(extents[axis]); \(name)++)") { nest(axis + 1) }
                return
            }
            let extent = extents[axis]
            if lanes == 1 {
                writer.block("for (long \(name) = 0; \(name) < \(extent); \(name)++)") { rolledBody() }
                return
            }
            writer.line("long \(name) = 0;")
            writer.block("for (; \(name) + \(lanes) <= \(extent); \(name) += \(lanes))") { unrolledBody() }
            if extent % lanes != 0 {
                writer.block("for (; \(name) < \(extent); \(name)++)") { rolledBody() }
            }
        }
        nest(0)
    }

    /// Copies of a body of `steps` statements per iteration of a loop of `extent`.
    private func laneCount(extent: Int, steps: Int) -> Int {
        var lanes = unroll
        // Bounded code growth: long bodies have independent work enough already.
        while lanes > 1 && (lanes * steps > 160 || extent < 2 * lanes) { lanes /= 2 }
        return lanes
    }

    /// Writes `lanes` copies of a loop body. `reads(k, lane)` is the C for access `k`'s element
    /// in copy `lane`; `innerStride(k)` its distance in elements from one copy to the next.
    /// Carried members' values from earlier iterations are in their carry locals, which are
    /// updated at the end.
    private func writeBody(_ steps: [Step], accesses: [LoopAccess], lanes: Int, reads: (Int, Int) -> String,
                           innerStride: (Int) -> Int = { _ in 0 }, carries: [(member: Int, depth: Int)] = []) {
        // An element read more than once per iteration (by one copy or several) is loaded once
        // into a local: TinyCC would otherwise redo the address arithmetic and the load.
        struct Element: Hashable {
            var node: Int
            var strides: [Int]
            var offset: Int
        }
        func element(_ k: Int, _ lane: Int) -> Element {
            Element(node: accesses[k].node, strides: accesses[k].strides, offset: accesses[k].offset + lane * innerStride(k))
        }
        var uses: [Element: Int] = [:]
        for step in steps {
            let text: String
            switch step {
            case let .define(_, e), let .assign(_, e), let .accumulate(_, e): text = e
            }
            for k in accessesNamed(in: text) where !accesses[k].isWrite && accesses[k].strides.contains(where: { $0 != 0 }) {
                for lane in 0..<lanes { uses[element(k, lane), default: 0] += 1 }
            }
        }
        var cached: [Element: String] = [:]
        let suffix = { (lane: Int) in lanes == 1 ? "" : "_\(lane)" }
        func read(_ k: Int, _ lane: Int) -> String {
            if accesses[k].isWrite || !accesses[k].strides.contains(where: { $0 != 0 }) { return reads(k, lane) }
            let e = element(k, lane)
            if let name = cached[e] { return name }
            guard uses[e, default: 0] > 1 else { return reads(k, lane) }
            let name = "a\(k)\(suffix(lane))"
            writer.line("const double \(name) = \(reads(k, lane));")
            cached[e] = name
            return name
        }
        func resolve(_ text: String, _ lane: Int) -> String {
            // Load cached elements before the statement that first reads them.
            let names = Dictionary(accessesNamed(in: text).map { ($0, read($0, lane)) }, uniquingKeysWith: { a, _ in a })
            return substitute(text, reads: accesses.indices.map { names[$0] ?? "" }, locals: { "v\($0)\(suffix(lane))" },
                              carried: { m, shift in lane >= shift ? "v\(m)\(suffix(lane - shift))" : Self.carryName(m, shift - lane) })
        }
        for step in steps {
            switch step {
            case let .define(m, e):
                for lane in 0..<lanes { writer.line("const double v\(m)\(suffix(lane)) = \(resolve(e, lane));") }
            case let .assign(k, e):
                for lane in 0..<lanes { writer.line("\(reads(k, lane)) = \(resolve(e, lane));") }
            case let .accumulate(k, e):
                if lanes > 1 && innerStride(k) == 0 {
                    // Every copy adds into the same element: one expression, in copy order.
                    let target = reads(k, 0)
                    let terms = (0..<lanes).map { " + \(resolve(e, $0))" }.joined()
                    writer.line("\(target) = \(target)\(terms);")
                } else {
                    for lane in 0..<lanes { writer.line("\(reads(k, lane)) += \(resolve(e, lane));") }
                }
            }
        }
        // Carry j is the value j positions before the next iteration's first index; the
        // deepest first, so older carries are read before they are overwritten.
        for (m, depth) in carries {
            for j in stride(from: depth, through: 1, by: -1) {
                let value = j <= lanes ? "v\(m)\(suffix(lanes - j))" : Self.carryName(m, j - lanes)
                writer.line("\(Self.carryName(m, j)) = \(value);")
            }
        }
    }
}
