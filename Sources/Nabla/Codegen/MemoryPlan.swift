/// Offsets of intermediate buffers in a kernel's workspace, chosen so that buffers whose
/// lifetimes do not overlap share memory.
struct MemoryPlan {
    /// Workspace offset, in doubles, of each node that needs a buffer; nil for the others.
    var offsets: [Int?]
    /// Workspace size in doubles.
    var size: Int

    /// Buffers are aligned to 64 bytes so vectorised runtime code reads whole cache lines.
    static let alignment = 8

    /// Plans buffers for the `needsBuffer` nodes (aligned blocks of their element counts) and
    /// one double for each `needsSlot` node (rank-0 values kept in memory, after the buffers),
    /// with node `i` written at step `point[i]` and last read at step `lastUse[i]` (fused loops
    /// write several nodes at one step and read operands later than their node index).
    init(graph: Graph, needsBuffer: [Bool], needsSlot: [Bool] = [], point: [Int], lastUse: [Int]) {
        let count = graph.nodes.count
        var allocateAt = [[Int]](repeating: [], count: count)
        var releaseAt = [[Int]](repeating: [], count: count + 1)
        for i in 0..<count where needsBuffer[i] {
            allocateAt[point[i]].append(i)
            releaseAt[min(max(lastUse[i], point[i]), count)].append(i)
        }

        var free: [(offset: Int, size: Int)] = []  // sorted by offset, coalesced
        var top = 0
        offsets = [Int?](repeating: nil, count: count)
        var sizes = [Int](repeating: 0, count: count)
        for step in 0..<count {
            for i in allocateAt[step] {
                let need = Self.rounded(graph.nodes[i].shape.count)
                sizes[i] = need
                offsets[i] = Self.take(&free, &top, need)
            }
            for dead in releaseAt[step] where offsets[dead] != nil {
                Self.release(&free, offset: offsets[dead]!, size: sizes[dead])
            }
        }
        let slots = Self.planSlots(needsSlot, point: point, lastUse: lastUse, count: count)
        for (i, slot) in slots.offsets where slot >= 0 { offsets[i] = top + slot }
        size = top + slots.size
    }

    /// Offsets among the one-double slots, reused once their value is dead, and their number.
    private static func planSlots(_ needsSlot: [Bool], point: [Int], lastUse: [Int], count: Int) -> (offsets: [Int: Int], size: Int) {
        guard needsSlot.contains(true) else { return ([:], 0) }
        var allocateAt = [[Int]](repeating: [], count: count)
        var releaseAt = [[Int]](repeating: [], count: count + 1)
        for i in needsSlot.indices where needsSlot[i] {
            allocateAt[point[i]].append(i)
            releaseAt[min(max(lastUse[i], point[i]), count)].append(i)
        }
        var free: [Int] = [], offsets: [Int: Int] = [:], size = 0
        for step in 0..<count {
            for i in allocateAt[step] {
                if let slot = free.popLast() { offsets[i] = slot } else { offsets[i] = size; size += 1 }
            }
            for dead in releaseAt[step] { if let slot = offsets[dead] { free.append(slot) } }
        }
        return (offsets, size)
    }

    /// `count` doubles rounded up to the alignment.
    static func rounded(_ count: Int) -> Int {
        (count + alignment - 1) / alignment * alignment
    }

    /// Takes `need` doubles from the best-fitting free block, or from the end.
    private static func take(_ free: inout [(offset: Int, size: Int)], _ top: inout Int, _ need: Int) -> Int {
        var best: Int?
        for (k, block) in free.enumerated() where block.size >= need {
            if best == nil || block.size < free[best!].size { best = k }
        }
        if let k = best {
            let offset = free[k].offset
            if free[k].size == need { free.remove(at: k) } else { free[k] = (free[k].offset + need, free[k].size - need) }
            return offset
        }
        if let last = free.last, last.offset + last.size == top {
            // Grow the block at the end rather than leave it stranded.
            free.removeLast()
            top = last.offset + need
            return last.offset
        }
        defer { top += need }
        return top
    }

    private static func release(_ free: inout [(offset: Int, size: Int)], offset: Int, size: Int) {
        var index = free.firstIndex { $0.offset > offset } ?? free.count
        free.insert((offset, size), at: index)
        if index + 1 < free.count, free[index].offset + free[index].size == free[index + 1].offset {
            free[index].size += free[index + 1].size
            free.remove(at: index + 1)
        }
        if index > 0, free[index - 1].offset + free[index - 1].size == free[index].offset {
            free[index - 1].size += free[index].size
            free.remove(at: index)
            index -= 1
        }
    }
}
