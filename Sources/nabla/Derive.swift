import ArgumentParser
import Foundation
import Nabla

struct Derive: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every derivative output as a formula in matrix notation.",
        discussion: """
            One block per derivative output (grad, jacobian, hessian, jvp, hvp): its formula in terms \
            of the file's inputs and named bindings, then the bindings and intermediates it uses. \
            --format numpy prints Python lines that compute each output with NumPy from arrays bound \
            to the inputs' names. Gradients of vectors are rows (aᵀ) with the numerator layout, \
            columns with the denominator layout.
            """)

    @OptionGroup var file: FileOptions

    @Option(help: "How formulas are printed: text (Unicode matrix notation), latex, or numpy.")
    var format: FormulaFormatOption = .text

    @Flag(name: .customLong("expand-bindings"), help: "Write the file's bindings out where they occur instead of by name.")
    var expandBindings = false

    func run() throws {
        let program = try file.load()
        guard !program.derivatives.isEmpty else {
            throw CLIFailure.input("error: \(file.file) has no derivative outputs to derive (add, for example, 'grad L wrt x')")
        }
        let layoutGiven = CommandLine.arguments.contains { $0 == "--jacobian-layout" || $0.hasPrefix("--jacobian-layout=") }
        if layoutGiven, !program.derivatives.contains(where: { $0.kind == .jacobian || $0.kind == .grad }) {
            throw CLIFailure.input("error: --jacobian-layout does not apply: \(file.file) has no jacobian or grad outputs")
        }
        if expandBindings, program.bindingNames.isEmpty {
            throw CLIFailure.input("error: --expand-bindings does not apply: \(file.file) has no bindings")
        }
        let formulas = try reportingErrors { try program.derivativeFormulas(expandingBindings: expandBindings) }
        let blocks = formulas.map { $0.rendered(format.format) }
        let preamble = format == .numpy ? "import numpy as np\n\n" : ""
        try writeStandardOutput(preamble + blocks.joined(separator: "\n\n") + "\n")
    }
}

enum FormulaFormatOption: String, ExpressibleByArgument, CaseIterable {
    case text, latex, numpy

    var format: Formula.Format {
        switch self {
        case .text: return .text
        case .latex: return .latex
        case .numpy: return .numpy
        }
    }
}
