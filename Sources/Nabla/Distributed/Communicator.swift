import Foundation

/// The processes a data-parallel kernel (`DataParallelKernel`) runs on, and the two collective
/// operations it needs.
///
/// Every process of the group makes the same calls in the same order (collectives); a call
/// returns once every process has made it. `MPICommunicator` is MPI's world;
/// `InProcessGroup` runs a group as threads of one process, to try a sharded computation
/// without MPI.
public protocol Communicator: AnyObject, Sendable {
    /// This process's index in the group, from 0.
    var rank: Int { get }
    /// Number of processes in the group.
    var size: Int { get }
    /// Replaces `buffer`, on every process, by the elementwise sum of all processes' buffers
    /// (each has the same count).
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Joins every process's `local` elements in rank order into `result` on every process;
    /// process `r` contributes `counts[r]` elements, and `result` holds their sum.
    func allgather(_ local: UnsafeBufferPointer<Double>, into result: UnsafeMutableBufferPointer<Double>, counts: [Int])
}

/// A group of `size` communicators for threads of one process: run the same sharded
/// computation on `size` threads, thread `r` with `members[r]`, and they exchange partial
/// results as MPI processes would.
///
/// Sums are taken in rank order, so every member gets the same bits and the result does not
/// depend on timing. Made for trying and testing sharded computations; it copies every buffer
/// it exchanges.
///
/// ```swift
/// let group = InProcessGroup(size: 2)
/// DispatchQueue.concurrentPerform(iterations: 2) { r in
///     let kernel = try! DataParallelKernel(graph, sharding: ["X"], communicator: group.members[r])
///     results[r] = try! kernel(inputs)
/// }
/// ```
public final class InProcessGroup: Sendable {
    /// One communicator per rank.
    public let members: [Member]
    private let exchange: Exchange

    /// A group of `size` ranks (at least 1).
    public init(size: Int) {
        precondition(size >= 1, "a group has at least one member")
        let exchange = Exchange(size: size)
        self.exchange = exchange
        members = (0..<size).map { Member(rank: $0, size: size, exchange: exchange) }
    }

    /// The communicator of one rank of an `InProcessGroup`.
    public final class Member: Communicator {
        public let rank: Int
        public let size: Int
        private let exchange: Exchange

        fileprivate init(rank: Int, size: Int, exchange: Exchange) {
            self.rank = rank
            self.size = size
            self.exchange = exchange
        }

        public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
            let all = exchange.share(Array(buffer), from: rank)
            for i in buffer.indices {
                var total = 0.0
                for contribution in all { total += contribution[i] }
                buffer[i] = total
            }
        }

        public func allgather(_ local: UnsafeBufferPointer<Double>, into result: UnsafeMutableBufferPointer<Double>, counts: [Int]) {
            precondition(counts.count == size && local.count == counts[rank] && result.count == counts.reduce(0, +), "allgather counts do not fit the buffers")
            let all = exchange.share(Array(local), from: rank)
            var offset = 0
            for contribution in all {
                for (k, value) in contribution.enumerated() { result[offset + k] = value }
                offset += contribution.count
            }
        }
    }

    /// A reusable rendezvous: every rank hands in an array, and once all have, each gets all.
    fileprivate final class Exchange: @unchecked Sendable {
        private let size: Int
        private let condition = NSCondition()
        // Guarded by `condition`.
        private var deposits: [[Double]]
        private var arrived = 0
        private var round = 0
        private var finished: [[Double]] = []

        init(size: Int) {
            self.size = size
            deposits = Array(repeating: [], count: size)
        }

        func share(_ values: [Double], from rank: Int) -> [[Double]] {
            condition.lock()
            defer { condition.unlock() }
            let myRound = round
            deposits[rank] = values
            arrived += 1
            if arrived == size {
                // The next round cannot finish before every rank, this one's readers included,
                // has come back, so `finished` stays until all have read it.
                finished = deposits
                arrived = 0
                round += 1
                condition.broadcast()
            } else {
                while round == myRound { condition.wait() }
            }
            return finished
        }
    }
}
