import ArgumentParser
import Foundation
import Nabla

/// `nabla`: compile graph files to C, run them, check their derivatives, draw them.
///
/// Exit status: 0 on success, 1 when `check` finds a derivative out of tolerance, 2 for bad
/// input or usage. Messages go to standard error.
@main
struct NablaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nabla",
        abstract: "Compile differentiable computation graphs to native kernels.",
        version: "0.1.0",
        subcommands: [Compile.self, Run.self, Check.self, GraphCommand.self, Bench.self])

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CLIFailure {
            FileHandle.standardError.write(Data((failure.message + "\n").utf8))
            Foundation.exit(failure.status)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                // --help and --version.
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

/// An error that ends the command with a message and an exit status.
struct CLIFailure: Error {
    let message: String
    let status: Int32

    static func input(_ message: String) -> CLIFailure { CLIFailure(message: message, status: 2) }
}

/// Options every subcommand that reads a graph file takes.
struct FileOptions: ParsableArguments {
    @Argument(help: "The graph file (.nabla).")
    var file: String

    @Option(name: .customLong("dim"), help: ArgumentHelp("Override a dim: N=VALUE (repeatable).", valueName: "N=V"))
    var dims: [String] = []

    @Option(name: .customLong("jacobian-layout"), help: "Layout of jacobian outputs: numerator (shape(e) + shape(x)) or denominator (the transpose).")
    var jacobianLayout: JacobianLayout = .numerator

    /// The compiled program, or a failure carrying the rendered diagnostics.
    func load() throws -> NablaProgram {
        var overrides: [String: Int] = [:]
        for item in dims {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Int(parts[1].trimmingCharacters(in: .whitespaces)) else {
                throw CLIFailure.input("error: --dim expects NAME=INTEGER, got '\(item)'")
            }
            overrides[parts[0].trimmingCharacters(in: .whitespaces)] = value
        }
        do {
            return try NablaProgram(contentsOfFile: file, dims: overrides, jacobianLayout: jacobianLayout)
        } catch let errors as SourceErrors {
            throw CLIFailure.input(errors.description)
        } catch let error as NablaError {
            throw CLIFailure.input("error: \(error)")
        }
    }
}

/// Options for choosing input values.
struct InputOptions: ParsableArguments {
    @Option(name: .customLong("input"), help: ArgumentHelp(
        "An input's value: NAME=1,2,3 (row-major) or NAME=@file.json (flat or nested array). Repeatable.",
        valueName: "NAME=VALUES"))
    var inputs: [String] = []

    @Option(help: "Fill inputs not given with uniform random values in [-1, 1] from this seed.")
    var seed: UInt64?

    /// Values for every input of `graph`.
    func values(for graph: Graph) throws -> [String: TensorData] {
        var given: [String: TensorData] = [:]
        for item in inputs {
            guard let equals = item.firstIndex(of: "=") else {
                throw CLIFailure.input("error: --input expects NAME=VALUES, got '\(item)'")
            }
            let name = String(item[..<equals]).trimmingCharacters(in: .whitespaces)
            let text = String(item[item.index(after: equals)...])
            do {
                let shape = try graph.inputShape(name)
                guard given[name] == nil else { throw CLIFailure.input("error: input '\(name)' is given twice") }
                given[name] = try TensorText.parse(text, shape: shape, name: name)
            } catch let error as NablaError {
                throw CLIFailure.input("error: --input \(name): \(error)")
            }
        }
        var generator = seed.map { SplitMix64(seed: $0) }
        var result: [String: TensorData] = [:]
        var missing: [String] = []
        for port in graph.inputs {
            if let value = given[port.name] {
                result[port.name] = value
            } else if generator != nil {
                result[port.name] = TensorData.random(graph.nodes[port.node].shape, in: -1...1, using: &generator!)
            } else {
                missing.append(port.name)
            }
        }
        if !missing.isEmpty {
            throw CLIFailure.input("error: no value for input\(missing.count == 1 ? "" : "s") \(missing.map { "'\($0)'" }.joined(separator: ", ")); give --input NAME=VALUES or --seed S")
        }
        return result
    }
}

extension JacobianLayout: ExpressibleByArgument {}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Writes text to a file, or fails with a clear message.
func write(_ text: String, to path: String) throws {
    do {
        // In place, not through a temporary file renamed over the target: the target may be a
        // device (-o /dev/null) or a link, which a rename would replace.
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    } catch {
        throw CLIFailure.input("error: cannot write '\(path)': \(error.localizedDescription)")
    }
}

/// Runs a body that may throw library errors, turning them into exit-status-2 failures.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let failure as CLIFailure {
        throw failure
    } catch {
        throw CLIFailure.input("error: \(error)")
    }
}
