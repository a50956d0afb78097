import ArgumentParser
import Foundation
import Nabla

/// `nabla`: compile graph files to C, run them, check their derivatives, draw them.
///
/// Exit status: 0 on success, 1 when `check` finds a derivative out of tolerance, 2 for bad
/// input or usage, 3 for an internal error (a bug in Nabla). Messages go to standard error.
@main
struct NablaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nabla",
        abstract: "Compile differentiable computation graphs to native kernels.",
        version: "0.1.0",
        subcommands: [Compile.self, Run.self, Check.self, Derive.self, GraphCommand.self, Bench.self])

    static func main() {
        do {
            try refuseRepeatedOptions(Array(CommandLine.arguments.dropFirst()))
            try refuseUnknownInstructionSet()
            try refuseMalformedThreadCount()
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CLIFailure {
            FileHandle.standardError.write(Data((failure.message + "\n").utf8))
            Foundation.exit(failure.status)
        } catch let error as NablaError {
            let failure = CLIFailure.library(error)
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

/// `NABLA_ISA`, when set, must name an instruction set (the library ignores other values).
func refuseUnknownInstructionSet() throws {
    guard let value = ProcessInfo.processInfo.environment["NABLA_ISA"], !value.isEmpty else { return }
    guard KernelRuntime.InstructionSet(rawValue: value) != nil else {
        let names = KernelRuntime.InstructionSet.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        throw CLIFailure.input("error: NABLA_ISA must be one of \(names), got '\(value)'")
    }
}

/// `NABLA_THREADS`, when set, must be a whole number from 1 to 64 (the library ignores other
/// values).
func refuseMalformedThreadCount() throws {
    guard let value = ProcessInfo.processInfo.environment["NABLA_THREADS"], !value.isEmpty else { return }
    guard let count = Int(value), (1...64).contains(count) else {
        throw CLIFailure.input("error: NABLA_THREADS must be a whole number from 1 to 64, got '\(value)'")
    }
}

/// `--threads` and `--blas`: the runtime's thread count and BLAS for this command.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "Threads the runtime may split large matrix products over (1 to 64; default: NABLA_THREADS, else the processors online).")
    var threads: Int?

    @Option(help: ArgumentHelp(
        "Hand large matrix products, Cholesky factors and triangular solves to a BLAS: off, openblas (libopenblas.so.0) or a library's path (default: NABLA_BLAS, else off). Results then agree with the interpreter's to rounding, not bit for bit.",
        valueName: "off|openblas|PATH"))
    var blas: String?

    func validate() throws {
        if let threads, !(1...64).contains(threads) {
            throw ValidationError("--threads must be from 1 to 64, not \(threads)")
        }
        if let blas, blas.isEmpty { throw ValidationError("--blas needs off, openblas or the path of a library") }
    }

    /// Sets the thread count and the BLAS; a BLAS asked for (here or by NABLA_BLAS) that cannot
    /// be loaded ends the command.
    func apply() throws {
        if let threads { KernelRuntime.threadCount = threads }
        switch blas {
        case nil:
            if let problem = KernelRuntime.blasEnvironmentError { throw CLIFailure.input("error: NABLA_BLAS: \(problem)") }
        case "off"?:
            KernelRuntime.stopUsingBLAS()
        case let library?:
            do {
                try KernelRuntime.useBLAS(library == "openblas" ? KernelRuntime.defaultBLAS : library)
            } catch {
                throw CLIFailure.input("error: --blas: \(error)")
            }
        }
    }
}

/// An error that ends the command with a message and an exit status.
struct CLIFailure: Error {
    let message: String
    let status: Int32

    static func input(_ message: String) -> CLIFailure { CLIFailure(message: message, status: 2) }

    /// A library error: exit status 3 for a broken invariant of Nabla's own, 2 for the rest.
    static func library(_ error: Error, context: String = "") -> CLIFailure {
        if case .internalInconsistency? = error as? NablaError {
            return CLIFailure(message: "error: \(context)\(error)", status: 3)
        }
        return input("error: \(context)\(error)")
    }
}

/// Options every subcommand that reads a graph file takes.
struct FileOptions: ParsableArguments {
    @Argument(help: "The graph file (.nabla).")
    var file: String

    @Option(name: .customLong("dim"), help: ArgumentHelp("Override a dim: N=VALUE (repeatable).", valueName: "N=V"))
    var dims: [String] = []

    @Option(name: .customLong("jacobian-layout"), help: "Layout of jacobian outputs: numerator (shape(e) + shape(x)) or denominator (the transpose).")
    var jacobianLayout: JacobianLayout = .numerator

    /// The most bytes read from a graph file (256 MiB), so that `/dev/zero` ends with an error.
    static let fileByteLimit = 256 << 20

    /// The compiled program, or a failure carrying the rendered diagnostics.
    func load() throws -> NablaProgram { try loadWithText().program }

    /// The compiled program and the text it was compiled from. The file is read once, to its
    /// end, so a pipe or `/dev/stdin` works.
    func loadWithText() throws -> (program: NablaProgram, text: String) {
        let overrides = try dimOverrides()
        let text = try readGraphFile()
        do {
            return (try NablaProgram(source: text, fileName: file, dims: overrides, jacobianLayout: jacobianLayout), text)
        } catch let errors as SourceErrors {
            throw CLIFailure.input(errors.description)
        } catch let error as NablaError {
            throw CLIFailure.library(error)
        }
    }

    /// The `--dim` values by name. Each must be an integer a dim can take, given once.
    func dimOverrides() throws -> [String: Int] {
        var overrides: [String: Int] = [:]
        var given: [String: String] = [:]
        for item in dims {
            guard let equals = item.firstIndex(of: "=") else {
                throw CLIFailure.input("error: --dim expects NAME=INTEGER, got '\(item)'")
            }
            let name = item[..<equals].trimmingCharacters(in: .whitespaces)
            let text = item[item.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { throw CLIFailure.input("error: --dim expects NAME=INTEGER, got '\(item)'") }
            if let previous = given[name] {
                throw CLIFailure.input("error: --dim \(name) is given twice ('\(previous)' and '\(item)'); give it once")
            }
            overrides[name] = try dimValue(text, of: name)
            given[name] = item
        }
        return overrides
    }

    /// The value of `--dim name=text`: an integer from 0 to `NablaProgram.maximumElements`.
    private func dimValue(_ text: String, of name: String) throws -> Int {
        let range = "a dim must be an integer from 0 to \(NablaProgram.maximumElements)"
        let digits = text.drop { $0 == "-" || $0 == "+" }
        let isInteger = !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber } && text.count - digits.count <= 1
        guard isInteger else { throw CLIFailure.input("error: --dim \(name)=\(text): '\(text)' is not an integer; \(range)") }
        guard let value = Int(text), (0...NablaProgram.maximumElements).contains(value) else {
            throw CLIFailure.input("error: --dim \(name)=\(text) is out of range: \(range)")
        }
        return value
    }

    /// The graph file's text, read to its end.
    private func readGraphFile() throws -> String {
        let bytes: [UInt8]
        do {
            bytes = try TensorText.readFile(atPath: file, byteLimit: Self.fileByteLimit)
        } catch let failure as FileReadError {
            throw CLIFailure.input("error: \(failure)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            // The front end says where the first bad byte is.
            do {
                _ = try NablaProgram(bytes: bytes, fileName: file)
            } catch let errors as SourceErrors {
                throw CLIFailure.input(errors.description)
            }
            throw CLIFailure.input("error: cannot read '\(file)': it is not UTF-8 text")
        }
        return text
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

/// Runs a body that may throw library errors, turning them into exit-status-2 failures.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let failure as CLIFailure {
        throw failure
    } catch {
        throw CLIFailure.library(error)
    }
}

/// Options that may be given more than once; any other option given twice is a usage error
/// (ArgumentParser would silently keep the last).
let repeatableOptions: Set<String> = ["--dim", "--input"]

/// Fails when an option other than `repeatableOptions` appears twice before a `--`.
func refuseRepeatedOptions(_ arguments: [String]) throws {
    var seen = Set<String>()
    for argument in arguments {
        if argument == "--" { break }
        guard argument.hasPrefix("-"), argument.count > 1, !argument.dropFirst().allSatisfy({ $0.isNumber || $0 == "." || $0 == "e" }) else { continue }
        let name = String(argument.prefix { $0 != "=" })
        if repeatableOptions.contains(name) { continue }
        guard seen.insert(name).inserted else {
            throw CLIFailure.input("error: \(name) is given twice; give it once")
        }
    }
}
