import Foundation
import NablaRuntime
import Testing
@testable import Nabla

/// The runtime kernels call is optimised in every build: the package's own in release builds, a
/// copy built at first use (and cached) in debug builds, with the same results bit for bit.
@Suite("The kernels' runtime in every build")
struct RuntimeLibraryTests {
    typealias MatMul = @convention(c) (Int, Int, Int, UnsafePointer<Double>?, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?) -> Void
    typealias Factor = @convention(c) (Int, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?, UnsafeMutablePointer<Double>?) -> Int

    private func function<F>(_ name: String, in symbols: [(String, UnsafeRawPointer)], as type: F.Type) -> F {
        unsafeBitCast(symbols.first { $0.0 == name }!.1, to: type)
    }

    /// Kernels call optimised code; in a build without optimisation that is the copy built at
    /// first use, which the package's C said it was built with optimisation.
    @Test func kernelsCallOptimisedCode() throws {
        _ = try Kernel(recurrenceGraph(steps: 3))
        #expect(KernelRuntime.isOptimized, "\(KernelRuntime.origin)")
        if nabla_runtime_optimized() == 0 {
            guard case let .built(path) = KernelRuntime.origin else {
                Issue.record("an unoptimised build's kernels call \(KernelRuntime.origin)")
                return
            }
            #expect(FileManager.default.fileExists(atPath: path) || !path.contains("/.cache/"))
        } else {
            #expect(KernelRuntime.origin == .linkedOptimized)
        }
    }

    /// The runtime in use and the package's own compute the same bits: matrix products over
    /// tile edges, and LU factors, special values included.
    @Test func everyCopyGivesTheSameBits() throws {
        let used = KernelRuntime.symbols, linked = RuntimeSymbols.linked
        #expect(used.map(\.0) == linked.map(\.0))
        var state: UInt64 = 7
        func next() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53) * 2 - 1
        }
        for (m, k, n) in [(1, 1, 1), (17, 33, 9), (64, 130, 48), (5, 300, 77)] {
            var a = (0..<(m * k)).map { _ in next() }, b = (0..<(k * n)).map { _ in next() }
            a[0] = -0.0
            b[b.count - 1] = .infinity
            var c1 = [Double](repeating: 0, count: m * n), c2 = c1
            function("nabla_matmul", in: used, as: MatMul.self)(m, k, n, a, b, &c1)
            function("nabla_matmul", in: linked, as: MatMul.self)(m, k, n, a, b, &c2)
            #expect(sameBits(c1, c2), "\(m)x\(k)x\(n): \(firstDifference(c1, c2))")
        }
        for size in [3, 20, 61] {
            let a = (0..<(size * size)).map { _ in next() }
            var f1 = [Double](repeating: 0, count: size * size), f2 = f1, p1 = [Double](repeating: 0, count: size), p2 = p1
            let s1 = function("nabla_lu_factor", in: used, as: Factor.self)(size, a, &f1, &p1)
            let s2 = function("nabla_lu_factor", in: linked, as: Factor.self)(size, a, &f2, &p2)
            #expect(s1 == s2 && sameBits(f1, f2) && sameBits(p1, p2), "n = \(size): \(firstDifference(f1, f2))")
        }
    }

    /// The copy's name follows everything it is built from.
    @Test func theCacheNameFollowsCompilerAndSources() {
        #expect(KernelRuntime.fingerprint(["cc", "-O3"]) == KernelRuntime.fingerprint(["cc", "-O3"]))
        #expect(KernelRuntime.fingerprint(["cc", "-O3"]) != KernelRuntime.fingerprint(["clang", "-O3"]))
        #expect(KernelRuntime.fingerprint(["cc", "-O3"]) != KernelRuntime.fingerprint(["cc-O3"]))
        #expect(KernelRuntime.fingerprint([]).count == 16)
        #expect(RuntimeSource.files.contains { $0.path == "nabla_runtime.c" && $0.text.contains("nabla_matmul") })
        #expect(RuntimeSource.files.contains { $0.path == "include/nabla_runtime.h" })
    }

    /// Seen from the command line: a first process builds the copy into the cache, a second
    /// loads the same file; without a compiler the process goes on with the package's code and
    /// says why. (Only where the package's own runtime is unoptimised, as in debug builds.)
    @Test func processesShareTheCachedCopy() throws {
        guard nabla_runtime_optimized() == 0 else { return }
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("nabla-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let file = example("seed-function.nabla")
        let arguments = ["bench", file, "--backend", "tcc", "--seconds", "0.01"]
        let first = try runNabla(arguments, settingEnvironment: ["NABLA_CACHE_DIR": cache.path])
        #expect(first.status == 0, "\(first.err)")
        let built = try FileManager.default.contentsOfDirectory(atPath: cache.path).filter { $0.hasSuffix(".so") }
        #expect(built.count == 1)
        #expect(first.out.contains("runtime: an optimised copy built at first use (\(cache.path)/\(built.first ?? "?"))"), "\(first.out)")
        let modified = try FileManager.default.attributesOfItem(atPath: cache.appendingPathComponent(built[0]).path)[.modificationDate] as? Date
        let second = try runNabla(arguments, settingEnvironment: ["NABLA_CACHE_DIR": cache.path])
        #expect(second.status == 0 && second.out.contains(built[0]), "\(second.out)\(second.err)")
        #expect(try FileManager.default.attributesOfItem(atPath: cache.appendingPathComponent(built[0]).path)[.modificationDate] as? Date == modified)

        // A cached file that cannot be loaded (a truncated write, say) is built again.
        let library = cache.appendingPathComponent(built[0]).path
        try Data("not a library".utf8).write(to: URL(fileURLWithPath: library))
        let rebuilt = try runNabla(arguments, settingEnvironment: ["NABLA_CACHE_DIR": cache.path])
        #expect(rebuilt.status == 0 && rebuilt.out.contains("runtime: an optimised copy built at first use (\(library))"), "\(rebuilt.out)\(rebuilt.err)")
        #expect(((try? FileManager.default.attributesOfItem(atPath: library)[.size] as? Int) ?? 0) > 1000)

        let empty = cache.appendingPathComponent("empty")
        let noCompiler = try runNabla(
            ["run", file, "--input", "x=0.5"],
            settingEnvironment: ["NABLA_CACHE_DIR": empty.path, "NABLA_CC": "/nonexistent/nabla-test-cc"])
        let withCompiler = try runNabla(["run", file, "--input", "x=0.5"], settingEnvironment: ["NABLA_CACHE_DIR": cache.path])
        #expect(noCompiler.status == 0, "\(noCompiler.err)")
        #expect(noCompiler.out == withCompiler.out)
        let bench = try runNabla(arguments, settingEnvironment: ["NABLA_CACHE_DIR": empty.path, "NABLA_CC": "/nonexistent/nabla-test-cc"])
        #expect(bench.out.contains("runtime: the package's own build, unoptimised: cannot run the C compiler"), "\(bench.out)")
    }
}
