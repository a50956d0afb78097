import Dispatch
import Foundation
import Synchronization
import Testing
@testable import Nabla

// The second compiler tier (the system C compiler at -O3, loaded with dlopen), tiered kernels
// and `nabla bench`. A cc compile takes 50-300 ms, so the suite keeps their number small
// (about 23 in all).

/// Expects every output of `actual` within 1e-12 (relative, no floor) of the interpreter's.
private func expectMatches(
    _ actual: [String: TensorData], _ reference: [String: TensorData], _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(Set(actual.keys) == Set(reference.keys), "\(what): output names", sourceLocation: sourceLocation)
    for (name, r) in reference {
        guard let c = actual[name] else { continue }
        #expect(c.shape == r.shape, "\(what): shape of \(name)", sourceLocation: sourceLocation)
        expectClose(c.scalars, r.scalars, tolerance: 1e-12, floor: 1e-300, "\(what), output \(name)", sourceLocation: sourceLocation)
    }
}

@Suite("Compiler tiers: cc kernels and tiered kernels")
struct TierTests {
    /// Every example but the seed function (tested on its own below), compiled by cc at -O3
    /// with -ffp-contract=off, agrees with the interpreter to 1e-12.
    @Test(arguments: exampleFiles().map { URL(fileURLWithPath: $0).lastPathComponent }.filter { $0 != "seed-function.nabla" })
    func ccKernelMatchesInterpreter(_ name: String) throws {
        let path = exampleFiles().first { $0.hasSuffix("/" + name) }!
        let program = try NablaProgram(contentsOfFile: path, dims: name == "rosenbrock.nabla" ? ["N": 40] : [:])
        let inputs = seededInputs(program.graph, seed: 5)
        let kernel = try Kernel(program.graph, backend: .cc)
        #expect(kernel.backend == .cc)
        // The cc tier reaches the optimised runtime through pointer slots, never by name.
        #expect(!kernel.source.code.contains("void nabla_matmul("))
        #expect(!kernel.source.code.contains("double nabla_lu_logabsdet("))
        expectMatches(try kernel(inputs), try Interpreter.evaluate(program.graph, inputs: inputs), "\(name) on cc")
    }

    /// The seed function on cc through every call path: named, ordered arrays, checked buffers
    /// with a workspace, unchecked, and the raw entry point; the values in the example file hold.
    @Test func seedFunctionThroughEveryCallPath() throws {
        let path = example("seed-function.nabla")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let program = try NablaProgram(source: text, fileName: "seed-function.nabla")
        let kernel = try Kernel(program.graph, backend: .cc)
        #expect(kernel.source.functionName.hasPrefix("nablaCCKernel"))
        let tcc = try Kernel(program.graph)
        #expect(tcc.backend == .tcc)
        let workspace = kernel.makeWorkspace()
        #expect(workspace.byteCount == kernel.workspaceBytes)
        let expectations = expectations(in: text)
        #expect(expectations.count == 4)
        for expectation in expectations {
            let x = Double(expectation.inputs["x"]!)!
            let reference = try Interpreter.evaluate(program.graph, inputs: ["x": TensorData(x)])
            let f = reference["f"]!.scalar, df = reference["df/dx"]!.scalar
            expectClose([f, df], expectation.outputs["f"]! + expectation.outputs["df/dx"]!, tolerance: 1e-13, "seed at \(x)")

            expectMatches(try kernel(["x": TensorData(x)]), reference, "named call at \(x)")
            expectClose(try kernel([[x]]).flatMap { $0 }, [f, df], tolerance: 1e-12, floor: 1e-300, "ordered call at \(x)")

            var outF = [0.0], outG = [0.0]
            try [x].withUnsafeBufferPointer { xs in
                try outF.withUnsafeMutableBufferPointer { of in
                    try outG.withUnsafeMutableBufferPointer { og in
                        try kernel.call(inputs: [xs], outputs: [of, og], workspace: workspace)
                    }
                }
            }
            expectClose([outF[0], outG[0]], [f, df], tolerance: 1e-12, floor: 1e-300, "checked buffers at \(x)")

            var input = x
            var results = [0.0, 0.0]
            results.withUnsafeMutableBufferPointer { r in
                withUnsafePointer(to: &input) { xp in
                    let ins: [UnsafePointer<Double>?] = [xp]
                    let outs: [UnsafeMutablePointer<Double>?] = [r.baseAddress!, r.baseAddress! + 1]
                    kernel.callUnchecked(inputs: ins, outputs: outs, workspace: workspace.pointer)
                }
            }
            expectClose(results, [f, df], tolerance: 1e-12, floor: 1e-300, "unchecked at \(x)")

            results = [0, 0]
            let status = results.withUnsafeMutableBufferPointer { r in
                withUnsafePointer(to: &input) { xp in
                    let ins: [UnsafePointer<Double>?] = [xp]
                    let outs: [UnsafeMutablePointer<Double>?] = [r.baseAddress!, r.baseAddress! + 1]
                    return kernel.entry(ins, outs, workspace.pointer)
                }
            }
            #expect(status == 0)
            expectClose(results, [f, df], tolerance: 1e-12, floor: 1e-300, "entry point at \(x)")
        }
        // The checked paths still check.
        #expect(throws: NablaError.self) { try kernel(["y": TensorData(1)]) }
        #expect(throws: NablaError.self) { try kernel([[1, 2]]) }
    }

