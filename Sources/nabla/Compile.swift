import ArgumentParser
import Foundation
import Nabla

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write self-contained C99 for a graph file.",
        discussion: """
            The C defines `int NAME(const double *const *inputs, double *const *outputs, void *workspace)`: \
            inputs in the order the file declares them, outputs in the order it produces them (derivative \
            outputs last, in directive order), all row-major; `workspace` points at the number of bytes the \
            header's WORKSPACE_BYTES constant gives. It needs only libm.
            """)

    @OptionGroup var file: FileOptions

    @Option(name: .shortAndLong, help: "Write the C here instead of standard output.")
    var output: String?

    @Option(help: "Also write a header with the entry point, workspace size and every shape.")
    var header: String?

    @Option(help: "Name of the C function (default: nabla_<file name>), mangled into a C identifier.")
    var name: String?

    @Flag(help: "Print node counts before and after each pass, fusion and scratch bytes to standard error.")
    var stats = false

    @Flag(help: "Allow rewrites that can change results for NaN, infinities or signed zeros (x * 0 -> 0, ...).")
    var fastMath = false

    @Option(help: "Copies of each fused loop's body per iteration, at most (1: none). Helps compilers that do not unroll, such as tcc; the results are the same.")
    var unroll = 1

    func validate() throws {
        guard (1...64).contains(unroll) else { throw ValidationError("--unroll must be between 1 and 64, not \(unroll)") }
    }

    func run() throws {
        let stem = URL(fileURLWithPath: file.file).deletingPathExtension().lastPathComponent
        let function = name ?? "nabla_" + stem
        try checkName(function)
        let program = try file.load()
        var options = CEmitOptions(functionName: function, simplifyOptions: SimplifyOptions(fastMath: fastMath))
        options.unroll = unroll
        // Everything is computed before anything is written.
        // One compilation: the C and the statistics come from the same plan.
        let compilation = try reportingErrors { try Compilation(program.graph, options: options) }
        let source = try reportingErrors { try compilation.emit(options) }
        let statistics = stats ? compilation.statistics : nil
        var files: [(option: String, path: String, text: String)] = []
        if let output { files.append(("-o", output, source.code)) }
        if let header { files.append(("--header", header, emitCHeader(program.graph, source: source))) }
        try writeFiles(files)
        if let statistics { FileHandle.standardError.write(Data((statistics.description + "\n").utf8)) }
        if output == nil { try writeStandardOutput(source.code) }
    }

    /// Fails with a usage error when `function` cannot name the C function.
    private func checkName(_ function: String) throws {
        do {
            try checkFunctionName(function)
        } catch let NablaError.invalidArgument(_, reason) {
            let option = name == nil ? "the default function name (from the file name; give --name)" : "--name \(function)"
            throw CLIFailure.input("error: \(option): \(reason)")
        }
    }
}
