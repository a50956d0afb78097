import CFuzzerDriver
import Foundation
import Nabla

// libFuzzer drives this executable (FuzzMain hands it the harness). Every input is a graph
// file, taken through the whole path a user's file takes:
//
//   bytes -> NablaProgram (lex, parse, elaborate, derivative directives)
//         -> derivatives the harness adds (a gradient of the first scalar output)
//         -> emitC -> TinyCC (runtime-calling C and standalone C)
//         -> one call on small seeded inputs, compared with Interpreter.evaluate.
//
// Inputs the front end refuses are salvaged by deleting the lines their errors start on, so
// that most mutations still reach the back end.
//
// A finding is a crash anywhere on that path (a trap, an AddressSanitizer report), or a broken
// promise the harness checks: an error without a location inside the file, generated C that
// TinyCC rejects, a kernel that fails or disagrees with the interpreter. Findings trap, so
// libFuzzer saves the input. Work per input is bounded: inputs over `FuzzLimits.inputBytes`
// are skipped, and graphs over the node or element budget are elaborated but not compiled.

/// Hands the harness to libFuzzer's driver, which reads libFuzzer's usual flags and corpus
/// directories from the command line.
@main
enum FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput))
    }
}

/// libFuzzer's entry point: runs one input. Returns 0, or -1 for inputs not worth keeping in
/// the corpus (over the size limit).
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size <= FuzzLimits.inputBytes else { return -1 }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzCase(bytes: bytes).run()
    return 0
}

/// What one input may cost.
enum FuzzLimits {
    /// Longest input run (libFuzzer's -max_len should be the same).
    static let inputBytes = 4096
    /// Most nodes of a graph that is compiled and run.
    static let nodes = 3000
    /// Most elements of any one tensor of a graph that is compiled and run.
    static let elementsPerTensor = 1 << 16
    /// Most elements of all the tensors of such a graph together.
    static let totalElements = 1 << 20
    /// Most rounds of deleting the lines errors point at (see `FuzzCase.salvage`).
    static let salvageRounds = 4
}

/// One fuzz input and the checks made on it.
struct FuzzCase {
    let bytes: [UInt8]
    static let fileName = "fuzz.nabla"

    /// Takes the input as far along the path as it goes.
    func run() {
        // Invalid UTF-8 becomes U+FFFD, as a lenient reader would give it to the front end.
        let text = String(decoding: bytes, as: UTF8.self)
        guard let (valid, program) = salvage(text) else { return }
        check(program)
        if let augmented = withAddedGradient(valid, program) {
            check(elaborateAugmented(augmented))
        }
    }

    /// The program in `text`, or, when the front end refuses it, the program left after
    /// deleting the lines its errors start on: a few rounds, since deleting a binding turns its
    /// uses into errors. Most mutated inputs are refused somewhere; this way most of them still
    /// reach the back end. Nil when nothing compiles.
    func salvage(_ text: String) -> (text: String, program: NablaProgram)? {
        var current = text
        for _ in 0..<FuzzLimits.salvageRounds {
            do {
                return (current, try NablaProgram(source: current, fileName: FuzzCase.fileName))
            } catch let errors as SourceErrors {
                checkLocated(errors, in: current)
                let lines = errors.diagnostics.map { errors.file.location(of: $0.span.start).line }
                guard let shorter = deletingLines(lines, from: current) else { return nil }
                current = shorter
            } catch {
                finding("the front end threw an error that is not SourceErrors", "\(type(of: error)): \(error)")
            }
        }
        return nil
    }

    /// `text` without its 1-based `lines` (split at line feeds, as diagnostics count lines),
    /// or nil if that deletes nothing.
    func deletingLines(_ lines: [Int], from text: String) -> String? {
        let doomed = Set(lines)
        let all = Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let kept = all.enumerated().filter { !doomed.contains($0.offset + 1) }.map(\.element)
        guard kept.count < all.count else { return nil }
        return String(decoding: Array(kept.joined(separator: [UInt8(ascii: "\n")])), as: UTF8.self)
    }

    /// The program in `text`, which is a valid program plus a valid directive: any error is a
    /// finding.
    func elaborateAugmented(_ text: String) -> NablaProgram {
        do {
            return try NablaProgram(source: text, fileName: FuzzCase.fileName)
        } catch let errors as SourceErrors {
            finding("a derivative directive added to a valid program was refused", "\(errors)\n--- text:\n\(text)")
        } catch {
            finding("the front end threw an error that is not SourceErrors", "\(type(of: error)): \(error)")
        }
    }

    /// Every diagnostic has a span inside the file, and the errors render.
    func checkLocated(_ errors: SourceErrors, in text: String) {
        let size = text.utf8.count
        guard errors.diagnostics.contains(where: { $0.severity == .error }) else {
            finding("SourceErrors thrown without an error diagnostic", "\(errors.diagnostics)")
        }
        for diagnostic in errors.diagnostics where !(0...size).contains(diagnostic.span.start) || diagnostic.span.end > size {
            finding("a diagnostic's span lies outside the file", "span \(diagnostic.span) in \(size) bytes: \(diagnostic.message)")
        }
        let rendered = errors.description
        guard rendered.contains(FuzzCase.fileName + ":") else { finding("errors render without a location", rendered) }
    }

