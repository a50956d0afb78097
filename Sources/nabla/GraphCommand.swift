import ArgumentParser
import Foundation
import Nabla

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Draw a graph file as Graphviz DOT.")

    @OptionGroup var file: FileOptions

    @Flag(help: "Draw the fused forward-and-backward graph rather than the forward graph alone.")
    var backward = false

    @Option(help: "Output format (dot).")
    var format: String = "dot"

    @Option(help: "Render to this PNG file with Graphviz's dot (must be installed).")
    var png: String?

    func run() throws {
        guard format == "dot" else { throw CLIFailure.input("error: unknown format '\(format)'; the only format is dot") }
        let program = try file.load()
        let graph = backward ? program.graph : program.forwardGraph
        let title = URL(fileURLWithPath: file.file).deletingPathExtension().lastPathComponent
        let text = graph.dot(title: title)
        guard let png else {
            print(text)
            return
        }
        guard let dot = findExecutable("dot") else {
            throw CLIFailure.input("error: --png needs Graphviz's 'dot' on PATH (apt-get install graphviz)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: dot)
        process.arguments = ["-Tpng", "-o", png]
        let pipe = Pipe()
        process.standardInput = pipe
        try process.run()
        pipe.fileHandleForWriting.write(Data(text.utf8))
        try pipe.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CLIFailure.input("error: dot failed with status \(process.terminationStatus)")
        }
    }
}

func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}
