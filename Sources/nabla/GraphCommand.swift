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
            try writeStandardOutput(text + "\n")
            return
        }
        try render(text, toPNG: png)
    }

    /// Renders DOT text to a PNG file with Graphviz's `dot`. The text goes through a temporary
    /// file, not a pipe, so a `dot` that stops early cannot kill this process with SIGPIPE.
    private func render(_ text: String, toPNG png: String) throws {
        guard let dot = findExecutable("dot") else {
            throw CLIFailure.input("error: --png needs Graphviz's 'dot' on PATH (apt-get install graphviz)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nabla-graph-\(UUID().uuidString)")
        try reportingErrors { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("graph.dot")
        try writeFiles([("DOT", input.path, text)])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: dot)
        process.arguments = ["-Tpng", "-o", png, input.path]
        let errors = Pipe()
        process.standardError = errors
        try reportingErrors { try process.run() }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let detail = message.split(separator: "\n").first.map { ": \($0)" } ?? ""
            throw CLIFailure.input("error: dot could not render '\(png)' (status \(process.terminationStatus))\(detail)")
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
