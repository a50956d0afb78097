#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// MPI's world communicator: the processes `mpirun -np P` started.
///
/// Nabla loads MPI when this is first used (Open MPI's `libmpi.so.40`, or the library named
/// by the `NABLA_MPI_LIBRARY` environment variable), so Nabla builds and runs on machines
/// without MPI; only data-parallel runs need it. Run outside `mpirun`, the world is one
/// process.
///
/// MPI is started once per process (with `MPI_THREAD_SERIALIZED`: calls may come from any
/// thread, one at a time) and shut down by `finalize()`, which the process must call before it
/// exits (`MPI_Finalize`; Open MPI reports a process that exits without it as failed).
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    private let library: MPILibrary

    private static let shared = Lock<Result<MPICommunicator, NablaError>?>(nil)

    /// The world communicator, starting MPI on first use.
    /// - Throws: `NablaError.communication` when MPI cannot be loaded (saying what to
    ///   install) or fails to start.
    public static func world() throws -> MPICommunicator {
        try shared.withLock { cached in
            if let cached { return cached }
            let made = Result { () throws(NablaError) -> MPICommunicator in try MPICommunicator(library: MPILibrary.load()) }
            cached = made
            return made
        }.get()
    }

    private init(library: MPILibrary) throws(NablaError) {
        self.library = library
        var started: Int32 = 0
        _ = library.initialized(&started)
        if started == 0 {
            var provided: Int32 = 0
            let status = library.initThread(nil, nil, MPILibrary.threadSerialized, &provided)
            guard status == 0 else { throw NablaError.communication("MPI_Init_thread failed with status \(status)") }
        }
        var rank: Int32 = 0, size: Int32 = 0
        _ = library.commRank(library.world, &rank)
        _ = library.commSize(library.world, &size)
        self.rank = Int(rank)
        self.size = Int(size)
    }

    /// Shuts MPI down (`MPI_Finalize`) unless it is already; after this, no collective may be
    /// called in this process.
    public func finalize() {
        var finished: Int32 = 0
        _ = library.finalized(&finished)
        if finished == 0 { _ = library.finalize() }
    }

    /// Seconds on MPI's clock (`MPI_Wtime`).
    public var time: Double { library.wtime() }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard var start = buffer.baseAddress else { return }
        var remaining = buffer.count
        // MPI counts are 32-bit.
        while remaining > 0 {
            let count = min(remaining, Int(Int32.max))
            _ = library.allreduce(MPILibrary.inPlace, start, Int32(count), library.double, library.sum, library.world)
            start += count
            remaining -= count
        }
    }

    public func allgather(_ local: UnsafeBufferPointer<Double>, into result: UnsafeMutableBufferPointer<Double>, counts: [Int]) {
        precondition(counts.count == size && local.count == counts[rank] && result.count == counts.reduce(0, +), "allgather counts do not fit the buffers")
        precondition(result.count <= Int(Int32.max), "allgather of more than 2^31 - 1 elements")
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * size) { table in
            var offset = 0
            for r in 0..<size {
                table[r] = Int32(counts[r])
                table[size + r] = Int32(offset)
                offset += counts[r]
            }
            let base = table.baseAddress!
            _ = library.allgatherv(local.baseAddress, Int32(local.count), library.double, result.baseAddress, base, base + size, library.double, library.world)
        }
    }
}

/// Open MPI's C interface, loaded with `dlopen`: the functions Nabla calls and the handles of
/// the world communicator, the double type and the sum.
private struct MPILibrary: @unchecked Sendable {
    typealias Handle = UnsafeMutableRawPointer
    let initThread: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int32, UnsafeMutablePointer<Int32>) -> Int32
    let initialized: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let finalized: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let finalize: @convention(c) () -> Int32
    let commRank: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    let commSize: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    let allreduce: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    let allgatherv: @convention(c) (
        UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, UnsafePointer<Int32>, UnsafePointer<Int32>, Handle, Handle
    ) -> Int32
    let wtime: @convention(c) () -> Double
    let world: Handle, double: Handle, sum: Handle

    /// `MPI_THREAD_SERIALIZED` in Open MPI's mpi.h.
    static let threadSerialized: Int32 = 2
    /// `MPI_IN_PLACE` in Open MPI's mpi.h.
    nonisolated(unsafe) static let inPlace = UnsafeRawPointer(bitPattern: 1)

    static let installHint = "install Open MPI (apt-get install openmpi-bin libopenmpi-dev) and run under mpirun, or set NABLA_MPI_LIBRARY to the path of libmpi.so"

    static func load() throws(NablaError) -> MPILibrary {
        let names = ProcessInfo.processInfo.environment["NABLA_MPI_LIBRARY"].map { [$0] } ?? ["libmpi.so.40", "libmpi.so"]
        var reasons: [String] = []
        // Open MPI opens its own plugins, which need libmpi's symbols: load it globally.
        guard let handle = names.lazy.compactMap({ name -> UnsafeMutableRawPointer? in
            if let handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL) { return handle }
            reasons.append(dlerror().map { String(cString: $0) } ?? name)
            return nil
        }).first else {
            throw NablaError.communication("MPI is not available (\(reasons.joined(separator: "; "))); \(installHint)")
        }
        func symbol(_ name: String) throws(NablaError) -> UnsafeMutableRawPointer {
            guard let address = dlsym(handle, name) else {
                throw NablaError.communication("the MPI library has no '\(name)': Nabla needs Open MPI's; \(installHint)")
            }
            return address
        }
        func function<F>(_ name: String, as type: F.Type) throws(NablaError) -> F { unsafeBitCast(try symbol(name), to: type) }
        return MPILibrary(
            initThread: try function("MPI_Init_thread", as: (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int32, UnsafeMutablePointer<Int32>) -> Int32).self),
            initialized: try function("MPI_Initialized", as: (@convention(c) (UnsafeMutablePointer<Int32>) -> Int32).self),
            finalized: try function("MPI_Finalized", as: (@convention(c) (UnsafeMutablePointer<Int32>) -> Int32).self),
            finalize: try function("MPI_Finalize", as: (@convention(c) () -> Int32).self),
            commRank: try function("MPI_Comm_rank", as: (@convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32).self),
            commSize: try function("MPI_Comm_size", as: (@convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32).self),
            allreduce: try function("MPI_Allreduce", as: (@convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32).self),
            allgatherv: try function("MPI_Allgatherv", as: (@convention(c) (
                UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, UnsafePointer<Int32>, UnsafePointer<Int32>, Handle, Handle
            ) -> Int32).self),
            wtime: try function("MPI_Wtime", as: (@convention(c) () -> Double).self),
            // Open MPI's handles are the addresses of these objects (mpi.h's MPI_COMM_WORLD,
            // MPI_DOUBLE and MPI_SUM).
            world: try symbol("ompi_mpi_comm_world"), double: try symbol("ompi_mpi_double"), sum: try symbol("ompi_mpi_op_sum"))
    }
}
