/// The nodes of a builder by (operation, operands), for hash-consing: an open-addressing table
/// of node ids keyed by a hash computed once per lookup. Equality is checked against the node
/// itself, so the table stores nothing but ids and hashes.
struct HashConsTable {
    /// A slot: a node id (negative when empty) next to its hash, so that a probe reads one
    /// cache line (tables of large graphs do not fit in cache; each probe is a miss).
    private struct Entry {
        var id: Int
        var hash: Int
        static let empty = Entry(id: -1, hash: 0)
    }

    private var entries: [Entry]
    private var count = 0

    /// A table with room for `capacity` nodes before it grows.
    init(capacity: Int = 32) {
        var slots = 64
        while slots < 2 * capacity { slots *= 2 }
        entries = [Entry](repeating: .empty, count: slots)
    }

    /// The hash of an operation applied to operands.
    static func hash(_ operation: some Operation, _ inputs: [Int]) -> Int {
        var hasher = Hasher()
        hasher.combine(ObjectIdentifier(type(of: operation)))
        hasher.combine(operation)
        hasher.combine(inputs)
        return hasher.finalize()
    }

    /// The node with hash `hash` for which `matches` holds, if any.
    func find(_ hash: Int, _ matches: (Int) -> Bool) -> Int? {
        entries.withUnsafeBufferPointer { slots in
            let mask = slots.count - 1
            var k = hash & mask
            while slots[k].id >= 0 {
                if slots[k].hash == hash && matches(slots[k].id) { return slots[k].id }
                k = (k + 1) & mask
            }
            return nil
        }
    }

    /// Records node `id` under `hash` (not already present).
    mutating func insert(_ id: Int, hash: Int) {
        if (count + 1) * 2 > entries.count { grow() }
        Self.place(Entry(id: id, hash: hash), in: &entries)
        count += 1
    }

    private static func place(_ entry: Entry, in entries: inout [Entry]) {
        entries.withUnsafeMutableBufferPointer { slots in
            let mask = slots.count - 1
            var k = entry.hash & mask
            while slots[k].id >= 0 { k = (k + 1) & mask }
            slots[k] = entry
        }
    }

    private mutating func grow() {
        let old = entries
        entries = [Entry](repeating: .empty, count: old.count * 2)
        for entry in old where entry.id >= 0 { Self.place(entry, in: &entries) }
    }
}
