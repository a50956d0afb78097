import Foundation
import Testing
@testable import Nabla

// Standalone C (`emitC(graph, options: .standalone)`) plus its header (`emitCHeader`) built
// outside Nabla with two real compilers: gcc in strict ISO C99 mode with every warning an error,
// and tcc. A generated driver (main.c) includes the header, fills the inputs through the
// header's macros, calls the kernel and prints every output element; the printed values must
// match the interpreter. gcc and tcc are required: a missing compiler fails the test.

/// Flags the emitted C and the header must pass. `-ffp-contract=off` keeps gcc from fusing
/// multiply-adds, so results round exactly like the interpreter's.
private let strictGCCFlags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-ffp-contract=off"]

/// Further warnings the kernel alone is clean under, for users with stricter builds.
private let extraKernelWarnings = [
    "-Wmissing-prototypes", "-Wstrict-prototypes", "-Wshadow", "-Wconversion", "-Wundef", "-Wvla",
    "-Wredundant-decls", "-Wcast-qual", "-Wdouble-promotion",
]

private struct StandaloneFailure: Error, CustomStringConvertible {
    let description: String
}

/// Absolute path of `tool` on PATH, or a failure saying it is required.
private func requireTool(_ tool: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw StandaloneFailure(description: "'\(tool)' is not on PATH (PATH=\(path)); the standalone C tests need gcc and tcc (Debian packages gcc and tcc)")
}

/// Runs `executable` with `arguments` in `directory`, returning its exit status and output.
private func run(_ executable: String, _ arguments: [String], in directory: URL) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = directory
    // Files, not pipes: nothing can block however much a compiler prints.
    let outURL = directory.appendingPathComponent(".stdout-\(UUID().uuidString)")
    let errURL = directory.appendingPathComponent(".stderr-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()
    let stdout = try String(contentsOf: outURL, encoding: .utf8)
    let stderr = try String(contentsOf: errURL, encoding: .utf8)
    try? FileManager.default.removeItem(at: outURL)
    try? FileManager.default.removeItem(at: errURL)
    return (process.terminationStatus, stdout, stderr)
}

/// `cIdentifier`-mangled names the header gives a port, as documented on `emitCHeader`.
private struct PortNames {
    let macro: String  // P_IN_<mangled>, followed by _INDEX, _RANK, _COUNT, _DIMk
    let dims: String  // p_in_<mangled>_dims

    init(function: String, kind: String, name: String) {
        macro = "\(function.uppercased())_\(kind.uppercased())_\(cIdentifier(name))"
        dims = "\(function)_\(kind)_\(cIdentifier(name))_dims"
    }
}

