import Foundation

/// Work running on a thread of its own while the thread that started it goes on, which
/// collects the result with `join()`: for passes that overlap (the two halves of a long file,
/// planning a graph while it is simplified).
///
/// The semaphore and the lock are POSIX primitives, which ThreadSanitizer models.
final class OtherThread<Result: Sendable>: Sendable {
    private let result = Lock<Result?>(nil)
    private let finished = DispatchSemaphore(value: 0)

    /// Starts `work` on a new thread with `stackSize` bytes of stack (Nabla's passes keep
    /// their nesting on the heap, so the default is ample).
    init(stackSize: Int = 4 << 20, _ work: @escaping @Sendable () -> Result) {
        let thread = Thread { [result, finished] in
            let value = work()
            result.withLock { $0 = value }
            finished.signal()
        }
        thread.stackSize = stackSize
        thread.start()
    }

    /// Waits until the work has finished, and returns its result. Call it once.
    func join() -> Result {
        finished.wait()
        return result.withLock { $0! }
    }
}
