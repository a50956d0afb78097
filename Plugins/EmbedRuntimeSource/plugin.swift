import Foundation
import PackagePlugin

/// Embeds the text of runtime/ (Nabla's C runtime) into the Nabla target as
/// `RuntimeSource.files`, so that a build without optimisation can compile an optimised copy
/// of the runtime at first use.
@main
struct EmbedRuntimeSource: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL.appending(path: "runtime").standardizedFileURL
        let files = try runtimeFiles(under: root)
        let output = context.pluginWorkDirectoryURL.appending(path: "RuntimeSource.swift")
        return [
            .buildCommand(
                displayName: "Embedding Nabla's C runtime",
                executable: try context.tool(named: "embed-runtime-source").url,
                arguments: [output.path, root.path] + files.map(\.path),
                inputFiles: files,
                outputFiles: [output])
        ]
    }

    /// The C sources and headers below `root`.
    private func runtimeFiles(under root: URL) throws -> [URL] {
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var files: [URL] = []
        for case let url as URL in walker where url.pathExtension == "c" || url.pathExtension == "h" {
            files.append(url.standardizedFileURL)
        }
        return files.sorted { $0.path < $1.path }
    }
}
