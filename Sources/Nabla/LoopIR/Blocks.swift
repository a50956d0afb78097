extension LoopIR {
    /// The order in which a sum into one element adds many terms: in blocks of whole rows
    /// (along the operand's first axis), each block's terms added in order from +0.0 into a
    /// partial sum, and the partial sums added in order. Every path (the interpreter, every
    /// tier, standalone C) adds in this order, so all give the same bits; the blocks are what
    /// the runtime's thread pool runs at once, so the result never depends on the thread count.
    ///
    /// A block holds as many rows as fit in `blockElements` elements (at least one), and there
    /// are at most `maximumBlocks` blocks (larger tensors get larger blocks). Tensors of one
    /// block are summed term after term, as before there were blocks.
    public struct ReductionBlocks: Hashable, Sendable {
        /// Rows (indices along the first axis) per block; the last block may hold fewer.
        public let rowsPerBlock: Int
        /// Number of blocks, at least two.
        public let count: Int
        /// Rows in all.
        public let rows: Int
        /// Elements per row: the product of the extents after the first.
        public let rowSize: Int

        /// Elements a block holds at most, unless one row holds more or the tensor needs more
        /// than `maximumBlocks` blocks.
        public static let blockElements = 16_384
        /// Most blocks one sum is cut into: partial sums are kept on the stack.
        public static let maximumBlocks = 256

        /// The blocks of a tensor of `extents` summed into one element, or nil when it is one
        /// block.
        public init?(extents: [Int]) {
            guard let rows = extents.first, rows > 1 else { return nil }
            let rowSize = extents.dropFirst().reduce(1, *)
            guard rowSize > 0, rows * rowSize > Self.blockElements else { return nil }
            var perBlock = max(1, Self.blockElements / rowSize)
            if (rows + perBlock - 1) / perBlock > Self.maximumBlocks { perBlock = (rows + Self.maximumBlocks - 1) / Self.maximumBlocks }
            let count = (rows + perBlock - 1) / perBlock
            guard count > 1 else { return nil }
            self.rowsPerBlock = perBlock
            self.count = count
            self.rows = rows
            self.rowSize = rowSize
        }

        /// The elements (row-major) of block `b`.
        public func elements(of b: Int) -> Range<Int> {
            (b * rowsPerBlock * rowSize)..<(min(rows, (b + 1) * rowsPerBlock) * rowSize)
        }

        /// The sum of `count` terms in this order; `term(k)` is term k, row-major.
        @inline(__always)
        public func sum(_ term: (Int) -> Double) -> Double {
            var total = 0.0
            for b in 0..<count {
                var partial = 0.0
                for k in elements(of: b) { partial += term(k) }
                total += partial
            }
            return total
        }
    }

    /// A loop cut into blocks of `perBlock` iterations of its counter: the statements of one
    /// block `g` (`Counter.block`), which run the loop's first positions for block 0, the last
    /// ones for the last block, and the loop shifted by `g * perBlock` in between.
    public struct BlockForms: Sendable {
        /// Number of blocks.
        public let count: Int
        /// The statements of block `g`, choosing its form by `g`.
        public let body: [Statement]
    }

    /// The loop nest (or flat loop) over a tensor of `blocks`' extents as block forms: its outer
    /// loop cut into blocks of whole rows. Nil when it is not such a nest.
    static func blockForms(ofNest nest: [Statement], _ blocks: ReductionBlocks, starts: BlockStarts = .none) -> (forms: BlockForms, counter: Counter)? {
        if case .loop(let outer)? = nest.last, outer.counter == .flat {
            return blockForms(nest, counter: .flat, extent: blocks.rows * blocks.rowSize, perBlock: blocks.rowsPerBlock * blocks.rowSize,
                              starts: starts).map { ($0, .flat) }
        }
        return blockForms(nest, counter: .axis(0), extent: blocks.rows, perBlock: blocks.rowsPerBlock, starts: starts).map { ($0, .axis(0)) }
    }

    /// Statements a block begins with, by the block: the first, one in the middle (whose start
    /// is `g * perBlock`) and the last (given its first position).
    struct BlockStarts {
        var first: [Statement]
        var middle: [Statement]
        var last: (Int) -> [Statement]

        /// No statements.
        static var none: BlockStarts { BlockStarts(first: [], middle: [], last: { _ in [] }) }

        var isEmpty: Bool { first.isEmpty && middle.isEmpty }
    }

    /// A loop nest over a tensor of `extents` that adds every element into `target`, in the
    /// order of `ReductionBlocks`.
    /// - Throws: when the nest does not have the shape of one (an error in Nabla).
    static func summedInBlocks(_ nest: [Statement], extents: [Int], into target: Place) throws -> [Statement] {
        guard let blocks = ReductionBlocks(extents: extents) else { return nest }
        guard let (forms, _) = blockForms(ofNest: nest, blocks) else {
            throw NotInBlocks(extents: extents)
        }
        return blocksInOrder(forms, targets: [target])
    }

    /// A loop nest that cannot be cut into the blocks of its extents.
    struct NotInBlocks: Error, CustomStringConvertible {
        let extents: [Int]
        var description: String { "a sum over \(extents) cannot be cut into blocks" }
    }

    /// `statements` (statements at constant positions below `perBlock`, then one loop over
    /// `counter` from a constant start to `extent`, step and width 1) as block forms of
    /// `perBlock` iterations each; nil when they do not have that shape.
    static func blockForms(_ statements: [Statement], counter: Counter, extent: Int, perBlock: Int, starts: BlockStarts = .none) -> BlockForms? {
        guard perBlock > 0, extent > perBlock, case let .loop(loop)? = statements.last, loop.counter == counter,
              let start = loop.start, start < perBlock, loop.end == extent, loop.step == 1, loop.width == 1 else { return nil }
        let prefix = statements.dropLast()
        guard prefix.allSatisfy({ !containsLoop(over: counter, $0) }) else { return nil }
        let count = (extent + perBlock - 1) / perBlock
        func ranged(_ from: Int, _ to: Int, _ body: [Statement]) -> Statement {
            var copy = loop
            copy.start = from
            copy.end = to
            copy.body = body
            return .loop(copy)
        }
        let first = starts.first + Array(prefix) + [ranged(start, perBlock, loop.body)]
        let last = starts.last((count - 1) * perBlock) + [ranged((count - 1) * perBlock, extent, loop.body)]
        let g = Expression.variable(.counter(.block))
        func isBlock(_ b: Int) -> Condition { .compare(.equal, g, .literal(Double(b))) }
        let lastOrMiddle: [Statement]
        if count == 2 {
            lastOrMiddle = last
        } else {
            let middle = starts.middle + [ranged(0, perBlock, shiftedByBlock(loop.body, counter: counter, perBlock: perBlock))]
            lastOrMiddle = [.ifElse(isBlock(count - 1), last, middle)]
        }
        return BlockForms(count: count, body: [.ifElse(isBlock(0), first, lastOrMiddle)])
    }

    /// `body` with `counter` standing for `counter + g * perBlock`: in indices and in values.
    static func shiftedByBlock(_ body: [Statement], counter: Counter, perBlock: Int) -> [Statement] {
        let indexed = mapIndices(body) { index in
            let stride = index.stride(of: counter)
            guard stride != 0 else { return index }
            return Index(index.offset, index.terms + [Index.Term(.block, stride * perBlock)])
        }
        return mapExpressions(indexed) { e in
            guard case .variable(.counter(counter)) = e else { return nil }
            return e + .variable(.counter(.block)) * .literal(Double(perBlock))
        }
    }

    private static func containsLoop(over counter: Counter, _ statement: Statement) -> Bool {
        var found = false
        visit(statement) { item in
            if case let .statement(.loop(inner)) = item, inner.counter == counter { found = true }
            if case let .expression(.variable(.counter(c))) = item, c == counter { found = true }
        }
        return found
    }

    /// Block forms whose sums into `targets` (places every iteration adds to) go through
    /// partial sums `u<k>`, one per target, declared at the start of each block: the body of a
    /// block, and how its partial sums reach the targets.
    static func withPartialSums(_ forms: BlockForms, targets: [Place]) -> (body: [Statement], partials: [Variable]) {
        let partials = targets.indices.map(Variable.partial)
        let slot = Dictionary(uniqueKeysWithValues: zip(targets, partials))
        let redirected = mapStatements(forms.body) { statement in
            guard case let .accumulate(place, e) = statement, let partial = slot[place] else { return nil }
            return .accumulate(.variable(partial), e)
        }
        return (partials.map { .declare($0, .literal(0), mutable: true) } + redirected, partials)
    }

    /// The blocks run one after another, in a loop over `g`, each adding its partial sums to
    /// the targets as it ends.
    static func blocksInOrder(_ forms: BlockForms, targets: [Place]) -> [Statement] {
        let (body, partials) = withPartialSums(forms, targets: targets)
        let adds = zip(targets, partials).map { Statement.accumulate($0, .variable($1)) }
        return [.loop(Loop(.block, to: forms.count, body: body + adds))]
    }

    /// The blocks as one parallel loop (task `id`): each block leaves its partial sums in
    /// `Buffer.partials`, added to the targets in block order once all are done.
    static func blocksInParallel(_ forms: BlockForms, targets: [Place], id: Int) -> Statement {
        let (body, partials) = withPartialSums(forms, targets: targets)
        let k = targets.count
        let leave = partials.enumerated().map { j, partial in
            Statement.assign(.element(.partials, Index(j, [Index.Term(.block, k)])), .variable(partial))
        }
        let adds = targets.enumerated().map { j, target in
            Statement.accumulate(target, .load(.partials, Index(j, [Index.Term(.block, k)])))
        }
        let after: [Statement] = k == 0 ? [] : [.loop(Loop(.block, to: forms.count, body: adds))]
        return .parallel(ParallelLoop(id: id, blocks: forms.count, partialCount: k, body: body + leave, after: after))
    }

    /// The statements with every statement `rewrite` returns a replacement for replaced
    /// (statements inside loops, blocks and branches too; a replaced one is not looked into).
    static func mapStatements(_ statements: [Statement], _ rewrite: (Statement) -> Statement?) -> [Statement] {
        statements.map { statement in
            if let replacement = rewrite(statement) { return replacement }
            switch statement {
            case var .loop(loop):
                loop.body = mapStatements(loop.body, rewrite)
                return .loop(loop)
            case let .block(inner): return .block(mapStatements(inner, rewrite))
            case let .ifElse(c, a, b): return .ifElse(c, mapStatements(a, rewrite), mapStatements(b, rewrite))
            case var .parallel(p):
                p.body = mapStatements(p.body, rewrite)
                p.after = mapStatements(p.after, rewrite)
                return .parallel(p)
            default: return statement
            }
        }
    }
}

