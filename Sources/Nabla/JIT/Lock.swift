#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a POSIX mutex: `withLock` runs its body with the mutex held.
///
/// Nabla uses this instead of `Synchronization.Mutex`, which on Linux waits on futexes that
/// ThreadSanitizer does not model: TSan then reports every access inside a `withLock` body as a
/// race. TSan intercepts `pthread_mutex_lock` and `pthread_mutex_unlock`, so with this lock its
/// reports are real. Uncontended, both cost about the same (one atomic operation each way).
///
/// ```swift
/// let pool = Lock<[Int]>([])
/// pool.withLock { $0.append(1) }
/// let count = pool.withLock { $0.count }
/// ```
///
/// The value is Sendable because whatever `withLock` returns may leave on another thread. The
/// mutex is not recursive: calling `withLock` on the same lock inside its own body deadlocks.
final class Lock<Value: Sendable>: @unchecked Sendable {
    // The mutex and the value each live at a fixed address of their own: a pthread_mutex_t must
    // not move, and reaching the value through a pointer spares every call the dynamic
    // exclusivity check an inout access to a class's stored property costs. The value is only
    // touched while the mutex is held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    /// A lock guarding `value`.
    init(_ value: Value) {
        self.value = UnsafeMutablePointer<Value>.allocate(capacity: 1)
        self.value.initialize(to: value)
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let status = pthread_mutex_init(mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed with \(status)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` on the guarded value with the mutex held, and returns what it returns. The
    /// mutex is released when `body` returns or throws.
    func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
