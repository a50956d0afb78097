import Foundation
import Testing
@testable import Nabla

// Hostile graph files through the public API: each of the fuzzer's seed files (fuzz/seeds/)
// either compiles to a kernel that agrees with the interpreter, with values checked here, or
// is refused with an error located where it should be. Then inputs larger than the fuzzer runs
// (it stops at 4096 bytes). Inputs that still crash or exhaust the process are listed in
// fuzz/known-issues/ instead.

/// The repository's fuzz/seeds folder.
private let seedFolder = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fuzz/seeds")

/// What a seed file must give.
private enum Outcome {
    /// It compiles; the kernel matches the interpreter and `check` holds for the outputs,
    /// given the inputs.
    case runs(check: @Sendable (_ outputs: [String: TensorData], _ inputs: [String: TensorData]) -> Void)
    /// It is refused; the first error is at `line`:`column` and its message contains `message`.
    case error(line: Int, column: Int, message: String)
}

/// Every seed file and what it must give.
private let seedOutcomes: [String: Outcome] = [
    // Nothing in the file: an empty program.
    "empty.nabla": .runs { outputs, _ in #expect(outputs.isEmpty) },
    "blank.nabla": .runs { outputs, _ in #expect(outputs.isEmpty) },
    "only-comment.nabla": .runs { outputs, _ in #expect(outputs.isEmpty) },
    // Chains and nesting within the limits.
    "deep-chain.nabla": .runs { outputs, inputs in
        let x = inputs["x"]!.scalar
        var a = x, da = 1.0
        for _ in 0..<150 { (a, da) = (Foundation.sin(a) * 0.5 + x, Foundation.cos(a) * 0.5 * da + 1) }
        expectClose(outputs["y"]!.scalar, a, tolerance: 1e-12, "y")
        expectClose(outputs["dy/dx"]!.scalar, da, tolerance: 1e-12, "dy/dx")
    },
    "nesting-at-limit.nabla": .runs { outputs, inputs in
        #expect(outputs["y"]!.scalar == inputs["x"]!.scalar)
        #expect(outputs["dy/dx"]!.scalar == 1)
    },
    "nesting-calls.nabla": .runs { outputs, inputs in
        var y = inputs["x"]!.scalar, dy = 1.0
        for _ in 0..<200 { (y, dy) = (Foundation.sin(y), Foundation.cos(y) * dy) }
        expectClose(outputs["y"]!.scalar, y, tolerance: 1e-12, "y")
        expectClose(outputs["dy/dx"]!.scalar, dy, tolerance: 1e-12, "dy/dx")
    },
    "transpose-chain.nabla": .runs { outputs, inputs in
        // 999 transposes: an odd number, so one.
        let a = inputs["A"]!.scalars, b = outputs["B"]!
        #expect(b.shape == [3, 2])
        let transposed: [Double] = (0..<6).map { (k: Int) -> Double in a[(k % 2) * 3 + k / 2] }
        #expect(b.scalars == transposed)
    },
    "long-line.nabla": .runs { outputs, inputs in
        // sum([0, 1, ..., 799] * x): 319600 x.
        expectClose(outputs["y"]!.scalar, 319_600 * inputs["x"]!.scalar, tolerance: 1e-12, "y")
        #expect(outputs["dy/dx"]!.scalar == 319_600)
    },
    "long-name.nabla": .runs { outputs, inputs in
        #expect(outputs["y"]!.scalar == inputs[String(repeating: "n", count: 1900)]!.scalar)
    },
    "long-comment.nabla": .runs { outputs, inputs in #expect(outputs["y"]!.scalar == inputs["x"]!.scalar) },
    // Names that are C keywords, libc or libm functions, or the kernel's own identifiers.
    "c-keyword-names.nabla": .runs { outputs, inputs in
        expectClose(outputs["result"]!.scalar, inputs.values.map(\.scalar).reduce(0, +), tolerance: 1e-12, "result")
        let gradients = outputs.filter { $0.key.hasPrefix("dresult/d") }
        #expect(gradients.count == 20)
        #expect(gradients.values.allSatisfy { $0.scalar == 1 })
    },
    "c-keyword-bindings.nabla": .runs { outputs, inputs in
        let x = inputs["x"]!.scalars
        #expect(outputs["exit"]!.scalars == x.map { $0 * 2 })
        expectClose(outputs["printf"]!.scalar, 2 * x.reduce(0, +), tolerance: 1e-12, "printf")
        #expect(outputs["dprintf/dx"]!.scalars == [2, 2])
    },
    "libm-names.nabla": .runs { outputs, inputs in
        expectClose(outputs["y"]!.scalar, 190 * inputs["x"]!.scalar, tolerance: 1e-12, "y")
        #expect(outputs["dy/dx"]!.scalar == 190)
    },
    // Odd layout that is still valid.
    "tabs-and-semicolons.nabla": .runs { outputs, inputs in
        let x = inputs["x"]!.scalar, y = inputs["y"]!.scalars
        expectClose(outputs["z"]!.scalar, y.reduce(0, +) * x, tolerance: 1e-12, "z")
        #expect(outputs["dz/dy"]!.scalars == [x, x])
    },
    "dims-as-values.nabla": .runs { outputs, inputs in
        expectClose(outputs["y"]!.scalar, inputs["x"]!.scalars.reduce(0, +) / 3 + 6, tolerance: 1e-12, "y")
        #expect(outputs["dy/dx"]!.scalars == [Double](repeating: 1.0 / 3, count: 6))
    },
    "derivative-wrt-constant.nabla": .runs { outputs, inputs in
        let x = inputs["x"]!.scalar
        #expect(outputs["y"]!.scalar == 3 * x)
        #expect(outputs["dy/dc"]!.scalar == x)
        #expect(outputs["dy/dx.x"]!.scalar == 3 * x)
    },
    // Overflow, empty tensors and singular matrices give IEEE values, not crashes.
    "huge-list.nabla": .runs { outputs, _ in
        #expect(outputs["c"]!.scalars == [Double](repeating: 1e308, count: 500))
        #expect(outputs["s"]!.scalar == .infinity)
    },
    "zero-sizes.nabla": .runs { outputs, _ in
        #expect(outputs["s"]!.scalar == 0)
        #expect(outputs["d"]!.scalar == 1)
        #expect(outputs["l"]!.scalar == 0)
        #expect(outputs["i"]!.shape == [0, 0])
        #expect(outputs["ds/dx"]!.shape == [0])
    },
    "singular.nabla": .runs { outputs, _ in
        #expect(outputs["d"]!.scalar == 0)
        #expect(outputs["l"]!.scalar == -.infinity)
        #expect(outputs["i"]!.scalars.allSatisfy { !$0.isFinite })
        #expect(outputs["s"]!.scalars.allSatisfy { !$0.isFinite })
    },
    // Every operation family with derivatives, on small shapes: all outputs there and finite.
    "ops-shapes.nabla": .runs { outputs, _ in expectFinite(outputs, ["L", "dL/dA", "dL/dB", "dL/dv", "dL/dw", "dL/dT"]) },
    "ops-reductions.nabla": .runs { outputs, _ in expectFinite(outputs, ["L", "dL/dX", "dL/dy", "d2L/dy2"]) },
    "ops-linalg.nabla": .runs { outputs, _ in expectFinite(outputs, ["L", "dL/dA", "dL/db", "dL/dB", "dL/db.b"]) },
    "ops-elementwise.nabla": .runs { outputs, _ in
        expectFinite(outputs, ["L", "dL/dx", "dL/dM", "dL/dt", "taylor(L/t)", "d2L/dx2.x"])
    },
    // Branches and loops, nested, with every derivative directive through them.
    "loops.nabla": .runs { outputs, _ in expectFinite(outputs, ["L", "m", "dL/dx", "dL/da", "d2L/dx2"]) },
    // Refused, with the first error where it belongs.
    "builtin-rebinding.nabla": .error(line: 2, column: 1, message: "'sin' is a built-in function and cannot be rebound"),
    "reserved-words.nabla": .error(line: 1, column: 7, message: "'dim', which is reserved"),
    "concat-mismatch.nabla": .error(line: 3, column: 12, message: "cannot concatenate shapes [2], [3, 1]"),
    "control-chars.nabla": .error(line: 1, column: 8, message: "unexpected character"),
    "nul-bytes.nabla": .error(line: 1, column: 8, message: "unexpected character"),
    "cr-only.nabla": .error(line: 1, column: 9, message: "expected end of statement"),
    // Given as text, a byte-order mark is a character like any other (reading the file
    // drops it: see byteOrderMarkIsDroppedWhenRead).
    // A leading byte-order mark is dropped, CRLF line ends are line ends.
    "bom-crlf.nabla": .runs { outputs, inputs in
        let x = inputs["x"]!.scalar
        #expect(outputs["y"]!.scalar == x * x && outputs["dy/dx"]!.scalar == 2 * x)
    },
    "derivative-of-nonscalar.nabla": .error(line: 3, column: 6, message: "'grad' needs a scalar"),
    "dim-overflow.nabla": .error(line: 1, column: 9, message: "integer overflow"),
    "duplicate-outputs.nabla": .error(line: 3, column: 8, message: "'y' is already declared"),
    "empty-list.nabla": .error(line: 3, column: 12, message: "the rows of this list have different shapes"),
    "huge-axis.nabla": .error(line: 2, column: 19, message: "is too large for a size, index or axis"),
    "huge-dim.nabla": .error(line: 1, column: 9, message: "is too large for a size, index or axis"),
    "huge-dim-literal.nabla": .error(line: 1, column: 9, message: "is too large for a size, index or axis"),
    "huge-eye.nabla": .error(line: 1, column: 12, message: "would embed 4294967296^2 elements"),
    "huge-index.nabla": .error(line: 2, column: 14, message: "is too large for a size, index or axis"),
    "huge-literals.nabla": .error(line: 2, column: 32, message: "out of range for a double"),
    "huge-reshape.nabla": .error(line: 2, column: 24, message: "is too large for a size, index or axis"),
    "huge-taylor-order.nabla": .error(line: 3, column: 27, message: "must be between 0 and 32"),
    "long-line-error.nabla": .error(line: 2, column: 4012, message: "unknown name 'unknown_name'"),
    "nesting-over-limit.nabla": .error(line: 2, column: 268, message: "nested too deeply"),
    "unary-minus-chain.nabla": .error(line: 2, column: 268, message: "nested too deeply"),
    "number-edges.nabla": .error(line: 2, column: 27, message: "expected end of statement"),
    "slices-every-way.nabla": .error(line: 8, column: 12, message: "step -1 must be positive"),
    "unicode-names.nabla": .error(line: 1, column: 7, message: "unexpected character 'θ'"),
    "unicode-confusables.nabla": .error(line: 1, column: 7, message: "unexpected character 'θ'"),
    "unicode-junk.nabla": .error(line: 1, column: 8, message: "unexpected character"),
    "unterminated.nabla": .error(line: 1, column: 12, message: "expected ']' to close the shape"),
    // Invalid UTF-8, decoded leniently (each bad byte becomes U+FFFD).
    "non-utf8.nabla": .error(line: 1, column: 8, message: "unexpected character '\u{FFFD}'"),
    "non-utf8-names.nabla": .error(line: 1, column: 7, message: "unexpected character 'θ'"),
]

/// Expects exactly the outputs `names`, every element finite.
private func expectFinite(_ outputs: [String: TensorData], _ names: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(Set(outputs.keys) == Set(names), sourceLocation: sourceLocation)
    for (name, value) in outputs {
        let finite = value.scalars.allSatisfy { $0.isFinite }
        #expect(finite, "\(name): \(value.scalars.prefix(8))", sourceLocation: sourceLocation)
    }
}

/// The file's bytes as text, invalid UTF-8 replaced by U+FFFD (as the fuzzer gives it).
private func seedText(_ name: String) throws -> String {
    let data = try Data(contentsOf: seedFolder.appendingPathComponent(name))
    return String(decoding: data, as: UTF8.self)
}

/// Inputs uniform in [-1, 1] from a fixed seed.
private func seeded(_ graph: Graph) -> [String: TensorData] {
    var rng = SeededRandom(seed: 11)
    var inputs: [String: TensorData] = [:]
    for port in graph.inputs { inputs[port.name] = TensorData.random(graph.nodes[port.node].shape, in: -1...1, using: &rng) }
    return inputs
}

/// Expects `text` to be refused with every diagnostic inside the file and rendered with its
/// location, the first error at `line`:`column` with `message` in its text.
private func expectLocatedError(
    _ text: String, line: Int, column: Int, message: String, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        let program = try NablaProgram(source: text, fileName: "nasty.nabla")
        Issue.record("\(what) compiled (\(program.graph.outputs.count) outputs); expected an error", sourceLocation: sourceLocation)
    } catch let errors as SourceErrors {
        let size = text.utf8.count
        #expect(errors.diagnostics.allSatisfy { $0.span.start >= 0 && $0.span.end <= size }, "\(what): a span outside the file", sourceLocation: sourceLocation)
        guard let first = errors.diagnostics.first(where: { $0.severity == .error }) else {
            Issue.record("\(what): SourceErrors without an error", sourceLocation: sourceLocation)
            return
        }
        let location = errors.file.location(of: first.span.start)
        #expect(location.line == line && location.column == column, "\(what): first error at \(location), \(first.message)", sourceLocation: sourceLocation)
        #expect(first.message.contains(message), "\(what): \(first.message)", sourceLocation: sourceLocation)
        #expect(errors.description.contains("nasty.nabla:\(line):\(column): error: "), "\(what)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(what): expected SourceErrors, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Nasty inputs: the fuzzer's seeds and larger")
struct NastyInputTests {
    /// Every seed file has an expected outcome here, and every outcome a file.
    @Test func everySeedIsClassified() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: seedFolder.path).filter { $0.hasSuffix(".nabla") }
        let unclassified = Set(files).subtracting(seedOutcomes.keys).sorted()
        let missing = Set(seedOutcomes.keys).subtracting(files).sorted()
        #expect(unclassified.isEmpty, "seed files with no outcome here: \(unclassified)")
        #expect(missing.isEmpty, "outcomes here with no seed file: \(missing)")
    }

    @Test(arguments: seedOutcomes.keys.sorted())
    func seed(_ name: String) throws {
        let text = try seedText(name)
        switch seedOutcomes[name]! {
        case .error(let line, let column, let message):
            expectLocatedError(text, line: line, column: column, message: message, name)
        case .runs(let check):
            let program = try NablaProgram(source: text, fileName: name)
            let inputs = seeded(program.graph)
            let reference = try expectKernelMatchesInterpreter(program.graph, inputs)
            check(reference, inputs)
        }
    }

    /// Read from disk, a file that is not UTF-8 is refused with the place of its first bad
    /// byte, not crashed on.
    @Test func invalidUTF8FileIsRefusedWhenRead() {
        for name in ["non-utf8.nabla", "non-utf8-names.nabla"] {
            do {
                _ = try NablaProgram(contentsOfFile: seedFolder.appendingPathComponent(name).path)
                Issue.record("\(name) compiled")
            } catch let errors as SourceErrors {
                #expect(errors.description.contains("\(name):1:8: error: the file is not valid UTF-8 text"), "\(errors)")
            } catch {
                Issue.record("\(name): \(error)")
            }
        }
    }

    /// Read from disk, a leading byte-order mark is dropped and CRLF line ends are line ends.
    @Test func byteOrderMarkIsDroppedWhenRead() throws {
        let program = try NablaProgram(contentsOfFile: seedFolder.appendingPathComponent("bom-crlf.nabla").path)
        let out = try Kernel(program.graph)(["x": TensorData(1.5)])
        #expect(out["y"]!.scalar == 2.25)
        #expect(out["dy/dx"]!.scalar == 3)
    }

    /// Nesting far past the limit is refused where the limit is crossed, however deep it goes.
    @Test func nestingFarPastTheLimit() {
        let depth = 20_000
        let parentheses = "input x\noutput y = " + String(repeating: "(", count: depth) + "x" + String(repeating: ")", count: depth) + "\n"
        expectLocatedError(parentheses, line: 2, column: 268, message: "nested too deeply", "\(depth) parentheses")
        let minus = "input x\noutput y = " + String(repeating: "-", count: depth) + "x\n"
        expectLocatedError(minus, line: 2, column: 268, message: "nested too deeply", "\(depth) minus signs")
        let calls = "input x\noutput y = " + String(repeating: "sin(", count: depth) + "x" + String(repeating: ")", count: depth) + "\n"
        expectLocatedError(calls, line: 2, column: 1036, message: "nested too deeply", "\(depth) nested calls")
    }

    /// A name of 100 000 characters becomes a C identifier TinyCC accepts.
    @Test func hundredThousandCharacterName() throws {
        let name = String(repeating: "n", count: 100_000)
        let program = try NablaProgram(source: "input \(name)\noutput y = 2 * \(name)\ngrad y wrt \(name)\n", fileName: "long.nabla")
        let out = try Kernel(program.graph)([name: TensorData(0.25)])
        #expect(out["y"]!.scalar == 0.5)
        #expect(out["dy/d\(name)"]!.scalar == 2)
    }

    /// 32 KiB of random bytes: refused with located errors, whatever they are.
    @Test func randomBytes() {
        var rng = SeededRandom(seed: 3)
        for round in 0..<2 {
            let bytes = (0..<(1 << 15)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let text = String(decoding: bytes, as: UTF8.self)
            do {
                _ = try NablaProgram(source: text, fileName: "random.nabla")
                Issue.record("random bytes, round \(round), compiled")
            } catch let errors as SourceErrors {
                #expect(errors.diagnostics.allSatisfy { $0.span.start >= 0 && $0.span.end <= text.utf8.count })
                #expect(errors.description.contains("random.nabla:"))
            } catch {
                Issue.record("round \(round): expected SourceErrors, got \(error)")
            }
        }
    }
}

/// Inputs the fuzzer and the hostile seeds found bugs with, kept once fixed: each either runs
/// (kernel against interpreter) or stops with its located error, quickly.
@Suite("Fuzzer regressions")
struct FuzzRegressionTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz/regressions")

    /// The error each refused file must give, by file name; the others must run.
    static let errors: [String: (line: Int, column: Int, message: String)] = [
        "jacobian-over-limit.nabla": (3, 16, "the jacobian would have shape [20000, 20000]"),
        "recursive-def.nabla": (1, 12, "recursive function 'f': f -> f"),
        "self-reference.nabla": (1, 12, "'z' is used in its own definition"),
    ]

    @Test(arguments: (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?.filter { $0.hasSuffix(".nabla") }.sorted() ?? [])
    func regression(_ name: String) throws {
        let path = Self.folder.appendingPathComponent(name).path
        if let expected = Self.errors[name] {
            do {
                _ = try NablaProgram(contentsOfFile: path)
                Issue.record("\(name) compiled")
            } catch let errors as SourceErrors {
                #expect(errors.description.contains("\(name):\(expected.line):\(expected.column): error: \(expected.message)"), "\(errors)")
            }
            return
        }
        let program = try NablaProgram(contentsOfFile: path)
        var rng = SeededRandom(seed: 3)
        var inputs: [String: TensorData] = [:]
        for port in program.graph.inputs { inputs[port.name] = .random(program.graph.nodes[port.node].shape, in: 0.5...1, using: &rng) }
        try expectKernelMatchesInterpreter(program.graph, inputs)
    }

    @Test func everyRegressionIsHere() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { $0.hasSuffix(".nabla") }
        #expect(files.count >= 10)
        #expect(Set(Self.errors.keys).isSubset(of: files))
    }
}