/// A C program that includes "kernel.h", calls the kernel on `inputs` (declaration order) and
/// prints, for every port, a line `# in|out INDEX RANK COUNT dims...` (taken from the header)
/// and, for every output, its elements with `%.17g`.
private func driverSource(_ graph: Graph, _ source: CKernelSource, inputs: [TensorData]) -> String {
    let f = source.functionName, P = f.uppercased()
    var c: [String] = []
    c.append("#include <stdio.h>")
    c.append("#include <string.h>")
    c.append("#include \"kernel.h\"")
    c.append("")
    for (k, port) in graph.inputs.enumerated() {
        let names = PortNames(function: f, kind: "in", name: port.name)
        let elements = inputs[k].scalars.map(cLiteral).joined(separator: ", ")
        // +1 keeps empty tensors legal C; excess initialisers would be an error under -Werror.
        c.append("static const double input\(k)[\(names.macro)_COUNT + 1] = { \(elements.isEmpty ? "0.0" : elements) };")
    }
    for k in graph.outputs.indices {
        let names = PortNames(function: f, kind: "out", name: graph.outputs[k].name)
        c.append("static double output\(k)[\(names.macro)_COUNT + 1];")
    }
    c.append("static double workspace[\(P)_WORKSPACE_BYTES / 8 + 1];")
    c.append("")
    c.append("static void describe(const char *kind, int index, int rank, long count, const long *dims) {")
    c.append("    int k;")
    c.append("    printf(\"# %s %d %d %ld\", kind, index, rank, count);")
    c.append("    for (k = 0; k < rank; k++) printf(\" %ld\", dims[k]);")
    c.append("    printf(\"\\n\");")
    c.append("}")
    c.append("")
    c.append("int main(void) {")
    c.append("    const double *inputs[\(P)_INPUT_COUNT + 1];")
    c.append("    double *outputs[\(P)_OUTPUT_COUNT + 1];")
    c.append("    long i;")
    c.append("    int status;")
    // Garbage in the workspace and outputs: the kernel must not rely on zeroed memory.
    c.append("    memset(workspace, 0xAB, sizeof workspace);")
    for (k, port) in graph.inputs.enumerated() {
        let names = PortNames(function: f, kind: "in", name: port.name)
        c.append("    inputs[\(names.macro)_INDEX] = input\(k);")
        c.append("    describe(\"in\", \(names.macro)_INDEX, \(names.macro)_RANK, \(names.macro)_COUNT, \(names.dims));")
        for axis in 0..<inputs[k].shape.rank { c.append("    printf(\"# dim %d\\n\", \(names.macro)_DIM\(axis));") }
    }
    for (k, port) in graph.outputs.enumerated() {
        let names = PortNames(function: f, kind: "out", name: port.name)
        c.append("    memset(output\(k), 0xAB, sizeof output\(k));")
        c.append("    outputs[\(names.macro)_INDEX] = output\(k);")
    }
    c.append("    status = \(f)(inputs, outputs, \(P)_WORKSPACE_BYTES > 0 ? (void *)workspace : NULL);")
    c.append("    if (status != 0) { printf(\"status %d\\n\", status); return 1; }")
    c.append("    if (\(P)_INPUT_COUNT != \(graph.inputs.count) || \(P)_OUTPUT_COUNT != \(graph.outputs.count)) return 2;")
    for (k, port) in graph.outputs.enumerated() {
        let names = PortNames(function: f, kind: "out", name: port.name)
        c.append("    describe(\"out\", \(names.macro)_INDEX, \(names.macro)_RANK, \(names.macro)_COUNT, \(names.dims));")
        for axis in 0..<source.outputShapes[k].rank { c.append("    printf(\"# dim %d\\n\", \(names.macro)_DIM\(axis));") }
        c.append("    for (i = 0; i < \(names.macro)_COUNT; i++) printf(\"%.17g\\n\", output\(k)[i]);")
    }
    c.append("    return 0;")
    c.append("}")
    c.append("")
    return c.joined(separator: "\n")
}

/// Splits the driver's output into port descriptions (lines starting with `#`) and values
/// (glibc spells non-finite values `nan`, `-nan`, `inf`, `-inf`).
private func parseDriverOutput(_ text: String) throws -> (meta: [String], values: [Double]) {
    var meta: [String] = [], values: [Double] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        if line.hasPrefix("#") { meta.append(String(line)); continue }
        let word = line.trimmingCharacters(in: .whitespaces).lowercased()
        switch word {
        case "nan", "-nan": values.append(.nan)
        case "inf", "infinity": values.append(.infinity)
        case "-inf", "-infinity": values.append(-.infinity)
        default:
            guard let value = Double(word) else { throw StandaloneFailure(description: "driver printed '\(line)'") }
            values.append(value)
        }
    }
    return (meta, values)
}

/// The port descriptions the driver must print, from the graph's shapes.
private func expectedMeta(_ graph: Graph) -> [String] {
    var lines: [String] = []
    func port(_ kind: String, _ index: Int, _ shape: Shape) {
        lines.append("# \(kind) \(index) \(shape.rank) \(shape.count)" + shape.dims.map { " \($0)" }.joined())
        lines += shape.dims.map { "# dim \($0)" }
    }
    for (k, shape) in graph.inputShapes.enumerated() { port("in", k, shape) }
    for (k, shape) in graph.outputShapes.enumerated() { port("out", k, shape) }
    return lines
}

