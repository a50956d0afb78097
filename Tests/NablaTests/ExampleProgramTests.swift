import Foundation
import Testing

/// Runs an example program built beside the test bundle and returns its exit status and output.
private func runExample(_ name: String, _ arguments: [String] = []) throws -> (status: Int32, out: String) {
    let process = Process()
    process.executableURL = builtProduct(name)
    process.arguments = arguments
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

    /// The Taylor example's table, and its picture of e^x with T1, T2 and T5: four curves in
    /// one SVG, T1 the line 1 + x.
    @Test func taylorExampleDrawsThePicture() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("taylor-\(UUID().uuidString).svg").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try runExample("taylor-table", ["--svg", path])
        #expect(run.status == 0, "\(run.out)")
        #expect(run.out.contains("exp(x) around 0, coefficients 1, 1, 0.5, 0.166667, 0.0416667, 0.00833333"), "\(run.out)")
        let svg = try String(contentsOfFile: path, encoding: .utf8)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 4)
        #expect(svg.contains("T2(x) = 1 + x + x^2/2"))
    }

    @Test func leastSquaresTwoWaysAgree() throws {
        let run = try runExample("least-squares-fit")
        #expect(run.status == 0, "\(run.out)")
        let gap = run.out.components(separatedBy: "largest difference: ").last.flatMap { Double($0.prefix(8)) }
        #expect(gap.map { $0 < 1e-8 } == true, "\(run.out)")
    }

    /// RK4 by `scan`, differentiated through 400 steps: the fitted parameters of the oscillator
    /// are near the truth (k = 4, c = 0.3).
    @Test func oscillatorParametersAreFittedThroughTheIntegrator() throws {
        let run = try runExample("oscillator-fit")
        #expect(run.status == 0, "\(run.out)")
        let fitted = run.out.components(separatedBy: "fitted k = ").last?.split(separator: ",").first.flatMap { Double($0) }
        #expect(fitted.map { Swift.abs($0 - 4) < 0.05 } == true, "\(run.out)")
    }
}