    /// C the compiler rejects becomes NablaError.compilation with gcc's first error, its line
    /// and the offending C line; a failed build leaves no temporary files behind.
    @Test func compileErrorsAreReported() throws {
        let code = """
            int bad(const double *const *inputs, double *const *outputs, void *workspace) {
                (void)inputs; (void)workspace;
                outputs[0][0] = undeclared_name + 1.0;
                return 0;
            }
            """
        let source = CKernelSource(code: code, functionName: "bad", workspaceBytes: 0, inputShapes: [], outputShapes: [[]])
        do {
            _ = try Kernel(source: source, inputNames: [], outputNames: ["y"], backend: .cc)
            Issue.record("bad C compiled")
        } catch let NablaError.compilation(message, line, sourceLine) {
            #expect(message.contains("error:"), "\(message)")
            #expect(message.contains("undeclared_name"), "\(message)")
            #expect(line == 3)
            #expect(sourceLine == "outputs[0][0] = undeclared_name + 1.0;")
            let rendered = "\(NablaError.compilation(message: message, line: line, sourceLine: sourceLine))"
            #expect(rendered.hasPrefix("C compilation failed: "))
        }
        // The parser of compiler diagnostics, on gcc's and clang's forms.
        #expect(CompilerDiagnostics.parse("/tmp/x/k1.c:12:5: error: expected ';'") == (12, "error: expected ';'"))
        #expect(CompilerDiagnostics.parse("/tmp/x/k1.c:7: error: bad: thing") == (7, "error: bad: thing"))
        #expect(CompilerDiagnostics.parse("cc: fatal error: no input files") == (nil, "cc: fatal error: no input files"))
        #expect("\(CompilerDiagnostics.failure([], source: "", fallback: "cc exited with status 1 and no message"))".contains("exited with status 1"))
        // TinyCC's form, with no column.
        #expect(CompilerDiagnostics.parse("<string>:3: error: 'missing' undeclared") == (3, "error: 'missing' undeclared"))
    }

