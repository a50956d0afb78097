/// Offsets of intermediate buffers in a kernel's workspace, chosen so that buffers whose
/// lifetimes do not overlap share memory.
struct MemoryPlan {
    /// Workspace offset, in doubles, of each node that needs a buffer; nil for the others.
    var offsets: [Int?]
    /// Workspace size in doubles.
    var size: Int

    /// Buffers are aligned to 64 bytes so vectorised runtime code reads whole cache lines.
    static let alignment = 8

    /// Plans `needsBuffer` nodes of `graph` greedily in node order: a node's buffer is taken
    /// from the best-fitting free block (or the end) and returned after its last consumer,
    /// never before its own operands are released, so no node writes over an operand.
    init(graph: Graph, needsBuffer: [Bool]) {
        let count = graph.nodes.count
        var lastUse = Array(0..<count)
        for (i, node) in graph.nodes.enumerated() {
            for operand in node.inputs { lastUse[operand] = max(lastUse[operand], i) }
        }
        self.init(graph: graph, needsBuffer: needsBuffer, point: Array(0..<count), lastUse: lastUse)
    }

    /// Plans with an explicit schedule: node `i`'s buffer is written at step `point[i]` and last
    /// read at step `lastUse[i]` (fused loops write several nodes at one step and read
    /// operands later than their node index).
    init(graph: Graph, needsBuffer: [Bool], point: [Int], lastUse: [Int]) {
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
        size = top
    }

    /// `count` doubles rounded up to the alignment.
    private static func rounded(_ count: Int) -> Int {
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
