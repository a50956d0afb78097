/// Loop fusion: which nodes share one loop, which values are never stored, and when each value
/// is written and last read.
///
/// - Layout operations (slices, transposes, broadcasts, reshapes) are folded into the way their
///   consumers index memory, so they cost nothing, unless a consumer needs contiguous memory
///   (a matrix product, say) or they are outputs.
/// - Elementwise operations over one index space, and the sums that reduce them, form groups
///   emitted as one loop; a value is stored only when something outside its group reads it.
/// - A group is emitted where its last member stands. A node joins a group only when nothing
///   outside the group reads an earlier member before that point, so moving the members there
///   never makes a reader see unwritten memory.
struct FusionPlan {
    /// A strided way of reading a node's elements: element `index` (a multi-index over the
    /// node's own shape) is element `offset + sum(index[k] * strides[k])` of node `base`'s
    /// storage.
    struct Access: Equatable {
        var base: Int
        var offset: Int
        var strides: [Int]
    }

    /// Elementwise operations and sums emitted as one loop over `shape`.
    struct Group {
        var shape: Shape
        /// Member node indices, increasing.
        var members: [Int]
        /// The last member: where the loop is emitted.
        var point: Int { members.last! }
    }

    /// An elementwise binary node over two padded slices of one loop's values, computed in
    /// that loop (the gradients of `x[:-1]` and `x[1:]`, added, are one). At each index the loop
    /// has the `register` pad's operand in hand; the `memory` pad, which starts no earlier, has
    /// already been stored at that position, by this iteration or an earlier one. The
    /// `register` pad itself is stored only if something else reads it.
    struct PadPair: Equatable {
        var memory: Int
        var register: Int
    }

    /// How each node's elements are read; nil for nodes not read through memory (none today).
    var access: [Access?]
    /// Whether the node's value is stored (a buffer, an output, or a local for rank 0).
    var materialized: [Bool]
    /// Group of each fused node.
    var group: [Int?]
    var groups: [Group]
    /// Step at which each node's value is written (its group's point for members).
    var point: [Int]
    /// Last step at which each node's storage is read (the node count for outputs).
    var lastUse: [Int]
    /// Pad pairs computed in the loop of their pads, by node.
    var padPairs: [Int: PadPair] = [:]
    /// Memory pads read only by pad pairs, at most `maximumCarry` positions behind the
    /// register pad: never stored. The loop keeps the last values of the pad's operand in
    /// locals instead (the value `shift` positions back), by pad node: the largest shift.
    var carriedPads: [Int: Int] = [:]
    static let maximumCarry = 4

    static func isElementwise(_ op: any Operation) -> Bool { op is any UnaryElementwise || op is any BinaryElementwise }
    static func isFusedSum(_ op: any Operation) -> Bool { (op as? Sum).map { !$0.axes.isEmpty } ?? false }
    /// Members that write a result of another shape from inside the loop (a sum accumulating,
    /// a padded slice scattering); their value is complete only after the loop.
    static func isTerminal(_ op: any Operation) -> Bool { isFusedSum(op) || op is PadSlice }

    /// How many positions the memory pad of `pair` starts after its register pad.
    static func shift(of pair: PadPair, _ nodes: [Graph.Node]) -> Int {
        (nodes[pair.memory].operation as! PadSlice).slice.starts[0] - (nodes[pair.register].operation as! PadSlice).slice.starts[0]
    }

    /// Node `i` as a pad pair, if it is a binary elementwise operation of two one-axis,
    /// unit-step padded slices of its own shape that are members of one group.
    static func padPair(_ i: Int, _ nodes: [Graph.Node], _ group: [Int?]) -> PadPair? {
        let node = nodes[i]
        guard node.operation is any BinaryElementwise, node.shape.rank == 1, node.inputs.count == 2 else { return nil }
        let (a, b) = (node.inputs[0], node.inputs[1])
        guard a != b, let padA = nodes[a].operation as? PadSlice, let padB = nodes[b].operation as? PadSlice,
              nodes[a].shape == node.shape, nodes[b].shape == node.shape,
              padA.slice.steps == [1], padB.slice.steps == [1],
              let g = group[a], group[b] == g else { return nil }
        return padA.slice.starts[0] < padB.slice.starts[0] ? PadPair(memory: b, register: a) : PadPair(memory: a, register: b)
    }

