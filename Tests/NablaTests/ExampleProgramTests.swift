import Foundation
import Testing

/// Runs an example program built beside the test bundle and returns its exit status and output.
private func runExample(_ name: String) throws -> (status: Int32, out: String) {
    let folder = Bundle.main.executableURL?.deletingLastPathComponent()
        ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var binary = folder.appendingPathComponent(name)
    if !FileManager.default.isExecutableFile(atPath: binary.path) {
        binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/\(name)")
    }
    let process = Process()
    process.executableURL = binary
    let out = Pipe()
    process.standardOutput = out
    process.standardError = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The Swift example programs that train or fit something: each checks its own result and
/// exits 0 only when it holds; these tests also read the figures it prints.
@Suite("Example programs")
struct ExampleProgramTests {
    @Test func logisticRegressionSeparatesTheClasses() throws {
        let run = try runExample("logistic-regression")
        #expect(run.status == 0, "\(run.out)")
        #expect(run.out.contains("loss fell at every step: yes"))
        #expect(run.out.contains("accuracy: 200/200"))
    }

    @Test func twoMoonsTrainsPast95Percent() throws {
        let run = try runExample("two-moons")
        #expect(run.status == 0, "\(run.out)")
        let epochs = run.out.split(separator: "\n").filter { $0.hasPrefix("epoch ") }
        #expect(epochs.count == 41)
        let accuracy = epochs.last.flatMap { $0.split(separator: " ").last }.flatMap { Double($0.dropLast()) }
        #expect((accuracy ?? 0) > 95, "\(epochs.last ?? "")")
    }

    @Test func gaussianProcessFitReachesAStationaryPoint() throws {
        let run = try runExample("gp-hyperparameters")
        #expect(run.status == 0, "\(run.out)")
        // The fitted noise level is near the data's (uniform noise of standard deviation 0.058).
        let sigma = run.out.components(separatedBy: "sigma = ").last.flatMap { Double($0.prefix(6)) }
        #expect(sigma.map { $0 > 0.04 && $0 < 0.08 } == true, "\(run.out)")
    }

    @Test func leastSquaresTwoWaysAgree() throws {
        let run = try runExample("least-squares-fit")
        #expect(run.status == 0, "\(run.out)")
        let gap = run.out.components(separatedBy: "largest difference: ").last.flatMap { Double($0.prefix(8)) }
        #expect(gap.map { $0 < 1e-8 } == true, "\(run.out)")
    }
}
