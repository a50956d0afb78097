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
    ///
    /// Every node of a graph is hashed once or more as graphs are built and rebuilt, so this is
    /// a multiply-and-shift mix rather than `Hasher` (SipHash, built for untrusted keys): the
    /// operation's type and its operand ids, and the operation's own `hashValue` only when its
    /// type carries parameters (not for `Operation.hasOneValue` types, such as `add` and `sin`).
    /// Equal keys hash alike; the table compares the nodes themselves on a match.
    static func hash(_ operation: some Operation, _ inputs: [Int]) -> Int {
        var h = mix(UInt64(UInt(bitPattern: ObjectIdentifier(type(of: operation)))))
        if !type(of: operation).hasOneValue { h = mix(h ^ UInt64(UInt(bitPattern: operation.hashValue))) }
        for input in inputs { h = mix(h ^ UInt64(UInt(bitPattern: input))) }
        return Int(bitPattern: UInt(truncatingIfNeeded: h))
    }

    /// One round of a 64-bit finaliser (the constants of splitmix64): every input bit reaches
    /// every output bit, so consecutive ids spread over the table.
    @inline(__always)
    private static func mix(_ value: UInt64) -> UInt64 {
        var x = value &+ 0x9E37_79B9_7F4A_7C15
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 31)
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