    /// `carryPads`: keep memory pads of pad pairs in locals where possible (`carriedPads`).
    /// That suits unrolled loops for TinyCC; an optimising compiler vectorises the stored form
    /// better (P2 on gcc -O3: 1.0 us stored, 1.25 us carried).
    init(graph: Graph, carryPads: Bool = false) {
        let nodes = graph.nodes
        let count = nodes.count
        var consumers = [[Int]](repeating: [], count: count)
        for (i, node) in nodes.enumerated() { for operand in Set(node.inputs) { consumers[operand].append(i) } }
        var isOutput = [Bool](repeating: false, count: count)
        for port in graph.outputs { isOutput[port.node] = true }

        // Fusible consumers read through views; anything else needs contiguous memory.
        func readsThroughViews(_ c: Int) -> Bool {
            let op = nodes[c].operation
            return Self.isElementwise(op) || Self.isTerminal(op) || op is any StridedView
        }

        materialized = [Bool](repeating: false, count: count)
        point = []
        lastUse = []
        access = [Access?](repeating: nil, count: count)
        group = [Int?](repeating: nil, count: count)
        groups = []

        // Views: fold where every consumer can read through them.
        for (i, node) in nodes.enumerated() {
            guard let view = node.operation as? any StridedView else {
                access[i] = Access(base: i, offset: 0, strides: node.shape.strides)
                continue
            }
            let operand = node.inputs[0]
            let source = access[operand]!
            let operandShape = nodes[operand].shape
            if let (offset, strides) = view.view(of: operandShape, offset: source.offset, strides: source.strides, result: node.shape) {
                access[i] = Access(base: source.base, offset: offset, strides: strides)
            } else {
                // Only a reshape of a non-contiguous view gets here: store the operand.
                materialized[operand] = true
                let (offset, strides) = view.view(of: operandShape, result: node.shape)
                access[i] = Access(base: operand, offset: offset, strides: strides)
                access[operand] = Access(base: operand, offset: 0, strides: operandShape.strides)
            }
            if isOutput[i] || !consumers[i].allSatisfy(readsThroughViews) {
                materialized[i] = true
            }
        }
        // Groups, greedily in node order.
        var pending: [MinHeap] = []  // per group: consumers of members outside the group
        for (i, node) in nodes.enumerated() {
            let op = node.operation
            guard Self.isElementwise(op) || Self.isTerminal(op) else { continue }
            if let pair = Self.padPair(i, nodes, group), let g = group[pair.memory], pending[g].minimum(excluding: i) > i {
                groups[g].members.append(i)
                pending[g].remove(i)
                group[i] = g
                padPairs[i] = pair
                for c in consumers[i] { pending[g].insert(c) }
                continue
            }
            // The index space: a sum or a padded slice loops over its operand.
            let space = Self.isTerminal(op) ? nodes[node.inputs[0]].shape : node.shape
            var chosen: Int?
            if space.rank > 0 {
                for operand in node.inputs {
                    guard let g = group[operand], groups[g].shape == space, nodes[operand].shape == space,
                          !Self.isTerminal(nodes[operand].operation), g != chosen else { continue }
                    // Every outside reader of a member must come after this node, and this node
                    // must not read a member's memory (a sum, or a view of a member), which the
                    // loop completes only at its end.
                    guard pending[g].minimum(excluding: i) > i else { continue }
                    let readsMemoryOfGroup = node.inputs.contains { o in
                        if group[o] == g && (Self.isTerminal(nodes[o].operation) || nodes[o].shape != space) { return true }
                        if let base = access[o]?.base, base != o, group[base] == g { return true }
                        return false
                    }
                    if readsMemoryOfGroup { continue }
                    if let first = chosen {
                        // Both groups can move here: make them one loop.
                        for m in groups[g].members { group[m] = first }
                        groups[first].members = (groups[first].members + groups[g].members).sorted()
                        groups[g].members = []
                        var absorbed = pending[g]
                        pending[g] = MinHeap()
                        pending[first].absorb(&absorbed)
                    } else {
                        chosen = g
                    }
                }
            }
            if let g = chosen {
                groups[g].members.append(i)
                pending[g].remove(i)
            } else {
                chosen = groups.count
                groups.append(Group(shape: space, members: [i]))
                pending.append(MinHeap())
            }
            group[i] = chosen
            for c in consumers[i] { pending[chosen!].insert(c) }
        }

        // What must be stored: outputs, sums, members read outside their group, and anything
        // read by an operation that needs memory.
        for (i, node) in nodes.enumerated() {
            if isOutput[i] || node.operation is Input || node.operation is Constant { materialized[i] = true }
            if let g = group[i] {
                if groups[g].shape.rank == 0 {
                    // A scalar read once, by an elementwise expression that names it once, is
                    // written into that expression instead of a local.
                    let single = consumers[i].count == 1 ? consumers[i][0] : nil
                    let inlinable = single.map { c in
                        let op = nodes[c].operation
                        let duplicates = nodes[c].inputs.filter { $0 == i }.count > 1
                            || (op as? PowConstant).map { [2, 3].contains($0.exponent) } == true
                        // Only into another scalar: inside a loop it would be recomputed per element.
                        return Self.isElementwise(op) && nodes[c].shape.rank == 0 && !duplicates
                    } ?? false
                    if isOutput[i] || !inlinable || Self.isTerminal(node.operation) { materialized[i] = true }
                } else {
                    // Members of the same loop read it in the loop: elementwise ones at the same
                    // index, sums as they accumulate.
                    let groupOf = group, space = groups[g].shape, pairs = padPairs
                    let readInLoop = { (c: Int) in
                        groupOf[c] == g && (nodes[c].shape == space || Self.isTerminal(nodes[c].operation) || pairs[c] != nil)
                    }
                    // A pad read only as the register side of pad pairs is never stored.
                    let onlyInRegisters = !consumers[i].isEmpty && consumers[i].allSatisfy { pairs[$0]?.register == i }
                    // A pad read only as the memory side of pad pairs a few positions behind is
                    // carried in locals.
                    let shifts = consumers[i].map { c in pairs[c].flatMap { $0.memory == i ? Self.shift(of: $0, nodes) : nil } }
                    let carried = carryPads && !isOutput[i] && !consumers[i].isEmpty
                        && shifts.allSatisfy { $0.map { (0...Self.maximumCarry).contains($0) } ?? false }
                    if carried { carriedPads[i] = shifts.map { $0! }.max()! }
                    if padPairs[i] != nil || (Self.isTerminal(node.operation) && !onlyInRegisters && !carried) || !consumers[i].allSatisfy(readInLoop) {
                        materialized[i] = true
                    }
                }
            } else if !(node.operation is any StridedView) {
                materialized[i] = true
            }
        }
        // Readers of a stored view read the stored copy.
        for i in 0..<count where materialized[i] { access[i] = Access(base: i, offset: 0, strides: nodes[i].shape.strides) }
        // Views re-resolve against stored views they read.
        for (i, node) in nodes.enumerated() where !materialized[i] {
            guard let view = node.operation as? any StridedView else { continue }
            let operand = node.inputs[0]
            let source = access[operand]!
            if let (offset, strides) = view.view(of: nodes[operand].shape, offset: source.offset, strides: source.strides, result: node.shape) {
                access[i] = Access(base: source.base, offset: offset, strides: strides)
            }
        }

        var points = Array(0..<count)
        for g in groups { for m in g.members { points[m] = g.point } }
        // A scalar written into its reader's expression is evaluated where the reader is.
        for i in stride(from: count - 1, through: 0, by: -1) where !materialized[i] && nodes[i].shape.rank == 0 && group[i] != nil {
            points[i] = points[consumers[i][0]]
        }
        point = points
        // When a value is last read: at the point of each reader; a folded view reads when its
        // own readers do.
        var readAt = points
        for i in stride(from: count - 1, through: 0, by: -1) where !materialized[i] && nodes[i].operation is any StridedView {
            readAt[i] = consumers[i].map { readAt[$0] }.max() ?? points[i]
        }
        lastUse = points
        for (i, node) in nodes.enumerated() {
            for operand in node.inputs { lastUse[operand] = max(lastUse[operand], readAt[i]) }
        }
        for i in 0..<count where isOutput[i] { lastUse[i] = count }
        // Storage behind a folded view lives as long as the view is read.
        for i in stride(from: count - 1, through: 0, by: -1) where !materialized[i] {
            if let base = access[i]?.base, base != i { lastUse[base] = max(lastUse[base], lastUse[i]) }
        }
    }
}

