import ArgumentParser
import Nabla

@main
struct NablaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nabla",
        abstract: "Compile differentiable computation graphs to native kernels.",
        version: "0.1.0")
}
