import Dispatch
import Testing
@testable import Nabla

private struct Refusal: Error {}

@Suite("Lock: the JIT's mutex")
struct LockTests {
    /// Increments from many threads at once all land: the body runs under mutual exclusion.
    @Test func incrementsFromManyThreadsAllLand() {
        let counter = Lock<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<2_000 { counter.withLock { $0 += 1 } }
        }
        #expect(counter.withLock { $0 } == 16_000)
    }

    /// `withLock` returns the body's value and keeps its changes.
    @Test func returnsTheBodysValue() {
        let pool = Lock<[Int]>([3])
        let count = pool.withLock { values -> Int in
            values.append(4)
            return values.count
        }
        #expect(count == 2)
        #expect(pool.withLock { $0 } == [3, 4])
    }

    /// An error thrown by the body reaches the caller with its type, and the mutex is released
    /// (the next `withLock` would deadlock otherwise).
    @Test func aThrowingBodyReleasesTheMutex() {
        let value = Lock<Int>(1)
        #expect(throws: Refusal.self) {
            try value.withLock { (n: inout Int) throws(Refusal) -> Void in
                n = 2
                throw Refusal()
            }
        }
        #expect(value.withLock { $0 } == 2)
    }
}