/// A binary min-heap of integers with removal of one value.
struct MinHeap {
    private var items: [Int] = []

    mutating func insert(_ value: Int) {
        items.append(value)
        var k = items.count - 1
        while k > 0, items[(k - 1) / 2] > items[k] {
            items.swapAt(k, (k - 1) / 2)
            k = (k - 1) / 2
        }
    }

    private mutating func popMinimum() -> Int? {
        guard let top = items.first else { return nil }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var k = 0
        while true {
            let l = 2 * k + 1, r = l + 1
            var m = k
            if l < items.count, items[l] < items[m] { m = l }
            if r < items.count, items[r] < items[m] { m = r }
            if m == k { break }
            items.swapAt(k, m)
            k = m
        }
        return top
    }

    /// Moves every value of `other` into this heap.
    mutating func absorb(_ other: inout MinHeap) {
        for value in other.items { insert(value) }
        other.items = []
    }

    /// Removes every copy of `value` from the top (it is the smallest pending when called).
    mutating func remove(_ value: Int) {
        while items.first == value { _ = popMinimum() }
    }

    /// The smallest value other than `value` (which is never below the minimum), or Int.max.
    mutating func minimum(excluding value: Int) -> Int {
        var removed = 0
        while items.first == value {
            _ = popMinimum()
            removed += 1
        }
        let result = items.first ?? Int.max
        for _ in 0..<removed { insert(value) }
        return result
    }
}