    /// cc compiles from several threads at once: each thread's kernel computes its own graph.
    @Test func concurrentCompiles() throws {
        let threads = 3
        let failures = Lock<[String]>([])
        let names = Lock<Set<String>>([])
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            do {
                let g = GraphBuilder()
                let x = try g.input("x", shape: [8])
                let c = Double(t + 2)
                let L = sum(sin(x) * c)
                let graph = try g.graph(outputs: ["L": L, "dL/dx": gradient(of: L, wrt: x)])
                let kernel = try Kernel(graph, backend: .cc)
                names.withLock { _ = $0.insert(kernel.source.functionName) }
                let xs = (0..<8).map { Double($0) * 0.1 }
                let out = try kernel([xs])
                let expected = try Interpreter.evaluate(graph, inputs: [try TensorData(shape: [8], scalars: xs)])
                if maxRelativeError(out[0] + out[1], expected[0].scalars + expected[1].scalars) > 1e-12 {
                    failures.withLock { $0.append("thread \(t): \(out)") }
                }
            } catch {
                failures.withLock { $0.append("thread \(t): \(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(names.withLock { $0.count } == threads, "every cc kernel has its own function name")
    }

    /// Calls from several threads before, during and after the upgrade, through the checked
    /// and the unchecked path, all match the interpreter; the backend ends on cc.
    @Test func tieredKernelUpgradesUnderLoad() throws {
        // A graph with scratch memory, so calls share the tiers' workspace.
        let program = try NablaProgram(contentsOfFile: example("softmax-classifier.nabla"))
        let graph = program.graph
        let kernel = try TieredKernel(graph)
        #expect(kernel.currentBackend == .tcc)
        #expect(kernel.currentKernel === kernel.baseline)
        #expect(kernel.upgradeError == nil)
        #expect(kernel.workspaceBytes == max(kernel.baseline.workspaceBytes, kernel.optimizedSource.workspaceBytes))
        #expect(kernel.workspaceBytes > 0)

        let inputs = seededInputs(graph, seed: 9)
        let reference = try Interpreter.evaluate(graph, inputs: inputs)
        expectMatches(try kernel(inputs), reference, "tiered kernel before the upgrade")

        enum Phase: Int { case before, during, after }
        let counts = Lock<[Int]>([0, 0, 0])
        let failures = Lock<[String]>([])
        let requested = Atomic<Bool>(false)
        let calls = Atomic<Int>(0)
        let deadline = Date().addingTimeInterval(60)
        let ordered = graph.inputs.map { inputs[$0.name]!.scalars }
        let expected = graph.outputs.map { reference[$0.name]!.scalars }
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            let workspace = kernel.makeWorkspace()
            var outputs = kernel.outputs.map { [Double](repeating: 0, count: $0.shape.count) }
            var afterCalls = 0
            var i = 0
            while afterCalls < 100 && Date() < deadline {
                i += 1
                // The 40th call of all, whichever thread makes it, asks for the upgrade.
                if calls.add(1, ordering: .relaxed).newValue == 40 {
                    kernel.upgrade()  // returns at once
                    requested.store(true, ordering: .releasing)
                }
                let phase: Phase = kernel.currentBackend == .cc ? .after : requested.load(ordering: .acquiring) ? .during : .before
                if phase == .after { afterCalls += 1 }
                counts.withLock { $0[phase.rawValue] += 1 }
                do {
                    let got: [[Double]]
                    if i % 2 == 0 {
                        got = try kernel(ordered)
                    } else {
                        withBuffers(ordered) { ins in
                            let inPointers = ins.map { $0.baseAddress }
                            let count = outputs.count
                            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Double>?.self, capacity: count) { outPointers in
                                for k in 0..<count {
                                    outPointers[k] = outputs[k].withUnsafeMutableBufferPointer { $0.baseAddress! }
                                }
                                kernel.callUnchecked(inputs: inPointers, outputs: outPointers.baseAddress!, workspace: workspace.pointer)
                            }
                        }
                        got = outputs
                    }
                    if maxRelativeError(got.flatMap { $0 }, expected.flatMap { $0 }) > 1e-12 {
                        failures.withLock { $0.append("thread \(t), call \(i) (\(phase)): wrong result") }
                    }
                } catch {
                    failures.withLock { $0.append("thread \(t), call \(i): \(error)") }
                }
                for k in outputs.indices { outputs[k] = [Double](repeating: 0, count: outputs[k].count) }
            }
        }
        #expect(failures.withLock { Array($0.prefix(5)) } == [])
        let phases = counts.withLock { $0 }
        #expect(phases[Phase.before.rawValue] > 0 && phases[Phase.during.rawValue] > 0 && phases[Phase.after.rawValue] > 0, "calls per phase: \(phases)")
        #expect(try kernel.waitForUpgrade() == .cc)
        #expect(kernel.currentBackend == .cc)
        #expect(kernel.currentKernel.backend == .cc)
        #expect(kernel.upgradeError == nil)
        kernel.upgrade()  // a second request changes nothing
        #expect(kernel.currentKernel.backend == .cc)
        expectMatches(try kernel(inputs), reference, "tiered kernel after the upgrade")
    }

    /// A cc tier that does not compile leaves the kernel on TinyCC, still correct, and
    /// waitForUpgrade reports the compiler's error.
    @Test func failedUpgradeStaysOnTinyCC() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3])
        let graph = try g.graph(outputs: ["y": exp(x) * 2])
        let good = try emitC(graph, options: Kernel.emitOptions(for: .tcc))
        let broken = CKernelSource(
            code: good.code.replacingOccurrences(of: "return 0;", with: "return missing_symbol_here;"),
            functionName: good.functionName, workspaceBytes: good.workspaceBytes,
            inputShapes: good.inputShapes, outputShapes: good.outputShapes)
        let kernel = try TieredKernel(baseline: good, optimized: broken, inputNames: ["x"], outputNames: ["y"], upgradeImmediately: true)
        #expect(throws: NablaError.self) { try kernel.waitForUpgrade() }
        #expect(kernel.currentBackend == .tcc)
        guard case .compilation(let message, _, _)? = kernel.upgradeError else {
            Issue.record("no upgrade error: \(String(describing: kernel.upgradeError))")
            return
        }
        #expect(message.contains("missing_symbol_here"))
        let out = try kernel(["x": try TensorData(shape: [3], scalars: [0, 1, -1])])
        expectClose(out["y"]!.scalars, [2, 2 * exp(1.0), 2 * exp(-1.0)], tolerance: 1e-15)

        // Two sources of different shapes cannot be tiers of one kernel.
        let other = try emitC(try { let h = GraphBuilder(); let z = try h.input("x", shape: [4]); return try h.graph(outputs: ["y": exp(z)]) }())
        #expect(throws: NablaError.self) {
            try TieredKernel(baseline: good, optimized: other, inputNames: ["x"], outputNames: ["y"])
        }
    }
}


