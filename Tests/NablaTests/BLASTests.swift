import Foundation
import Testing
@testable import Nabla

/// The outputs of `nabla run --format json`, by name.
private func outputs(_ json: String) throws -> [String: [Double]] {
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: [String: Any]])
    return try object.mapValues { entry in try #require(entry["data"] as? [Double]) }
}

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// OpenBLAS (`NABLA_BLAS`, `--blas`) is process-wide, so these tests run `nabla` in child
/// processes: the in-process tests expect the runtime's own bits. CI installs OpenBLAS
/// (scripts/ensure-deps).
@Suite("OpenBLAS for large products, Cholesky factors and triangular solves")
struct BLASTests {
    /// With OpenBLAS the results are not the interpreter's bits, but within 1e-12 of them
    /// (relative to each output's largest magnitude), under the widest instruction set and
    /// AVX2 (where the thresholds differ); on files large enough to reach the library, some
    /// output differs, which shows it ran.
    @Test(arguments: [
        ("benchmarks/problems/p4-mlp.nabla", [String](), true),
        ("benchmarks/problems/p5-gp-cholesky.nabla", ["--dim", "n=400"], true),
        ("benchmarks/problems/p5-gp-cholesky.nabla", ["--dim", "n=100"], false),
        ("benchmarks/problems/p5-gp.nabla", ["--dim", "n=400"], false),  // LU: the runtime's alone
        ("examples/matrix-identities.nabla", [String](), false),
    ])
    func resultsAgreeWithTheRuntimesToRounding(_ file: String, _ dims: [String], _ reachesTheLibrary: Bool) throws {
        let arguments = ["run", root.appendingPathComponent(file).path, "--seed", "3", "--format", "json"] + dims
        for isa in ["avx512", "avx2"] {
            let own = try runNabla(arguments, settingEnvironment: ["NABLA_BLAS": "off", "NABLA_ISA": isa])
            let library = try runNabla(arguments, settingEnvironment: ["NABLA_BLAS": "openblas", "NABLA_ISA": isa])
            #expect(own.status == 0 && library.status == 0, "\(own.err)\(library.err)")
            let a = try outputs(own.out), b = try outputs(library.out)
            #expect(Set(a.keys) == Set(b.keys))
            var differs = false
            for (name, x) in a {
                let y = try #require(b[name])
                let scale = max(x.map(Swift.abs).max() ?? 0, 1e-300)
                let error = zip(x, y).map { Swift.abs($0 - $1) }.max() ?? 0
                #expect(error <= 1e-12 * scale, "\(file) \(isa) \(name): \(error / scale)")
                differs = differs || !sameBits(x, y)
            }
            if reachesTheLibrary { #expect(differs, "\(file) \(isa): OpenBLAS did not run") }
        }
    }

    /// A matrix that is not positive definite: dpotrf fails and the runtime factors it, so the
    /// NaNs are the runtime's, bit for bit.
    @Test func aMatrixThatIsNotPositiveDefiniteIsFactoredByTheRuntime() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("blas-indefinite-\(getpid()).nabla")
        try "input A: [256, 256]\noutput L = cholesky(A)\noutput s = sum(L)\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let arguments = ["run", file.path, "--seed", "5"]
        let own = try runNabla(arguments, settingEnvironment: ["NABLA_BLAS": "off"])
        let library = try runNabla(arguments + ["--blas", "openblas"])
        #expect(own.status == 0 && library.status == 0, "\(own.err)\(library.err)")
        #expect(own.out.contains("nan"))
        #expect(own.out == library.out)
    }

    /// A library that is missing or is not a BLAS is a clear error, not a crash or a silent
    /// fallback; the benchmark header names the BLAS in use.
    @Test func aMissingLibraryIsAClearErrorAndTheBenchmarkNamesTheBLAS() throws {
        let file = root.appendingPathComponent("examples/seed-function.nabla").path
        let missing = try runNabla(["run", file, "--seed", "1"], settingEnvironment: ["NABLA_BLAS": "/nonexistent/libblas.so"])
        #expect(missing.status == 2)
        #expect(missing.err.contains("error: NABLA_BLAS: cannot load the BLAS '/nonexistent/libblas.so'"), "\(missing.err)")
        let notBLAS = try runNabla(["run", file, "--seed", "1", "--blas", "libm.so.6"])
        #expect(notBLAS.status == 2)
        #expect(notBLAS.err.contains("error: --blas: the BLAS 'libm.so.6' has no 'cblas_dgemm'"), "\(notBLAS.err)")
        let bench = try runNabla(["bench", file, "--backend", "tcc", "--seconds", "0.01", "--blas", "openblas"])
        #expect(bench.status == 0, "\(bench.err)")
        #expect(bench.out.contains("BLAS libopenblas.so.0 (OpenBLAS"), "\(bench.out)")
        let off = try runNabla(["bench", file, "--backend", "tcc", "--seconds", "0.01"], settingEnvironment: ["NABLA_BLAS": "off"])
        #expect(off.out.contains("; BLAS off"), "\(off.out)")
    }
}
