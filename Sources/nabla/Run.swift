import ArgumentParser
import Foundation
import Nabla

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "JIT-compile a graph file with TinyCC and print every output, derivatives included.",
        discussion: """
        With --shard, run under MPI (mpirun -np P nabla run FILE --shard X,y ...): every process \
        reads the same inputs, keeps its block of rows (leading axis) of each sharded input, and \
        the processes combine their results; process 0 prints the outputs of the whole data.
        """)

    @OptionGroup var file: FileOptions
    @OptionGroup var values: InputOptions

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Option(help: ArgumentHelp(
        "Split these inputs by rows over the MPI processes (comma-separated names); needs Open MPI.",
        valueName: "NAME[,NAME...]"))
    var shard: String?

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        if let shard { return try runSharded(shard) }
        let program = try file.load()
        let inputs = try values.values(for: program.graph)
        let kernel = try reportingErrors { try Kernel(program.graph) }
        let outputs = try reportingErrors { try kernel(inputs) }
        try print(outputs, of: program)
        // Done: the process ends without freeing the program's graph and the kernel one object
        // at a time (a tenth of a second and more for graphs of a million nodes).
        withExtendedLifetime((program, kernel)) { Foundation.exit(0) }
    }

    /// Writes the outputs in the program's order.
    private func print(_ outputs: [String: TensorData], of program: NablaProgram) throws {
        let ordered = program.graph.outputs.map { (name: $0.name, value: outputs[$0.name]!) }
        switch format {
        case .json: try writeStandardOutput(TensorText.json(ordered) + "\n")
        case .text: try writeStandardOutput(TensorText.text(ordered) + "\n")
        }
    }

    /// The data-parallel run: MPI first (every process must finalize it on every path), then
    /// the program on this process's rows. Processes agree whether all of them prepared the
    /// run before any starts it: when some failed, the first of them prints its error and all
    /// exit with status 2, instead of the others waiting for it in a sum. Process 0 prints the
    /// outputs.
    private func runSharded(_ list: String) throws {
        let world = try reportingErrors { try MPICommunicator.world() }
        var prepared: (NablaProgram, [String: TensorData], DataParallelKernel)?
        var failure: Error?
        do {
            let names = try parseShardList(list)
            let program = try file.load()
            let inputs = try values.values(for: program.graph)
            let kernel: DataParallelKernel
            do {
                kernel = try DataParallelKernel(program.graph, sharding: names, communicator: world)
            } catch {
                throw CLIFailure.library(error, context: "--shard: ")
            }
            prepared = (program, inputs, kernel)
        } catch {
            failure = error
        }
        agreeOrExit(world, failure)
        let (program, inputs, kernel) = prepared!
        do {
            let outputs = try reportingErrors { try kernel(inputs) }
            if world.rank == 0 { try print(outputs, of: program) }
        } catch {
            world.finalize()
            throw error
        }
        world.finalize()
        withExtendedLifetime((program, kernel)) { Foundation.exit(0) }
    }
}

/// Makes every process of `world` learn whether any failed to prepare a data-parallel run
/// (`failure` is this one's error, if any). When some did, the first of them prints its error,
/// and all finalize MPI and exit with status 2 (or the failure's own), so that none waits
/// for a failed one in a collective.
func agreeOrExit(_ world: MPICommunicator, _ failure: Error?) {
    var failed = [Double](repeating: 0, count: world.size)
    failed[world.rank] = failure == nil ? 0 : 1
    failed.withUnsafeMutableBufferPointer { world.allreduceSum($0) }
    guard let first = failed.firstIndex(where: { $0 != 0 }) else { return }
    if first == world.rank, let failure {
        let message = (failure as? CLIFailure)?.message ?? "error: \(failure)"
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
    let status: Int32 = failure.map { ($0 as? CLIFailure)?.status ?? 2 } ?? 2
    world.finalize()
    Foundation.exit(status)
}

/// The names of `--shard`, each once.
func parseShardList(_ list: String) throws -> Set<String> {
    let names = list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard !names.contains(where: \.isEmpty) else {
        throw CLIFailure.input("error: --shard expects input names separated by commas, got '\(list)'")
    }
    if let twice = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
        throw CLIFailure.input("error: --shard names input '\(twice)' twice")
    }
    return Set(names)
}
