import Foundation
import Testing
@testable import Nabla

/// Open MPI's `mpirun` on PATH, or nil (then the tests that launch processes are skipped:
/// `scripts/ensure-deps` installs it, and CI runs them).
let mpirunPath: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
    .map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }

/// Runs `executable` under `mpirun -np ranks` (oversubscribed: this machine has 2 cores) and
/// returns its status and output.
func runUnderMPI(_ ranks: Int, _ executable: URL, _ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: mpirunPath!)
    process.arguments = ["--oversubscribe", "-np", String(ranks), executable.path] + arguments
    // Open MPI refuses to run as root without both of these (CI runs as root).
    process.environment = ProcessInfo.processInfo.environment.merging(["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]) { $1 }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// The outputs `nabla run --format json` printed, by name.
private func parseOutputs(_ json: String) throws -> [String: [Double]] {
    let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: [String: Any]] ?? [:]
    return object.mapValues { ($0["data"] as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.doubleValue } }
}

private func writeProgram(_ text: String, in directory: URL, as name: String) throws -> String {
    let path = directory.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite("nabla run --shard under mpirun", .serialized, .enabled(if: mpirunPath != nil, "Open MPI's mpirun is not on PATH (scripts/ensure-deps installs it)"))
struct MPITests {
    /// 1, 2 and 3 processes, rows that divide unevenly and fewer rows than processes, losses
    /// with sum and with mean: process 0 prints what one process prints, to 1e-12.
    @Test func shardedRunsMatchOneProcess() throws {
        let directory = try temporaryDirectory()
        let leastSquares = try writeProgram("""
        dim N = 7
        input Phi: [N, 3]
        input y: [N]
        input theta: [3]
        e = y - Phi @ theta
        output L = 0.5 * sum(e^2)
        grad L wrt theta
        """, in: directory, as: "least-squares.nabla")
        let logistic = try writeProgram("""
        dim N = 11
        input X: [N, 4]
        input labels: [N]
        input w: [4]
        output loss = mean(softplus(-labels * (X @ w))) + 0.01 * sum(w^2)
        grad loss wrt w
        output p = sigmoid(X @ w)
        """, in: directory, as: "logistic.nabla")
        let runs: [(file: String, shard: String, dims: [String], ranks: [Int])] = [
            (leastSquares, "Phi,y", [], [1, 2, 3]),
            (leastSquares, "Phi,y", ["--dim", "N=2"], [3]),
            (logistic, "X,labels", [], [1, 2, 3]),
        ]
        for run in runs {
            let arguments = ["run", run.file, "--seed", "4", "--format", "json"] + run.dims
            let single = try runNabla(arguments)
            #expect(single.status == 0, "\(single.err)")
            let expected = try parseOutputs(single.out)
            #expect(!expected.isEmpty)
            for ranks in run.ranks {
                let result = try runUnderMPI(ranks, builtProduct("nabla"), arguments + ["--shard", run.shard])
                #expect(result.status == 0, "\(ranks) ranks: \(result.err)")
                let outputs = try parseOutputs(result.out)
                #expect(outputs.keys.sorted() == expected.keys.sorted(), "\(ranks) ranks printed \(result.out)")
                for (name, values) in expected {
                    expectClose(outputs[name] ?? [], values, tolerance: 1e-12, floor: 1e-12, "\(run.file) \(run.dims), \(ranks) ranks, \(name)")
                }
            }
        }
    }

    /// An output that cannot be split: exit status 2 and the reason, printed once.
    @Test func refusalIsPrintedOnce() throws {
        let directory = try temporaryDirectory()
        let file = try writeProgram("dim N = 5\ninput X: [N, 2]\ninput w: [2]\noutput m = max(X @ w)\n", in: directory, as: "max.nabla")
        let result = try runUnderMPI(2, builtProduct("nabla"), ["run", file, "--seed", "1", "--shard", "X"])
        #expect(result.status == 2)
        #expect(result.out == "")
        let message = "error: --shard: output 'm' cannot be split by rows: max[0] takes the maximum over the rows"
        #expect(result.err.components(separatedBy: message).count == 2, "\(result.err)")
    }

    /// The example trains on 2 and 3 processes and checks its iterates against one process.
    @Test func shardedLogisticRegressionExample() throws {
        for ranks in [2, 3] {
            let result = try runUnderMPI(ranks, builtProduct("sharded-logistic-regression"), [])
            #expect(result.status == 0, "\(result.out)\n\(result.err)")
            #expect(result.out.contains("\(ranks) processes, 10000 rows"))
            #expect(result.out.contains("largest relative difference from one process"))
        }
    }
}

@Suite("Sharding without MPI")
struct NoMPITests {
    /// Where MPI cannot be loaded, --shard says what to install; without --shard nothing
    /// needs MPI.
    @Test func missingMPIIsAClearError() throws {
        let file = example("least-squares.nabla")
        let noMPI = ["NABLA_MPI_LIBRARY": "/nonexistent/libmpi.so"]
        let graph = try NablaProgram(contentsOfFile: file).graph
        let sharded = try runNabla(["run", file, "--seed", "1", "--shard", graph.inputs[0].name], settingEnvironment: noMPI)
        #expect(sharded.status == 2)
        #expect(sharded.out == "")
        #expect(sharded.err.hasPrefix("error: MPI is not available (/nonexistent/libmpi.so: cannot open shared object file"))
        #expect(sharded.err.contains("install Open MPI (apt-get install openmpi-bin libopenmpi-dev)"))
        let plain = try runNabla(["run", file, "--seed", "1"], settingEnvironment: noMPI)
        #expect(plain.status == 0)
    }

    @Test func malformedShardLists() throws {
        let file = example("least-squares.nabla")
        for list in ["", "a,,b", "x,x"] {
            let result = try runNabla(["run", file, "--seed", "1", "--shard", list])
            #expect(result.status == 2, "--shard '\(list)'")
            #expect(result.err.hasPrefix("error: --shard"), "\(result.err)")
        }
    }
}