extension LoopIR {
    /// Whether blocks of `statements` (a loop over `counter` and what comes before it) may run
    /// at once: every element written is written by one iteration of `counter` alone and read
    /// only where it is written, the places of `targets` are only added to, and nothing depends
    /// on a counter or a carried value from outside, or calls anything but pure functions.
    static func blocksMayRunAtOnce(_ statements: [Statement], counter: Counter, targets: Set<Place>) -> Bool {
        var bound = Set<Counter>()
        var written: [Buffer: Set<Index>] = [:]
        var fine = true
        visit(statements) { item in
            guard fine else { return }
            switch item {
            case let .statement(statement):
                switch statement {
                case let .loop(loop): bound.insert(loop.counter)
                case let .assign(place, _), let .accumulate(place, _):
                    if targets.contains(place) {
                        if case .assign = statement { fine = false }
                    } else if case let .element(buffer, index) = place, index.stride(of: counter) != 0 {
                        written[buffer, default: []].insert(index)
                    } else {
                        fine = false
                    }
                case .call, .invoke, .pointer, .counter, .parallel: fine = false
                default: break
                }
            case let .expression(.variable(v)):
                if case .carry = v { fine = false }
            default: break
            }
        }
        guard fine else { return false }
        visit(statements) { item in
            guard fine else { return }
            var index: Index?
            if case let .expression(.load(buffer, at)) = item {
                if let writes = written[buffer], !writes.contains(at) { fine = false }
                index = at
            } else if case let .place(.element(_, at)) = item {
                index = at
            } else if case let .expression(.variable(.counter(c))) = item, !bound.contains(c) {
                fine = false
            }
            if let index, index.terms.contains(where: { !bound.contains($0.counter) }) { fine = false }
        }
        return fine
    }
}
