import Foundation
import Testing
@testable import Nabla

/// Runs the built `nabla` executable (it sits beside the test bundle) and returns its exit
/// status, standard output and standard error.
func runNabla(_ arguments: [String], in directory: URL? = nil, settingEnvironment variables: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let folder = Bundle.main.executableURL?.deletingLastPathComponent()
        ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var binary = folder.appendingPathComponent("nabla")
    if !FileManager.default.isExecutableFile(atPath: binary.path) {
        binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/nabla")
    }
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    if !variables.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(variables) { $1 }
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

func example(_ name: String) -> String { exampleFiles().first { $0.hasSuffix("/" + name) }! }

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("nabla-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("The nabla command line", .serialized)
struct CLITests {
    @Test func runPrintsValuesAndDerivatives() throws {
        let result = try runNabla(["run", example("seed-function.nabla"), "--input", "x=0.5"])
        #expect(result.status == 0)
        #expect(result.out == "f [] = 0.5569190370486238\ndf/dx [] = 1.6537392657496657\n")
        #expect(result.err == "")
    }

    @Test func runJSONIsOneObjectThatRoundTrips() throws {
        let result = try runNabla(["run", example("linear-residual.nabla"), "--format", "json",
                                   "--input", "A=1,0,0,0,1,0,0,0,1,1,1,1", "--input", "x=1,2,3", "--input", "y=1,1,1,1"])
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as! [String: [String: Any]]
        #expect(Set(object.keys) == ["L", "dL/dx", "dL/dA"])
        #expect(object["L"]!["shape"] as! [Int] == [])
        #expect(object["L"]!["data"] as! [Double] == [15])
        #expect(object["dL/dx"]!["data"] as! [Double] == [5, 6, 7])
        #expect(object["dL/dA"]!["shape"] as! [Int] == [4, 3])
        // Keys come in output order.
        let order = ["\"L\"", "\"dL/dx\"", "\"dL/dA\""].map { result.out.range(of: $0)!.lowerBound }
        #expect(order == order.sorted())
    }

    @Test func nonFiniteValuesAreStringsInJSON() throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("nf.nabla")
        try "input x\noutput a = log(x)\noutput b = sqrt(x)\noutput c = 1 / (x - x)\n".write(to: file, atomically: true, encoding: .utf8)
        let result = try runNabla(["run", file.path, "--format", "json", "--input", "x=-1"])
        #expect(result.status == 0)
        #expect(result.out.contains("\"a\": {\"shape\": [], \"data\": [\"nan\"]}"))
        #expect(result.out.contains("\"c\": {\"shape\": [], \"data\": [\"inf\"]}"))
        let inf = try runNabla(["run", file.path, "--format", "json", "--input", "x=0"])
        #expect(inf.out.contains("\"a\": {\"shape\": [], \"data\": [\"-inf\"]}"))
    }

    @Test func inputsFromJSONFilesAndSeeds() throws {
        let dir = try temporaryDirectory()
        try "[[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]".write(to: dir.appendingPathComponent("A.json"), atomically: true, encoding: .utf8)
        try "[1, 2, 3]".write(to: dir.appendingPathComponent("x.json"), atomically: true, encoding: .utf8)
        let result = try runNabla(["run", example("linear-residual.nabla"), "--input", "A=@\(dir.path)/A.json",
                                   "--input", "x=@\(dir.path)/x.json", "--input", "y=1,1,1,1"])
        #expect(result.status == 0)
        #expect(result.out.hasPrefix("L [] = 15\n"))
        let seeded1 = try runNabla(["run", example("two-layer-network.nabla"), "--seed", "7"])
        let seeded2 = try runNabla(["run", example("two-layer-network.nabla"), "--seed", "7"])
        #expect(seeded1.status == 0 && seeded1.out == seeded2.out)
        let other = try runNabla(["run", example("two-layer-network.nabla"), "--seed", "8"])
        #expect(other.out != seeded1.out)
    }

    @Test func dimOverrides() throws {
        let result = try runNabla(["run", example("rosenbrock.nabla"), "--dim", "N=3", "--input", "x=1,1,1", "--input", "v=1,0,0", "--format", "json"])
        #expect(result.status == 0)
        #expect(result.out.contains("\"df/dx\": {\"shape\": [3], \"data\": [0, 0, 0]}"))
        let bad = try runNabla(["run", example("rosenbrock.nabla"), "--dim", "M=3", "--seed", "1"])
        #expect(bad.status == 2)
        #expect(bad.err == "error: unknown dim 'M'\n")
    }

    @Test func badInputGetsStatusTwoAndAMessage() throws {
        let missing = try runNabla(["run", example("least-squares.nabla")])
        #expect(missing.status == 2)
        #expect(missing.err.contains("no value for inputs 'Phi', 'y', 'theta'"))
        let wrongCount = try runNabla(["run", example("seed-function.nabla"), "--input", "x=1,2"])
        #expect(wrongCount.status == 2)
        #expect(wrongCount.err == "error: --input x: input 'x' (shape []) has 2 elements; expected 1\n")
        let notNumber = try runNabla(["run", example("seed-function.nabla"), "--input", "x=abc"])
        #expect(notNumber.status == 2 && notNumber.err.contains("is not a number"))
        let unknown = try runNabla(["run", example("seed-function.nabla"), "--input", "z=1"])
        #expect(unknown.status == 2 && unknown.err.contains("unknown input 'z'"))
        let noFile = try runNabla(["run", "/nonexistent/file.nabla"])
        #expect(noFile.status == 2 && noFile.err.contains("cannot read '/nonexistent/file.nabla'"))
        let usage = try runNabla(["run"])
        #expect(usage.status == 2)
        let unknownSubcommand = try runNabla(["frobnicate"])
        #expect(unknownSubcommand.status == 2)
    }

    @Test func sourceErrorsAreRenderedOnStandardError() throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("bad.nabla")
        try "input x: [3]\ninput y: [4]\noutput z = x + y\n".write(to: file, atomically: true, encoding: .utf8)
        let result = try runNabla(["run", "bad.nabla", "--seed", "1"], in: dir)
        #expect(result.status == 2)
        #expect(result.out == "")
        #expect(result.err == """
            bad.nabla:3:12: error: cannot apply '+' to shapes [3] and [4]: the shapes do not broadcast
            3 | output z = x + y
              |            ^~~~~
            1 error in bad.nabla

            """)
    }

    @Test func checkPassesAndFails() throws {
        let good = try runNabla(["check", example("two-layer-network.nabla"), "--seed", "3"])
        #expect(good.status == 0)
        #expect(good.out.contains("dL/dA0"))
        #expect(good.out.components(separatedBy: "ok").count - 1 == 4)
        // relu has no derivative at 0: Nabla says 0, finite differences say 1/2.
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("kink.nabla")
        try "input x\noutput y = relu(x)\ngrad y wrt x\n".write(to: file, atomically: true, encoding: .utf8)
        let bad = try runNabla(["check", file.path, "--input", "x=0"])
        #expect(bad.status == 1)
        #expect(bad.out.contains("FAILED"))
        #expect(bad.err.contains("1 derivative output over tolerance"))
        let none = try runNabla(["check", example("seed-function.nabla").replacingOccurrences(of: "seed-function", with: "seed-function")])
        #expect(none.status == 0)
    }

    @Test func compileWritesCAndAHeaderThatGCCAccepts() throws {
        let dir = try temporaryDirectory()
        let c = dir.appendingPathComponent("seed.c"), h = dir.appendingPathComponent("seed.h")
        let result = try runNabla(["compile", example("seed-function.nabla"), "-o", c.path, "--header", h.path, "--name", "seed"])
        #expect(result.status == 0)
        let code = try String(contentsOf: c, encoding: .utf8)
        let header = try String(contentsOf: h, encoding: .utf8)
        #expect(code.contains("int seed(const double *const *inputs, double *const *outputs, void *workspace)"))
        #expect(header.contains("SEED_WORKSPACE_BYTES"))
        let driver = """
            #include <stdio.h>
            #include "seed.h"
            int main(void) {
                double x = 0.5, f, g;
                const double *in[1] = { &x };
                double *out[2] = { &f, &g };
                static double workspace[SEED_WORKSPACE_BYTES / 8 + 1];
                if (seed(in, out, workspace) != 0) return 1;
                printf("%.17g %.17g\\n", f, g);
                return 0;
            }
            """
        try driver.write(to: dir.appendingPathComponent("main.c"), atomically: true, encoding: .utf8)
        let gcc = Process()
        gcc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gcc.arguments = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-o", dir.appendingPathComponent("main").path,
                         dir.appendingPathComponent("main.c").path, c.path, "-lm"]
        try gcc.run()
        gcc.waitUntilExit()
        #expect(gcc.terminationStatus == 0)
        let run = Process()
        run.executableURL = dir.appendingPathComponent("main")
        let pipe = Pipe()
        run.standardOutput = pipe
        try run.run()
        let printed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        run.waitUntilExit()
        let values = printed.split(separator: " ").map { Double($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        expectClose(values, [0.5569190370486238, 1.6537392657496657], tolerance: 1e-15)

        let toStdout = try runNabla(["compile", example("seed-function.nabla")])
        #expect(toStdout.status == 0 && toStdout.out.contains("int nabla__seed_2Dfunction("))
    }

    @Test func derivativeDirectivesAndJacobianLayout() throws {
        let args = ["run", example("hessians.nabla"), "--format", "json", "--input", "x=1,2,3", "--input", "v=1,0,-1",
                    "--input", "M=1,2,0,0,1,0,3,0,1", "--input", "a=0,0,0", "--input", "A=1,2,3,4,5,6"]
        let numerator = try runNabla(args)
        #expect(numerator.status == 0)
        #expect(numerator.out.contains("\"d2f/dx2\": {\"shape\": [3, 3], \"data\": [2, 2, 3, 2, 2, 0, 3, 0, 2]}"))
        #expect(numerator.out.contains("\"de/dx\": {\"shape\": [2, 3], \"data\": [1, 2, 3, 4, 5, 6]}"))
        #expect(numerator.out.contains("\"de/dx.v\": {\"shape\": [2], \"data\": [-2, -2]}"))
        let denominator = try runNabla(args + ["--jacobian-layout", "denominator"])
        #expect(denominator.out.contains("\"de/dx\": {\"shape\": [3, 2], \"data\": [1, 4, 2, 5, 3, 6]}"))
        let check = try runNabla(["check", example("hessians.nabla"), "--jacobian-layout", "denominator"])
        #expect(check.status == 0)
        #expect(!check.out.contains("FAILED"))
        let taylor = try runNabla(["run", example("taylor.nabla"), "--input", "x=2", "--format", "json"])
        #expect(taylor.out.contains("\"taylor(f/x)\": {\"shape\": [6], \"data\": [1, 1, 0.5, 0.16666666666666666, 0.041666666666666664, 0.0083333333333333332]}"))
    }

    @Test func graphDrawsDOT() throws {
        let forward = try runNabla(["graph", example("seed-function.nabla")])
        #expect(forward.status == 0)
        #expect(forward.out.hasPrefix("digraph \"seed-function\" {"))
        #expect(forward.out.contains("input x"))
        #expect(!forward.out.contains("df/dx"))
        let backward = try runNabla(["graph", example("seed-function.nabla"), "--backward"])
        #expect(backward.out.contains("\"df/dx\""))
        #expect(backward.out.components(separatedBy: "->").count > forward.out.components(separatedBy: "->").count)
        let badFormat = try runNabla(["graph", example("seed-function.nabla"), "--format", "svg"])
        #expect(badFormat.status == 2)
    }

    /// With Graphviz installed, --png writes a PNG; without it, a clear error (status 2).
    @Test func graphRendersPNGWhenGraphvizIsThere() throws {
        let png = try temporaryDirectory().appendingPathComponent("g.png")
        let result = try runNabla(["graph", example("seed-function.nabla"), "--backward", "--png", png.path])
        let hasDot = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            .contains { FileManager.default.isExecutableFile(atPath: "\($0)/dot") }
        if hasDot {
            #expect(result.status == 0)
            let data = try Data(contentsOf: png)
            #expect(data.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        } else {
            #expect(result.status == 2)
            #expect(result.err.contains("--png needs Graphviz's 'dot'"))
        }
    }
}
