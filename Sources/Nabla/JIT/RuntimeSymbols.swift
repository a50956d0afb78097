import NablaRuntime

/// Nabla's runtime functions (runtime/) that generated C may call, by name. TinyCC kernels link
/// them with tcc_add_symbol; kernels built by the system compiler get their addresses through
/// pointer slots filled after loading.
enum RuntimeSymbols {
    /// The functions kernels call: optimised ones (see `KernelRuntime`).
    static var all: [(String, UnsafeRawPointer)] { KernelRuntime.symbols }

    /// The functions as the package build compiled them (with optimisation in release builds).
    nonisolated(unsafe) static let linked: [(String, UnsafeRawPointer)] = [
        ("nabla_matmul", unsafeBitCast(nabla_matmul as @convention(c) (Int, Int, Int, UnsafePointer<Double>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_lu_factor", unsafeBitCast(nabla_lu_factor as @convention(c) (Int, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?, UnsafeMutablePointer<Double>?) -> Int, to: UnsafeRawPointer.self)),
        ("nabla_lu_apply", unsafeBitCast(nabla_lu_apply as @convention(c) (Int, Int, UnsafePointer<Double>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_lu_apply_transposed", unsafeBitCast(nabla_lu_apply_transposed as @convention(c) (Int, Int, UnsafePointer<Double>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?, Int) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_lu_det", unsafeBitCast(nabla_lu_det as @convention(c) (Int, UnsafePointer<Double>?, UnsafePointer<Double>?) -> Double, to: UnsafeRawPointer.self)),
        ("nabla_lu_adjugate", unsafeBitCast(nabla_lu_adjugate as @convention(c) (Int, UnsafePointer<Double>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_lu_logabsdet", unsafeBitCast(nabla_lu_logabsdet as @convention(c) (Int, UnsafePointer<Double>?) -> Double, to: UnsafeRawPointer.self)),
        ("nabla_cholesky", unsafeBitCast(nabla_cholesky as @convention(c) (Int, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_cholesky_adjoint", unsafeBitCast(nabla_cholesky_adjoint as @convention(c) (Int, UnsafePointer<Double>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_triangular_solve", unsafeBitCast(nabla_triangular_solve as @convention(c) (Int, Int, UnsafePointer<Double>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?, Int, Int) -> Void, to: UnsafeRawPointer.self)),
        // Parallel loops' blocks (`LoopIR.ParallelLoop`) run on the runtime's thread pool.
        ("nabla_parallel", unsafeBitCast(nabla_parallel as @convention(c) (Int, (@convention(c) (UnsafeMutableRawPointer?, Int) -> Void)?, UnsafeMutableRawPointer?) -> Void, to: UnsafeRawPointer.self)),
        // Called by the definitions above in standalone C (declared by kernels that call those).
        ("nabla_lu_panel", unsafeBitCast(nabla_lu_panel as @convention(c) (Int, UnsafeMutablePointer<Double>?, UnsafeMutablePointer<Double>?, Int, Int) -> Int, to: UnsafeRawPointer.self)),
        ("nabla_lu_panel_rows", unsafeBitCast(nabla_lu_panel_rows as @convention(c) (Int, UnsafeMutablePointer<Double>?, UnsafePointer<Double>?, Int, Int) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_lu_update_rows", unsafeBitCast(nabla_lu_update_rows as @convention(c) (Int, UnsafeMutablePointer<Double>?, Int, Int, Int, Int) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_lu_finish", unsafeBitCast(nabla_lu_finish as @convention(c) (Int, UnsafeMutablePointer<Double>?, UnsafePointer<Double>?) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_lu_transposed_prepare", unsafeBitCast(nabla_lu_transposed_prepare as @convention(c) (Int, Int, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?, Int) -> Int, to: UnsafeRawPointer.self)),
        ("nabla_lu_apply_transposed_columns", unsafeBitCast(nabla_lu_apply_transposed_columns as @convention(c) (Int, Int, UnsafePointer<Double>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?, Int, Int, Int) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_triangular_solve_columns", unsafeBitCast(nabla_triangular_solve_columns as @convention(c) (Int, Int, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?, Int, Int, Int, Int) -> Void, to: UnsafeRawPointer.self)),
        // Not called by kernels: the controls of the runtime's thread pool (`KernelRuntime.threadCount`).
        ("nabla_threads", unsafeBitCast(nabla_threads as @convention(c) () -> Int32, to: UnsafeRawPointer.self)),
        ("nabla_set_threads", unsafeBitCast(nabla_set_threads as @convention(c) (Int32) -> Void, to: UnsafeRawPointer.self)),
        // Not called by kernels: the optional BLAS (`KernelRuntime.useBLAS`).
        ("nabla_set_blas", unsafeBitCast(nabla_set_blas as @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void, to: UnsafeRawPointer.self)),
        ("nabla_blas_installed", unsafeBitCast(nabla_blas_installed as @convention(c) () -> Int32, to: UnsafeRawPointer.self)),
    ]
}