/// Relative error of `actual` against `expected` element by element: NaN must meet NaN, an
/// infinity the same infinity, finite values agree to `tolerance` relative (floor 1e-300).
private func mismatches(_ actual: [Double], _ expected: [Double], tolerance: Double) -> [String] {
    var problems: [String] = []
    for (k, (a, e)) in zip(actual, expected).enumerated() {
        let ok: Bool
        if e.isNaN || a.isNaN {
            ok = e.isNaN && a.isNaN
        } else if e.isInfinite || a.isInfinite {
            ok = a == e
        } else {
            ok = a == e || Swift.abs(a - e) / max(Swift.abs(a), Swift.abs(e), 1e-300) <= tolerance
        }
        if !ok { problems.append("element \(k): got \(a), expected \(e)") }
    }
    return problems
}

/// Emits `graph` as standalone C with its header, builds the driver with gcc (strict) and tcc,
/// runs both and compares every output element with the interpreter.
private func checkStandalone(
    _ graph: Graph, inputs named: [String: TensorData], functionName: String = "nabla_kernel", unroll: Int = 1,
    asSplitUnits: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let gcc = try requireTool("gcc"), tcc = try requireTool("tcc")
    var options = CEmitOptions(functionName: functionName)
    options.unroll = unroll
    // Split units written one after another must be one valid file as well.
    let source = asSplitUnits ? try Compilation(graph, options: options).emitUnits(options) { _ in } : try emitC(graph, options: options)
    let header = emitCHeader(graph, source: source)
    let inputs = graph.inputs.map { named[$0.name]! }
    let reference = try Interpreter.evaluate(graph, inputs: inputs)
    let expectedValues = reference.flatMap(\.scalars)

    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nabla-standalone-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var keep = false
    defer { if !keep { try? FileManager.default.removeItem(at: directory) } }
    func fail(_ message: String) {
        keep = true
        Issue.record("\(message)\n(files kept in \(directory.path))", sourceLocation: sourceLocation)
    }

    try source.code.write(to: directory.appendingPathComponent("kernel.c"), atomically: true, encoding: .utf8)
    try header.write(to: directory.appendingPathComponent("kernel.h"), atomically: true, encoding: .utf8)
    try driverSource(graph, source, inputs: inputs).write(to: directory.appendingPathComponent("main.c"), atomically: true, encoding: .utf8)
    // The header's prototype must agree with the definition: one unit holding both.
    try "#include \"kernel.h\"\n#include \"kernel.c\"\n".write(to: directory.appendingPathComponent("both.c"), atomically: true, encoding: .utf8)

    let builds: [(String, String, [String])] = [
        ("gcc", gcc, strictGCCFlags + ["main.c", "kernel.c", "-o", "main-gcc", "-lm"]),
        ("gcc (header + definition)", gcc, strictGCCFlags + ["-c", "both.c", "-o", "both.o"]),
        ("gcc (kernel, extra warnings)", gcc, strictGCCFlags + extraKernelWarnings + ["-c", "kernel.c", "-o", "kernel.o"]),
        ("tcc", tcc, ["main.c", "kernel.c", "-o", "main-tcc", "-lm"]),
    ]
    for (label, compiler, arguments) in builds {
        let result = try run(compiler, arguments, in: directory)
        // tcc warns without -Werror; any diagnostic at all is a defect of the emitted C.
        if result.status != 0 || !result.stderr.isEmpty {
            fail("\(label) \(arguments.joined(separator: " ")) exited \(result.status):\n\(result.stderr)")
            return
        }
    }
    for binary in ["main-gcc", "main-tcc"] {
        let result = try run(directory.appendingPathComponent(binary).path, [], in: directory)
        guard result.status == 0 else {
            fail("\(binary) exited \(result.status):\n\(result.stdout)\(result.stderr)")
            continue
        }
        let (meta, values) = try parseDriverOutput(result.stdout)
        if meta != expectedMeta(graph) {
            fail("\(binary): header describes the ports as\n\(meta.joined(separator: "\n"))\nexpected\n\(expectedMeta(graph).joined(separator: "\n"))")
        }
        guard values.count == expectedValues.count else {
            fail("\(binary) printed \(values.count) values, expected \(expectedValues.count)")
            continue
        }
        let problems = mismatches(values, expectedValues, tolerance: 1e-12)
        if !problems.isEmpty {
            fail("\(binary) vs interpreter:\n" + problems.prefix(10).joined(separator: "\n"))
        }
    }
}

