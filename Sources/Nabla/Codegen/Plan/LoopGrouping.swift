/// Elementwise operations and sums emitted as one loop over `shape`.
struct LoopGroup: Equatable {
    var shape: Shape
    /// Member node indices, increasing.
    var members: [Int]
    /// The last member: where the loop is emitted.
    var point: Int { members.last! }
}

/// An elementwise binary node over two padded slices of one loop's values, computed in that
/// loop (the gradients of `x[:-1]` and `x[1:]`, added, are one). At each index the loop has the
/// `register` pad's operand in hand; the `memory` pad, which starts no earlier, has already been
/// stored at that position, by this iteration or an earlier one. The `register` pad itself is
/// stored only if something else reads it.
struct PadPair: Equatable {
    var memory: Int
    var register: Int

    /// How many positions the memory pad starts after the register pad.
    func shift(_ nodes: [Graph.Node]) -> Int {
        (nodes[memory].operation as! PadSlice).slice.starts[0] - (nodes[register].operation as! PadSlice).slice.starts[0]
    }
}

/// Phase 2 of planning, grouping: elementwise operations over one index space, and the sums
/// that reduce them, become groups emitted as one loop, greedily in node order.
///
/// A group is emitted where its last member stands. A node joins a group only when nothing
/// outside the group reads an earlier member before that point, so moving the members there
/// never makes a reader see unwritten memory; and never when it reads a member's memory (a sum,
/// or a view of a member), which the loop completes only at its end.
struct LoopGrouping {
    var groups: [LoopGroup] = []
    /// Group of each fused node.
    var group: [Int?]
    /// Pad pairs computed in the loop of their pads, by node.
    var padPairs: [Int: PadPair] = [:]

    /// Per group: readers of its members that are not members, smallest first.
    private var pending: [MinHeap] = []

    init(_ facts: GraphFacts, _ views: ViewFolding) {
        group = [Int?](repeating: nil, count: facts.count)
        for (i, node) in facts.nodes.enumerated() where facts.roles[i].isFusible {
            if let pair = padPair(i, facts), let g = group[pair.memory], pending[g].minimum(excluding: i) > i {
                padPairs[i] = pair
                join(i, g, facts)
                continue
            }
            let space = facts.roles[i].isTerminal ? facts.nodes[node.inputs[0]].shape : node.shape
            // A scalar is a step of its own (written into its reader or stored), not a loop.
            if space.rank == 0 { continue }
            if let g = chooseGroup(for: i, space: space, facts, views) {
                join(i, g, facts)
            } else {
                groups.append(LoopGroup(shape: space, members: []))
                pending.append(MinHeap())
                join(i, groups.count - 1, facts)
            }
        }
        // Merges append members out of order.
        for g in groups.indices { groups[g].members.sort() }
    }

    private mutating func join(_ i: Int, _ g: Int, _ facts: GraphFacts) {
        groups[g].members.append(i)
        pending[g].remove(i)
        group[i] = g
        for c in facts.consumers[i] { pending[g].insert(c) }
    }

    /// The group node `i` joins: one of its operands' groups over `space` that can move to
    /// `i`; when several can, they are merged into one.
    private mutating func chooseGroup(for i: Int, space: Shape, _ facts: GraphFacts, _ views: ViewFolding) -> Int? {
        let nodes = facts.nodes
        var chosen: Int?
        for operand in nodes[i].inputs {
            guard let g = group[operand], g != chosen, groups[g].shape == space, nodes[operand].shape == space,
                  !facts.roles[operand].isTerminal,
                  pending[g].minimum(excluding: i) > i,
                  !readsMemory(of: g, i, space, facts, views) else { continue }
            chosen = chosen.map { merge($0, g) } ?? g
        }
        return chosen
    }

    /// True when node `i` reads the memory of group `g` (a sum of it, a value of another shape,
    /// or a view of a member), which is complete only after the loop.
    private func readsMemory(of g: Int, _ i: Int, _ space: Shape, _ facts: GraphFacts, _ views: ViewFolding) -> Bool {
        facts.nodes[i].inputs.contains { o in
            if group[o] == g && (facts.roles[o].isTerminal || facts.nodes[o].shape != space) { return true }
            let base = views.access[o].base
            return base != o && group[base] == g
        }
    }

    /// Makes groups `a` and `b` one; returns the surviving group. The smaller moves into the
    /// larger, so merging costs n log n over a whole graph.
    private mutating func merge(_ a: Int, _ b: Int) -> Int {
        let (keep, gone) = groups[a].members.count >= groups[b].members.count ? (a, b) : (b, a)
        for m in groups[gone].members { group[m] = keep }
        groups[keep].members += groups[gone].members
        groups[gone].members = []
        var absorbed = pending[gone]
        pending[gone] = MinHeap()
        pending[keep].absorb(&absorbed)
        return keep
    }

    /// Node `i` as a pad pair, if it is a binary elementwise operation of two one-axis,
    /// unit-step padded slices of its own shape that are members of one group.
    private func padPair(_ i: Int, _ facts: GraphFacts) -> PadPair? {
        let nodes = facts.nodes
        let node = nodes[i]
        guard facts.roles[i] == .elementwise, node.shape.rank == 1, node.inputs.count == 2 else { return nil }
        let (a, b) = (node.inputs[0], node.inputs[1])
        guard a != b, facts.roles[a] == .padSlice, facts.roles[b] == .padSlice, let padA = nodes[a].operation as? PadSlice, let padB = nodes[b].operation as? PadSlice,
              nodes[a].shape == node.shape, nodes[b].shape == node.shape,
              padA.slice.steps == [1], padB.slice.steps == [1],
              let g = group[a], group[b] == g else { return nil }
        return padA.slice.starts[0] < padB.slice.starts[0] ? PadPair(memory: b, register: a) : PadPair(memory: a, register: b)
    }
}

/// A binary min-heap of integers with removal of the smallest values.
struct MinHeap {
    private var items: [Int] = []

    var count: Int { items.count }

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
        if other.items.count > items.count { swap(&items, &other.items) }
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
