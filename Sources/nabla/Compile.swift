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
        let program = try file.load()
        let stem = URL(fileURLWithPath: file.file).deletingPathExtension().lastPathComponent
        let function = name ?? "nabla_" + stem
        var options = CEmitOptions(functionName: function, simplifyOptions: SimplifyOptions(fastMath: fastMath))
        options.unroll = unroll
        let source = try reportingErrors { try emitC(program.graph, options: options) }
        if stats {
            let statistics = try reportingErrors { try compileStatistics(program.graph, options: options) }
            FileHandle.standardError.write(Data((statistics.description + "\n").utf8))
        }
        if let output {
            try write(source.code, to: output)
        } else {
            print(source.code, terminator: "")
        }
        if let header {
            try write(emitCHeader(program.graph, source: source), to: header)
        }
    }
}
