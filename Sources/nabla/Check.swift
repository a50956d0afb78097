import ArgumentParser
import Foundation
import Nabla

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare every derivative output with central finite differences.",
        discussion: "Exit status 1 when an output's error is over the tolerance.")

    @OptionGroup var file: FileOptions
    @OptionGroup var values: InputOptions

    @Option(help: "Largest accepted |computed - numeric| / max(|numeric|, 1): a finite positive number.")
    var tolerance: Double = 1e-5

    func validate() throws {
        guard tolerance.isFinite, tolerance > 0 else {
            throw ValidationError("--tolerance must be a finite positive number, not \(tolerance)")
        }
    }

    func run() throws {
        let program = try file.load()
        guard !program.derivatives.isEmpty else {
            throw CLIFailure.input("error: \(file.file) has no derivative outputs to check (add 'grad L wrt x')")
        }
        var options = values
        if options.seed == nil && options.inputs.isEmpty { options.seed = 1 }
        let inputs = try options.values(for: program.graph)
        let computed = try reportingErrors { try Kernel(program.graph)(inputs) }
        let results = try reportingErrors { try DerivativeCheck.check(program, at: inputs, computed: computed, tolerance: tolerance) }
        let width = max(6, results.map(\.output.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        var lines = [pad("output", width) + "  max abs error  max rel error  status"]
        for r in results {
            lines.append(pad(r.output, width) + "  " + String(format: "%13.3e  %13.3e  ", r.maxAbsoluteError, r.maxRelativeError) + (r.passed ? "ok" : "FAILED"))
        }
        try writeStandardOutput(lines.joined(separator: "\n") + "\n")
        let failed = results.filter { !$0.passed }
        if !failed.isEmpty {
            throw CLIFailure(message: "error: \(failed.count) derivative output\(failed.count == 1 ? "" : "s") over tolerance \(tolerance)", status: 1)
        }
    }
}
