import ArgumentParser
import Foundation
import Nabla

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "JIT-compile a graph file with TinyCC and print every output, derivatives included.")

    @OptionGroup var file: FileOptions
    @OptionGroup var values: InputOptions

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @OptionGroup var threads: ThreadOptions

    func run() throws {
        threads.apply()
        let program = try file.load()
        let inputs = try values.values(for: program.graph)
        let kernel = try reportingErrors { try Kernel(program.graph) }
        let outputs = try reportingErrors { try kernel(inputs) }
        let ordered = program.graph.outputs.map { (name: $0.name, value: outputs[$0.name]!) }
        switch format {
        case .json: try writeStandardOutput(TensorText.json(ordered) + "\n")
        case .text: try writeStandardOutput(TensorText.text(ordered) + "\n")
        }
        // Done: the process ends without freeing the program's graph and the kernel one object
        // at a time (a tenth of a second and more for graphs of a million nodes).
        withExtendedLifetime((program, kernel)) { Foundation.exit(0) }
    }
}