private func data(_ shape: Shape, seed: UInt64, in range: ClosedRange<Double> = -1...1) -> TensorData {
    var rng = SeededRandom(seed: seed)
    return TensorData.random(shape, in: range, using: &rng)
}

@Suite("Standalone C with gcc and tcc")
struct StandaloneCTests {
    @Test func compilersArePresent() throws {
        // Stated on its own so a missing compiler is reported once, plainly.
        _ = try requireTool("gcc")
        _ = try requireTool("tcc")
    }

    /// Every example graph file, compiled as `nabla compile` would, built with gcc and tcc,
    /// and compared with the interpreter.
    @Test(arguments: exampleFiles().map { URL(fileURLWithPath: $0).lastPathComponent })
    func exampleFile(_ name: String) throws {
        let path = exampleFiles().first { $0.hasSuffix("/" + name) }!
        let program = try NablaProgram(contentsOfFile: path, dims: name == "rosenbrock.nabla" ? ["N": 50] : [:])
        var rng = SeededRandom(seed: 21)
        var inputs: [String: TensorData] = [:]
        for port in program.graph.inputs { inputs[port.name] = TensorData.random(program.graph.nodes[port.node].shape, using: &rng) }
        try checkStandalone(program.graph, inputs: inputs, functionName: "nabla_" + name.replacingOccurrences(of: ".nabla", with: ""))
    }

    /// The same with loops unrolled (`nabla compile --unroll 8`): still strict C99 with no
    /// unused variables, and the same values.
    @Test(arguments: exampleFiles().map { URL(fileURLWithPath: $0).lastPathComponent })
    func exampleFileUnrolled(_ name: String) throws {
        let path = exampleFiles().first { $0.hasSuffix("/" + name) }!
        let program = try NablaProgram(contentsOfFile: path, dims: name == "rosenbrock.nabla" ? ["N": 61] : [:])
        var rng = SeededRandom(seed: 22)
        var inputs: [String: TensorData] = [:]
        for port in program.graph.inputs { inputs[port.name] = TensorData.random(program.graph.nodes[port.node].shape, using: &rng) }
        try checkStandalone(program.graph, inputs: inputs, functionName: "nabla_unrolled", unroll: 8)
    }