    /// `text` with `grad L wrt <every input>` appended, for the first scalar output L that
    /// is not a derivative, when the program has inputs and no derivative directive yet.
    func withAddedGradient(_ text: String, _ program: NablaProgram) -> String? {
        guard program.derivatives.isEmpty, !program.graph.inputs.isEmpty else { return nil }
        let graph = program.graph
        guard let scalar = graph.outputs.first(where: { graph.nodes[$0.node].shape.isScalar }) else { return nil }
        let variables = graph.inputs.map(\.name).joined(separator: ", ")
        return text + "\ngrad \(scalar.name) wrt \(variables)\n"
    }

    /// Compiles and runs the program's graph when it is within budget, and compares each
    /// kernel with the interpreter.
    func check(_ program: NablaProgram) {
        programUnderCheck = program.file.text
        defer { programUnderCheck = nil }
        let graph = program.graph
        guard withinBudget(graph) else { return }
        let inputs = seededInputs(graph)
        let reference: [String: TensorData]
        do {
            reference = try Interpreter.evaluate(graph, inputs: inputs)
        } catch {
            finding("the interpreter refused inputs of the declared shapes", "\(error)")
        }
        let variants: [(String, CEmitOptions?)] = [
            ("TinyCC kernel (runtime calls)", nil), ("TinyCC kernel (standalone C)", .standalone),
        ]
        for (label, options) in variants {
            let kernel = compile(graph, options)
            let outputs: [String: TensorData]
            do {
                outputs = try kernel(inputs)
            } catch {
                finding("\(label) failed when called", "\(error)")
            }
            compare(outputs, reference, graph, label)
        }
    }

    /// True when the graph is small enough to compile and run for every input.
    func withinBudget(_ graph: Graph) -> Bool {
        guard graph.nodes.count <= FuzzLimits.nodes else { return false }
        var total = 0
        for node in graph.nodes {
            guard let count = elementCount(node.shape) else {
                finding("a tensor's element count overflows Int", "shape \(node.shape.dims)")
            }
            if count > NablaProgram.maximumElements {
                finding("the front end accepted a tensor over its element limit", "shape \(node.shape.dims)")
            }
            total += count
            guard count <= FuzzLimits.elementsPerTensor, total <= FuzzLimits.totalElements else { return false }
        }
        return true
    }

    /// The product of the extents, or nil if it overflows.
    func elementCount(_ shape: Shape) -> Int? {
        var count = 1
        for extent in shape.dims {
            guard extent >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            if overflow { return nil }
            count = product
        }
        return count
    }

    /// Inputs uniform in [-1, 1] from a fixed seed, so a finding replays exactly.
    func seededInputs(_ graph: Graph) -> [String: TensorData] {
        var rng = SplitMix64(seed: 1)
        var inputs: [String: TensorData] = [:]
        for port in graph.inputs {
            inputs[port.name] = TensorData.random(graph.nodes[port.node].shape, in: -1...1, using: &rng)
        }
        return inputs
    }

    /// The graph compiled by TinyCC from C emitted with `options` (Kernel's own when nil).
    func compile(_ graph: Graph, _ options: CEmitOptions?) -> Kernel {
        do {
            if let options {
                let source = try emitC(graph, options: options)
                return try Kernel(source: source, inputNames: graph.inputs.map(\.name), outputNames: graph.outputs.map(\.name))
            }
            return try Kernel(graph)
        } catch {
            finding("a graph the front end accepted did not compile", "\(error)")
        }
    }

    /// Every output of the kernel has the interpreter's shape and values (see `agree`).
    func compare(_ outputs: [String: TensorData], _ reference: [String: TensorData], _ graph: Graph, _ label: String) {
        for port in graph.outputs {
            guard let got = outputs[port.name], let want = reference[port.name] else {
                finding("\(label) lost output \(port.name)", "outputs \(outputs.keys.sorted())")
            }
            guard got.shape == want.shape else {
                finding("\(label) output \(port.name) has shape \(got.shape), the interpreter's \(want.shape)", "")
            }
            if let index = firstDisagreement(got.scalars, want.scalars) {
                finding(
                    "\(label) disagrees with the interpreter on output \(port.name)",
                    "element \(index): kernel \(got.scalars[index]), interpreter \(want.scalars[index])")
            }
        }
    }
}

/// The first index where the two disagree: one NaN and the other not, different infinities,
/// or finite values further apart than 1e-9 relative to the larger magnitude in the whole
/// output (so one rounding difference amplified by cancellation is not flagged). Kernels and
/// the interpreter round alike, so real disagreements are far larger.
func firstDisagreement(_ a: [Double], _ b: [Double]) -> Int? {
    let scale = zip(a, b).reduce(0.0) { m, pair in
        max(m, pair.0.isFinite ? abs(pair.0) : 0, pair.1.isFinite ? abs(pair.1) : 0)
    }
    let tolerance = 1e-9 * max(scale, 1e-300)
    for i in a.indices {
        let x = a[i], y = b[i]
        if x.isNaN || y.isNaN {
            if x.isNaN != y.isNaN { return i }
        } else if x.isInfinite || y.isInfinite {
            if x != y { return i }
        } else if abs(x - y) > tolerance {
            return i
        }
    }
    return nil
}

/// The text of the program `FuzzCase.check` is checking (after salvage and added directives,
/// it is not the input), for findings. libFuzzer runs one input at a time on one thread.
nonisolated(unsafe) var programUnderCheck: String?

/// Reports a finding on standard error and traps, so libFuzzer keeps the input.
func finding(_ what: String, _ detail: String) -> Never {
    let program = programUnderCheck.map { "--- program checked:\n\($0)\n" } ?? ""
    FileHandle.standardError.write(Data("nabla-fuzz finding: \(what)\n\(detail)\n\(program)".utf8))
    fatalError("nabla-fuzz: \(what)")
}
