/// The nodes of a builder by (operation, operands), for hash-consing: an open-addressing table
/// of node ids keyed by a hash computed once per lookup. Equality is checked against the node
/// itself, so the table stores nothing but ids and hashes.
struct HashConsTable {
    private var ids: [Int]
    private var hashes: [Int]
    private var count = 0

    init() {
        ids = [Int](repeating: -1, count: 64)
        hashes = [Int](repeating: 0, count: 64)
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
        let mask = ids.count - 1
        var k = hash & mask
        while ids[k] >= 0 {
            if hashes[k] == hash && matches(ids[k]) { return ids[k] }
            k = (k + 1) & mask
        }
        return nil
    }

    /// Records node `id` under `hash` (not already present).
    mutating func insert(_ id: Int, hash: Int) {
        if (count + 1) * 2 > ids.count { grow() }
        place(id, hash)
        count += 1
    }

    private mutating func place(_ id: Int, _ hash: Int) {
        let mask = ids.count - 1
        var k = hash & mask
        while ids[k] >= 0 { k = (k + 1) & mask }
        ids[k] = id
        hashes[k] = hash
    }

    private mutating func grow() {
        let (oldIDs, oldHashes) = (ids, hashes)
        ids = [Int](repeating: -1, count: oldIDs.count * 2)
        hashes = [Int](repeating: 0, count: oldIDs.count * 2)
        for k in oldIDs.indices where oldIDs[k] >= 0 { place(oldIDs[k], oldHashes[k]) }
    }
}