    /// A stencil's gradient (two padded slices added, in the slices' loop) with long
    /// uncovered ends, unrolled: the strict build (-Wshadow included) and the values hold.
    @Test func unrolledStencilGradient() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [53])
        let a = try sin(x[.range(start: 0, end: 40, step: 1)]) * 3
        let b = try exp(x[.range(start: 1, end: 41, step: 1)]) - a
        let f = try sum(a * b)
        let graph = try g.graph(outputs: ["f": f, "df/dx": gradient(of: f, wrt: x)])
        for unroll in [1, 4] {
            try checkStandalone(graph, inputs: ["x": data([53], seed: 10)], functionName: "stencil", unroll: unroll)
        }
    }

    /// Loops large enough to run in blocks: a sum of 40,000 terms (blocks in order in
    /// standalone C), a stencil's gradient (carried or recomputed pads) and a large
    /// elementwise output, rolled and unrolled. The same graph's JIT C, whose loops run as
    /// tasks on the runtime's pool (by name for TinyCC, through pointer slots for cc), is
    /// strict C99 under every extra warning too.
    @Test func loopsInBlocks() throws {
        let g = GraphBuilder()
        let n = 40_000
        let x = try g.input("x", shape: [n])
        let head = try x[.range(start: 0, end: n - 1, step: 1)], tail = try x[.range(start: 1, end: n, step: 1)]
        let f = try sum(100 * (tail - head * head) * (tail - head * head) + sin(head) * head)
        let graph = try g.graph(outputs: ["f": f, "df/dx": gradient(of: f, wrt: x), "y": exp(x * 0.5) + x])
        for unroll in [1, 4] {
            try checkStandalone(graph, inputs: ["x": data([n], seed: 12)], functionName: "blocks", unroll: unroll)
        }
        let gcc = try requireTool("gcc")
        for (pointers, unroll) in [(false, 8), (true, 1)] {
            var options = CEmitOptions(functionName: "blocks", useRuntime: true)
            options.runtimeThroughPointers = pointers
            options.unroll = unroll
            let code = try emitC(graph, options: options).code
            #expect(code.contains("nabla_parallel("), "unroll \(unroll)")
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nabla-blocks-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            try code.write(to: directory.appendingPathComponent("kernel.c"), atomically: true, encoding: .utf8)
            let result = try run(gcc, strictGCCFlags + extraKernelWarnings + ["-c", "kernel.c", "-o", "kernel.o"], in: directory)
            #expect(result.status == 0 && result.stderr.isEmpty, "JIT C, unroll \(unroll), pointer slots \(pointers):\n\(result.stderr)")
        }
    }

    /// A kernel large enough to be split into several C functions (a deep recurrence with its
    /// gradient): strict C99 from gcc and tcc, rolled and unrolled, and the same values.
    @Test func splitKernels() throws {
        let graph = try recurrenceGraph(steps: 1200)
        #expect(try Compilation(graph).plan.parts.count > 1)
        for unroll in [1, 8] {
            try checkStandalone(graph, inputs: ["y0": TensorData(0.5), "a": TensorData(2)], functionName: "deep", unroll: unroll)
        }
    }

    /// The separate units TinyCC compiles a split kernel from, written one after another, are
    /// strict C99 too: helpers and constants several parts use are defined once, nothing is
    /// declared twice (-Wredundant-decls), and the values are the interpreter's.
    @Test func splitUnitsMakeOneFile() throws {
        let graph = try helperRecurrenceGraph(steps: 700)
        #expect(try Compilation(graph).isSplit)
        try checkStandalone(graph, inputs: ["x": data([6], seed: 4), "y0": TensorData(0.2)], functionName: "units", asSplitUnits: true)
    }

    /// A split kernel with loops in several parts (and a loop inside a loop): each part's unit
    /// carries the bodies it calls, and the units together still make one strict C99 file.
    @Test func splitKernelsWithLoops() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [6]), y0 = try g.input("y0")
        var y = y0
        for k in 0..<400 {
            y = try sigmoid(0.9 * y + 0.01 * sum(x * y) + 0.1)
            if k % 150 == 0 {
                y = try fold(y, steps: 5) { c, step in
                    let inner = try fold(c, over: x) { d, r in try tanh(d * 0.5 + r) }
                    return try 0.5 * inner + 0.1 * step
                }
            }
        }
        let gradients = try gradient(of: y, wrt: [x, y0])
        let graph = try g.graph(outputs: ["f": y, "df/dx": gradients[0], "df/dy0": gradients[1]])
        #expect(try Compilation(graph).isSplit)
        let inputs = ["x": data([6], seed: 4), "y0": TensorData(0.2)]
        try checkStandalone(graph, inputs: inputs, functionName: "units", asSplitUnits: true)
        try checkStandalone(graph, inputs: inputs, functionName: "whole")
        try expectKernelMatchesInterpreter(graph, inputs)
    }

    /// Large constants that are mostly +0.0 (identity matrices) are written element by
    /// element only where nonzero; -0.0, NaN and infinities among them keep their bits.
    @Test func sparseConstantsStaySmall() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [120, 120])
        var scalars = [Double](repeating: 0, count: 120 * 120)
        for k in 0..<120 { scalars[k * 121] = 1 }
        scalars[5] = -0.0
        scalars[7] = .nan
        scalars[9] = -.infinity
        let mostlyZero = g.constant(try TensorData(shape: [120, 120], scalars: scalars))
        let y = try x * mostlyZero + 1 / mostlyZero
        let graph = try g.graph(outputs: ["y": y])
        let code = try emitC(graph).code
        #expect(code.utf8.count < 20_000, "C of \(code.utf8.count) bytes")
        try checkStandalone(graph, inputs: ["x": data([120, 120], seed: 9)])
        let kernel = try Kernel(graph)
        let inputs: [String: TensorData] = ["x": data([120, 120], seed: 9)]
        let got = try kernel(inputs)["y"]!.scalars, want = try Interpreter.evaluate(graph, inputs: inputs)["y"]!.scalars
        #expect(zip(got, want).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) })
        #expect(got[5].isNaN == false && got[5] == -.infinity)  // 1 / -0.0
    }

    @Test func seedFunctionAndDerivative() throws {
        let g = GraphBuilder()
        let x = try g.input("x")
        let f = try sqrt(x ** 2 + exp(x ** 2)) + sin(x ** 2 - 1)
        let graph = try g.graph(outputs: ["f": f, "df/dx": gradient(of: f, wrt: x)])
        for (k, value) in [0.7, -1.3, 0.0].enumerated() {
            try checkStandalone(graph, inputs: ["x": TensorData(value)], functionName: k == 0 ? "nabla_kernel" : "seed")
        }
    }

    @Test func leastSquaresWithGradients() throws {
        let g = GraphBuilder()
        let Phi = try g.input("Phi", shape: [7, 3])
        let y = try g.input("y", shape: [7])
        let theta = try g.input("theta", shape: [3])
        let L = try 0.5 * sum(square(y - Phi.matmul(theta)))
        let grads = try gradient(of: L, wrt: [theta, Phi])
        let graph = try g.graph(outputs: ["L": L, "dL/dtheta": grads[0], "dL/dPhi": grads[1]])
        try checkStandalone(
            graph, inputs: ["Phi": data([7, 3], seed: 1), "y": data([7], seed: 2), "theta": data([3], seed: 3)],
            functionName: "lsq")
    }

    @Test func everyOperation() throws {
        let g = GraphBuilder()
        let a = try g.input("a", shape: [2, 3])
        let b = try g.input("b", shape: [3])
        let c = try g.input("c", shape: [2, 1])
        let s = try g.input("s")
        let m = try g.input("m", shape: [3, 4])
        let v = try g.input("v", shape: [4])
        let t = try g.input("t", shape: [2, 3, 4])
        let p = try g.input("p", shape: [2, 3])  // positive, for sqrt, log and powers

        var outputs: [(String, Tensor)] = []
        outputs.append(("arith", try (a + b) * c - a / (p + 1) + s * b - (-a)))
        outputs.append(("pow", try p ** a + pow(p, 2.5) + p ** 3 + p ** -1 + p ** 0.5 + 2 ** a))
        outputs.append(("unary", try sqrt(p) + exp(a) + log(p) + sin(a) + cos(a) + tan(a) + tanh(a) + square(a)))
        outputs.append(("activations", try sigmoid(a * 20) + relu(a) + abs(a) + softplus(a * 30) + step(a) + sign(a)))
        outputs.append(("sums", try sum(t, axes: [0, 2]) + sum(a, axis: 0) + sum(a) + mean(t, axis: 1)[0, .upTo(3)]))
        outputs.append(("mean", mean(t)))
        outputs.append(("sum0", try sum(t, axis: -1)))
        outputs.append(("transpose", try a.transposed.matmul(c).transposed + t.transposed([2, 0, 1])[.all, 1]))
        outputs.append(("slices", try a[.from(1)] + a[.upTo(-1)] + m[2][.between(1, 4)] + a[.all, 0][.from(1)] + t[1, .all, 2]))
        outputs.append(("mm", try a.matmul(m)))  // matrix-matrix
        outputs.append(("mv", try m.matmul(v)))  // matrix-vector
        outputs.append(("vm", try b.matmul(m)))  // vector-matrix
        outputs.append(("vv", try v.matmul(v)))  // vector-vector
        outputs.append(("layout", try outer(b, v) + b.reshaped([3, 1]).broadcast(to: [3, 4]) + t[1]))
        // Derivatives of everything exercise the backward forms (broadcast, reshape, sum, ...).
        let loss = try outputs.map { sum(square($0.1)) }.dropFirst().reduce(sum(outputs[0].1)) { try $0 + $1 * 1e-3 }
        let variables = [a, b, c, s, m, v, t, p]
        let grads = try gradient(of: loss, wrt: variables)
        for (name, grad) in zip(["a", "b", "c", "s", "m", "v", "t", "p"], grads) { outputs.append(("dloss/d\(name)", grad)) }
        let graph = try g.graph(outputs: outputs)
        try checkStandalone(graph, inputs: [
            "a": data([2, 3], seed: 11), "b": data([3], seed: 12), "c": data([2, 1], seed: 13), "s": TensorData(0.37),
            "m": data([3, 4], seed: 14), "v": data([4], seed: 15), "t": data([2, 3, 4], seed: 16),
            "p": data([2, 3], seed: 17, in: 0.5...2),
        ])
    }

    /// det, logdet, inv, solve, logsumexp, softmax and logSoftmax with first and second
    /// derivatives: the LU helpers and their workspace scratch under gcc -Werror and tcc.
    @Test func matrixCalculus() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [4, 4])
        let b = try g.input("b", shape: [4])
        let B = try g.input("B", shape: [4, 3])
        let x = try g.input("x", shape: [3, 5])
        let s = try g.input("s")
        var outputs: [(String, Tensor)] = [
            ("det", try det(A)), ("logdet", try logdet(A)), ("inv", try inv(A)),
            ("solve vector", try solve(A, b)), ("solve matrix", try solve(A, B)),
            ("det 1x1", try det(s.reshaped([1, 1]))), ("inv 1x1", try inv(s.reshaped([1, 1]))),
            ("logsumexp", logsumexp(x)), ("logsumexp rows", try logsumexp(x, axis: 1)),
            ("logsumexp scalar", logsumexp(s)),
            ("softmax", try softmax(x, axis: 0)), ("logSoftmax", try logSoftmax(x, axis: -1)),
        ]
        let loss = try logdet(A) + det(A) * 1e-3 + sum(sin(inv(A))) + b.matmul(solve(A, b)) + sum(square(solve(A, B)))
            + logsumexp(x) + sum(try softmax(x, axis: 1) * x) + s * logsumexp(solve(A, B), axes: [0, 1])
        let grads = try gradient(of: loss, wrt: [A, b, B, x, s])
        for (name, grad) in zip(["A", "b", "B", "x", "s"], grads) { outputs.append(("dloss/d\(name)", grad)) }
        outputs.append(("hvp logdet", try hvp(of: logdet(A), wrt: A, along: A.transposed)))
        outputs.append(("tangent det", try jvp(of: det(A), wrt: A, tangent: A * A)))
        let graph = try g.graph(outputs: outputs)
        var rng = SeededRandom(seed: 51)
        var a = TensorData.random([4, 4], using: &rng)
        for i in 0..<4 { a.scalars[i * 4 + i] += 4 }
        // Rows rotated, so the elimination has to pivot.
        a.scalars = Array(a.scalars[4...] + a.scalars[..<4])
        try checkStandalone(graph, inputs: [
            "A": a, "b": data([4], seed: 52), "B": data([4, 3], seed: 53), "x": data([3, 5], seed: 54, in: -3...3),
            "s": TensorData(0.8),
        ], functionName: "matrix_calculus")
        // Singular and non-finite operands: IEEE results, the same from both compilers.
        let singular = try TensorData(shape: [4, 4], scalars: [1, 2, 3, 4, 2, 4, 6, 8, 0, 1, 0, 1, 1, 0, 1, 0])
        let special = try TensorData(shape: [3, 5], scalars: [
            -.infinity, -.infinity, -.infinity, -.infinity, -.infinity, 1000, 1001, -.infinity, 0, 2, .infinity, 1, 2, 3, .nan,
        ])
        try checkStandalone(graph, inputs: [
            "A": singular, "b": data([4], seed: 55), "B": data([4, 3], seed: 56), "x": special, "s": TensorData(0),
        ], functionName: "matrix_calculus_singular")
    }

    @Test func nonFiniteConstants() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [4])
        let special = g.constant(try TensorData(shape: [4], scalars: [.nan, .infinity, -.infinity, -0.0]))
        let outputs: [(String, Tensor)] = [
            ("sum", try x + special),
            ("scaled", try x * .nan + x * .infinity),
            ("constant", special),
            ("scalar constant", g.constant(-.infinity)),
            ("nan scalar", sum(x) * .nan),
            ("overflow", exp(x * 1000)),
        ]
        let graph = try g.graph(outputs: outputs)
        try checkStandalone(graph, inputs: ["x": try TensorData(shape: [4], scalars: [1, -2, 0.5, 0])])
    }

    @Test func outputsThatAreInputs() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [2, 2])
        let s = try g.input("s")
        _ = try g.input("unused", shape: [3])
        _ = try g.input("empty", shape: [0])
        let graph = try g.graph(outputs: [
            ("x", x), ("x again", x), ("s", s), ("twice", x * 2), ("s squared", s * s),
        ])
        try checkStandalone(graph, inputs: [
            "x": data([2, 2], seed: 21), "s": TensorData(-1.5), "unused": data([3], seed: 22),
            "empty": try TensorData(shape: [0], scalars: []),
        ])
    }

    @Test func hostileNames() throws {
        let g = GraphBuilder()
        let evil = try g.input("evil */ #include <x>", shape: [2])
        let digit = try g.input("1st", shape: [2, 2])
        let lower = try g.input("x")
        let upper = try g.input("X")
        let theta = try g.input("θ\nnext line \\", shape: [2])
        let underscore = try g.input("_private")
        let L = try sum(evil * digit.matmul(theta)) * lower + upper * underscore
        let graph = try g.graph(outputs: [
            ("dL/dx", gradient(of: L, wrt: lower)), ("L", L), ("*/", evil), ("#define", digit.transposed),
        ])
        let source = try emitC(graph)
        let header = emitCHeader(graph, source: source)
        // Mangled names keep letters and digits ("evil", "1st"), never the other characters.
        for fragment in ["*/ #", "#include", "<x>", "dL/dx", "θ", "next line", "#define d", "\\"] {
            #expect(!header.contains(fragment), "header contains the user text '\(fragment)'")
            #expect(!source.code.contains(fragment), "kernel C contains the user text '\(fragment)'")
        }
        // A user-supplied include guard is mangled too.
        let guarded = emitCHeader(graph, source: source, guardName: "my kernel.h */")
        #expect(guarded.contains("#ifndef my_20kernel_2Eh_20_2A_2F\n"))
        #expect(!guarded.contains("kernel.h */"))
        try checkStandalone(graph, inputs: [
            "evil */ #include <x>": data([2], seed: 31), "1st": data([2, 2], seed: 32), "x": TensorData(0.25),
            "X": TensorData(-2), "θ\nnext line \\": data([2], seed: 33), "_private": TensorData(3),
        ])
    }

    @Test func headerLayout() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [2, 3])
        let s = try g.input("s")
        let graph = try g.graph(outputs: ["y": sum(A, axis: 1) * s, "s": s])
        let source = try emitC(graph, options: CEmitOptions(functionName: "fit"))
        let header = emitCHeader(graph, source: source)
        for line in [
            "#ifndef NABLA_FIT_H", "#define NABLA_FIT_H",
            "int fit(const double *const *inputs, double *const *outputs, void *workspace);",
            "#define FIT_WORKSPACE_BYTES \(source.workspaceBytes)", "#define FIT_WORKSPACE_ALIGNMENT 8",
            "#define FIT_INPUT_COUNT 2", "#define FIT_OUTPUT_COUNT 2",
            "/* input 0, shape [2, 3] */", "#define FIT_IN_A_INDEX 0", "#define FIT_IN_A_RANK 2", "#define FIT_IN_A_COUNT 6",
            "#define FIT_IN_A_DIM0 2", "#define FIT_IN_A_DIM1 3", "static const long fit_in_A_dims[2] = { 2, 3 };",
            "#define FIT_IN_s_INDEX 1", "#define FIT_IN_s_RANK 0", "#define FIT_IN_s_COUNT 1",
            "static const long fit_in_s_dims[1] = { 1 };",
            "#define FIT_OUT_y_INDEX 0", "#define FIT_OUT_y_RANK 1", "#define FIT_OUT_y_DIM0 2",
            "#define FIT_OUT_s_INDEX 1", "#endif /* NABLA_FIT_H */",
        ] {
            #expect(header.split(separator: "\n").contains(Substring(line)), "missing line: \(line)")
        }
        #expect(!header.contains("FIT_IN_s_DIM0"))
    }
}