@Suite("nabla bench", .serialized)
struct BenchCommandTests {
    /// Every backend of the seed function, as JSON: parseable, positive times, one object per
    /// backend with every field.
    @Test func benchAllBackendsAsJSON() throws {
        let result = try runNabla(["bench", example("seed-function.nabla"), "--backend", "all", "--format", "json", "--seconds", "0.05"])
        #expect(result.status == 0, "\(result.err)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        let backends = try #require(object["backends"] as? [[String: Any]])
        #expect(backends.map { $0["backend"] as? String } == ["interp", "tcc", "cc"])
        for entry in backends {
            let name = entry["backend"] as? String ?? "?"
            for field in ["compile_us", "call_ns", "forward_ns", "gradient_ratio", "speedup_vs_interp"] {
                let value = (entry[field] as? NSNumber)?.doubleValue ?? -1
                #expect(value > 0 && value.isFinite, "\(name).\(field) = \(String(describing: entry[field]))")
            }
            #expect((entry["compiles"] as? Int ?? 0) >= 1)
            #expect(entry["nodes"] as? Int == 19 && entry["forward_nodes"] as? Int == 9, "\(name) node counts")
            if name == "interp" {
                #expect(entry["workspace_bytes"] is NSNull)
            } else {
                #expect((entry["workspace_bytes"] as? Int).map { $0 >= 0 } == true)
            }
        }
    }

    /// The text table, one backend; a compiler that cannot run is an input error naming it.
    @Test func benchTextAndMissingCompiler() throws {
        let text = try runNabla(["bench", example("seed-function.nabla"), "--backend", "interp", "--seconds", "0.02"])
        #expect(text.status == 0, "\(text.err)")
        let lines = text.out.split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines.dropFirst().first?.hasPrefix("runtime: ") == true)
        #expect(lines.dropFirst(2).first?.hasPrefix("backend") == true)
        #expect(lines.last?.hasPrefix("interp") == true)

        let bad = try runNabla(
            ["bench", example("seed-function.nabla"), "--backend", "cc", "--seconds", "0.02"],
            settingEnvironment: ["NABLA_CC": "/nonexistent/nabla-test-cc"])
        #expect(bad.status == 2)
        #expect(bad.err.contains("cannot run the C compiler '/nonexistent/nabla-test-cc'"), "\(bad.err)")
        #expect(bad.out.isEmpty)

        let usage = try runNabla(["bench", example("seed-function.nabla"), "--backend", "gpu"])
        #expect(usage.status == 2)
    }
}
