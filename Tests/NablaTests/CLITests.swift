import Foundation
import Testing
@testable import Nabla

/// An executable of this package built beside the test bundle (or in .build/debug).
func builtProduct(_ name: String) -> URL {
    let folder = Bundle.main.executableURL?.deletingLastPathComponent()
        ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let beside = folder.appendingPathComponent(name)
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/\(name)")
}

/// Runs the built `nabla` executable (it sits beside the test bundle) and returns its exit
/// status, standard output and standard error. `input` is piped to its standard input (none
/// by default); `output` replaces the pipe its standard output is read from.
func runNabla(
    _ arguments: [String], in directory: URL? = nil, settingEnvironment variables: [String: String] = [:],
    input: String? = nil, output: FileHandle? = nil
) throws -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = builtProduct("nabla")
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    if !variables.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(variables) { $1 }
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = output ?? out
    process.standardError = err
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
    }
    if output != nil { try out.fileHandleForWriting.close() }
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

    /// A graph file that is not UTF-8: a located error at the first bad byte, exit 2.
    @Test func aFileThatIsNotUTF8IsALocatedError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nabla-utf8-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("bad.nabla")
        try Data("input x\noutput y = sin(x) ".utf8 + [0xFF, 0xFE] + Data(" + 1\n".utf8)).write(to: file)
        for command in ["run", "compile", "check", "graph"] {
            let result = try runNabla([command, file.path, "--seed", "1"].filter { command != "compile" && command != "graph" || $0 != "--seed" && $0 != "1" })
            #expect(result.status == 2, "\(command)")
            #expect(result.err.contains("bad.nabla:2:19: error:"), "\(command): \(result.err)")
            #expect(result.out.isEmpty)
        }
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
    // MARK: - Names of the emitted C function

    @Test func compileRefusesFunctionNamesThatGiveBrokenC() throws {
        let dir = try temporaryDirectory()
        for name in ["int", "return", "main", "exp"] {
            let c = dir.appendingPathComponent("\(name).c")
            let result = try runNabla(["compile", example("seed-function.nabla"), "--name", name, "-o", c.path])
            #expect(result.status == 2, "--name \(name)")
            #expect(result.err.hasPrefix("error: --name \(name): '\(name)' is "), "--name \(name): \(result.err)")
            #expect(result.out == "")
            #expect(!FileManager.default.fileExists(atPath: c.path))
        }
        let toStdout = try runNabla(["compile", example("seed-function.nabla"), "--name", "int"])
        #expect(toStdout.status == 2 && toStdout.out == "")
        #expect(toStdout.err == "error: --name int: 'int' is a C keyword\n")
    }

    @Test func headersOfNamesDifferingOnlyInCaseCompileTogether() throws {
        let dir = try temporaryDirectory()
        for (name, file) in [("a", "lower"), ("A", "upper")] {
            let result = try runNabla(["compile", example("seed-function.nabla"), "--name", name,
                                       "-o", dir.appendingPathComponent("\(file).c").path,
                                       "--header", dir.appendingPathComponent("\(file).h").path])
            #expect(result.status == 0, "--name \(name): \(result.err)")
        }
        let lower = try String(contentsOf: dir.appendingPathComponent("lower.h"), encoding: .utf8)
        let upper = try String(contentsOf: dir.appendingPathComponent("upper.h"), encoding: .utf8)
        #expect(lower.contains("#ifndef NABLA_A_H") && lower.contains("#define A_WORKSPACE_BYTES"))
        #expect(upper.contains("#ifndef NABLA_A_U_H") && upper.contains("#define A_U_WORKSPACE_BYTES"))
        let driver = """
            #include <stdio.h>
            #include "lower.h"
            #include "upper.h"
            int main(void) {
                double x = 0.5, f1, g1, f2, g2;
                const double *in[A_INPUT_COUNT] = { &x };
                double *o1[A_OUTPUT_COUNT] = { &f1, &g1 }, *o2[A_U_OUTPUT_COUNT] = { &f2, &g2 };
                static double w1[A_WORKSPACE_BYTES / 8 + 1], w2[A_U_WORKSPACE_BYTES / 8 + 1];
                if (a(in, o1, w1) != 0 || A(in, o2, w2) != 0) return 1;
                printf("%.17g %.17g %.17g %.17g\\n", f1, g1, f2, g2);
                return 0;
            }
            """
        try driver.write(to: dir.appendingPathComponent("main.c"), atomically: true, encoding: .utf8)
        let printed = try compileAndRunC(["main.c", "lower.c", "upper.c"], in: dir)
        let values = printed.split(separator: " ").map { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(values == [0.5569190370486238, 1.6537392657496657, 0.5569190370486238, 1.6537392657496657])
    }

    // MARK: - Option values

    @Test func dimValuesMustBeInRangeAndGivenOnce() throws {
        let file = example("rosenbrock.nabla")
        for value in ["-1", "10000000000", "268435457", "99999999999999999999"] {
            let result = try runNabla(["run", file, "--dim", "N=\(value)", "--seed", "1"])
            #expect(result.status == 2)
            #expect(result.err == "error: --dim N=\(value) is out of range: a dim must be an integer from 0 to 268435456\n")
        }
        let notInteger = try runNabla(["run", file, "--dim", "N=1e3", "--seed", "1"])
        #expect(notInteger.status == 2 && notInteger.err.hasPrefix("error: --dim N=1e3: '1e3' is not an integer"))
        let twice = try runNabla(["run", file, "--dim", "N=3", "--dim", "N=4", "--seed", "1"])
        #expect(twice.status == 2)
        #expect(twice.err == "error: --dim N is given twice ('N=3' and 'N=4'); give it once\n")
        let same = try runNabla(["run", file, "--dim", "N=3", "--dim", "N = 3", "--seed", "1"])
        #expect(same.status == 2 && same.out == "")
    }

    @Test func optionValuesOutOfTheirRangeAreUsageErrors() throws {
        let network = example("two-layer-network.nabla")
        for value in ["nan", "inf", "-1", "0"] {
            let result = try runNabla(["check", network, "--tolerance=\(value)"])
            #expect(result.status == 2, "--tolerance \(value)")
            #expect(result.err.contains("--tolerance must be a finite positive number"), "--tolerance \(value): \(result.err)")
            #expect(result.out == "")
        }
        for value in ["1e300", "3601", "nan", "inf", "0", "-1"] {
            let result = try runNabla(["bench", example("seed-function.nabla"), "--seconds=\(value)"])
            #expect(result.status == 2, "--seconds \(value)")
            #expect(result.err.contains("--seconds must be more than 0 and at most 3600"), "--seconds \(value): \(result.err)")
        }
    }

    @Test func anOptionGivenTwiceIsAnError() throws {
        // ArgumentParser alone keeps the last value: --tolerance 1 would pass anything.
        let check = try runNabla(["check", example("two-layer-network.nabla"), "--tolerance", "1e-30", "--tolerance", "1"])
        #expect(check.status == 2)
        #expect(check.err == "error: --tolerance is given twice; give it once\n")
        let dir = try temporaryDirectory()
        let first = dir.appendingPathComponent("first.c"), second = dir.appendingPathComponent("second.c")
        let compile = try runNabla(["compile", example("seed-function.nabla"), "-o", first.path, "-o=\(second.path)"])
        #expect(compile.status == 2 && compile.err == "error: -o is given twice; give it once\n")
        #expect(!FileManager.default.fileExists(atPath: first.path) && !FileManager.default.fileExists(atPath: second.path))
        let seed = try runNabla(["run", example("seed-function.nabla"), "--seed=1", "--seed", "2"])
        #expect(seed.status == 2 && seed.err.contains("--seed is given twice"))
        // --input and --dim repeat by design.
        let inputs = try runNabla(["run", example("linear-residual.nabla"), "--input", "x=1,2,3", "--input", "y=1,1,1,1", "--seed", "1"])
        #expect(inputs.status == 0)
    }

    // MARK: - Input values

    @Test func numbersTooLargeForADoubleAreErrors() throws {
        let seed = example("seed-function.nabla")
        for literal in ["1e309", "-1e309", "1.8e308"] {
            let result = try runNabla(["run", seed, "--input", "x=\(literal)"])
            #expect(result.status == 2, "x=\(literal)")
            #expect(result.err == "error: --input x: invalid argument to input 'x': value 1 ('\(literal)') is out of range for a double\n")
            #expect(result.out == "")
        }
        let infinity = try runNabla(["run", seed, "--input", "x=-inf", "--format", "json"])
        #expect(infinity.status == 0 && infinity.out.contains("\"f\": {\"shape\": [], \"data\": [\"nan\"]}"))

        let dir = try temporaryDirectory()
        let flat = dir.appendingPathComponent("flat.json")
        try "[1e400]".write(to: flat, atomically: true, encoding: .utf8)
        let fromFile = try runNabla(["run", seed, "--input", "x=@\(flat.path)"])
        #expect(fromFile.status == 2)
        #expect(fromFile.err == "error: --input x: invalid argument to input 'x': \(flat.path):1:2: number 1e400 is out of range for a double\n")

        let graph = dir.appendingPathComponent("m.nabla")
        try "input M: [2, 2]\noutput s = sum(M)\n".write(to: graph, atomically: true, encoding: .utf8)
        let nested = dir.appendingPathComponent("nested.json")
        try "[[1, 2],\n [3, -1e999]]".write(to: nested, atomically: true, encoding: .utf8)
        let located = try runNabla(["run", graph.path, "--input", "M=@\(nested.path)"])
        #expect(located.status == 2 && located.err.contains("\(nested.path):2:6: number -1e999 is out of range for a double"))
        let quoted = dir.appendingPathComponent("quoted.json")
        try "[[1, 2], [3, \"1e999\"]]".write(to: quoted, atomically: true, encoding: .utf8)
        let string = try runNabla(["run", graph.path, "--input", "M=@\(quoted.path)"])
        #expect(string.status == 2 && string.err.contains("\(quoted.path):1:14: number 1e999 is out of range for a double"))
        let strings = dir.appendingPathComponent("strings.json")
        try "[[\"inf\", 2], [3, \"-inf\"]]".write(to: strings, atomically: true, encoding: .utf8)
        let good = try runNabla(["run", graph.path, "--input", "M=@\(strings.path)", "--format", "json"])
        #expect(good.status == 0 && good.out.contains("\"s\": {\"shape\": [], \"data\": [\"nan\"]}"))
    }

    @Test func malformedJSONInputsSayWhatAndWhere() throws {
        let dir = try temporaryDirectory()
        let graph = dir.appendingPathComponent("m.nabla")
        try "input M: [2, 2]\noutput s = sum(M)\n".write(to: graph, atomically: true, encoding: .utf8)
        let cases: [(json: String, message: String)] = [
            ("[[1, 2], [3, 4]", ":1:16: not valid JSON: expected ',' or ']'"),
            ("[[1, 2], [3]]", ":1:10: holds a ragged array"),
            ("[[1, 2], 3, 4]", ":1:10: mixes numbers and arrays at one level"),
            ("[1, [2, 3], 4]", ":1:5: mixes numbers and arrays at one level"),
            ("[1, 2, true, 4]", ":1:8: holds something other than numbers"),
            ("[1, 2, 3, 4] x", ":1:14: not valid JSON: unexpected text after the value"),
            ("[01, 2, 3, 4]", ":1:2: not valid JSON: a number cannot start with 0"),
            ("", ":1:1: not valid JSON: the file is empty"),
        ]
        for (k, item) in cases.enumerated() {
            let file = dir.appendingPathComponent("case\(k).json")
            try item.json.write(to: file, atomically: true, encoding: .utf8)
            let result = try runNabla(["run", graph.path, "--input", "M=@\(file.path)"])
            #expect(result.status == 2, "\(item.json)")
            #expect(result.err.contains(file.path + item.message), "\(item.json): \(result.err)")
        }
        let deep = dir.appendingPathComponent("deep.json")
        try (String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).write(to: deep, atomically: true, encoding: .utf8)
        let nested = try runNabla(["run", graph.path, "--input", "M=@\(deep.path)"])
        #expect(nested.status == 2 && nested.err.contains("nested deeper than 64"))
        let endless = try runNabla(["run", graph.path, "--input", "M=@/dev/zero"])
        #expect(endless.status == 2 && endless.err.contains("cannot read '/dev/zero': it is longer than"))
    }

    @Test func inputFilesAreReadToTheirEndFromFIFOsAndStandardInput() throws {
        let seed = example("seed-function.nabla")
        let expected = "f [] = 0.5569190370486238\ndf/dx [] = 1.6537392657496657\n"
        let dir = try temporaryDirectory()
        let fifo = dir.appendingPathComponent("x.fifo")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/bin/sh")
        writer.arguments = ["-c", "printf '[0.5]' > \"$0\"", fifo.path]
        try writer.run()
        let fromFIFO = try runNabla(["run", seed, "--input", "x=@\(fifo.path)"])
        writer.waitUntilExit()
        #expect(fromFIFO.status == 0, "\(fromFIFO.err)")
        #expect(fromFIFO.out == expected)

        let fromStdin = try runNabla(["run", seed, "--input", "x=@/dev/stdin"], input: "[0.5]\n")
        #expect(fromStdin.status == 0, "\(fromStdin.err)")
        #expect(fromStdin.out == expected)
        let graphFromStdin = try runNabla(["run", "/dev/stdin", "--input", "x=0.5"], input: try String(contentsOfFile: seed, encoding: .utf8))
        #expect(graphFromStdin.status == 0, "\(graphFromStdin.err)")
        #expect(graphFromStdin.out == expected)
        let benchFromStdin = try runNabla(["bench", "/dev/stdin", "--backend", "interp", "--seconds", "0.01"], input: try String(contentsOfFile: seed, encoding: .utf8))
        #expect(benchFromStdin.status == 0, "\(benchFromStdin.err)")
        let directory = try runNabla(["run", seed, "--input", "x=@\(dir.path)"])
        #expect(directory.status == 2 && directory.err.contains("cannot read '\(dir.path)': Is a directory"))
    }

    // MARK: - Output

    @Test func compileWritesNothingWhenAnOutputCannotBeWritten() throws {
        let seed = example("seed-function.nabla")
        let dir = try temporaryDirectory()
        let toProc = try runNabla(["compile", seed, "--header", "/proc/version"])
        #expect(toProc.status == 2)
        #expect(toProc.out == "")
        #expect(toProc.err.hasPrefix("error: cannot write '/proc/version': "))
        let c = dir.appendingPathComponent("seed.c")
        let withC = try runNabla(["compile", seed, "-o", c.path, "--header", "/proc/version"])
        #expect(withC.status == 2 && !FileManager.default.fileExists(atPath: c.path))
        // A header that cannot be opened leaves an existing C file as it was.
        try "old".write(to: c, atomically: true, encoding: .utf8)
        let missing = dir.appendingPathComponent("no/such/dir/seed.h")
        let noDirectory = try runNabla(["compile", seed, "-o", c.path, "--header", missing.path])
        #expect(noDirectory.status == 2)
        #expect(noDirectory.err == "error: cannot write '\(missing.path)': No such file or directory\n")
        #expect(try String(contentsOf: c, encoding: .utf8) == "old")
        let same = try runNabla(["compile", seed, "-o", c.path, "--header", c.path])
        #expect(same.status == 2 && same.err == "error: -o and --header name the same file '\(c.path)'\n")
        let link = dir.appendingPathComponent("link.c")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: c)
        let linked = try runNabla(["compile", seed, "-o", c.path, "--header", link.path])
        #expect(linked.status == 2 && linked.err.contains("name the same file"))
        // Shorter output replaces a longer file entirely.
        try String(repeating: "x", count: 100_000).write(to: c, atomically: true, encoding: .utf8)
        let rewritten = try runNabla(["compile", seed, "-o", c.path])
        #expect(rewritten.status == 0 && rewritten.out == "")
        #expect(try String(contentsOf: c, encoding: .utf8).hasPrefix("/* Generated by Nabla") && !String(contentsOf: c, encoding: .utf8).contains("xxx"))
    }

    @Test func standardOutputThatCannotBeWrittenIsAnError() throws {
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let run = try runNabla(["run", example("seed-function.nabla"), "--input", "x=0.5"], output: full)
        #expect(run.status == 2)
        #expect(run.err == "error: cannot write to standard output: No space left on device\n")
        let compile = try runNabla(["compile", example("seed-function.nabla")], output: full)
        #expect(compile.status == 2 && compile.err.contains("cannot write to standard output"))
    }

    @Test func pngRenderingReportsWhatDotSaid() throws {
        let dir = try temporaryDirectory()
        let bin = dir.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let dot = bin.appendingPathComponent("dot")
        let path = bin.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        // A dot that fails, as Graphviz does for a directory it cannot write to.
        try "#!/bin/sh\necho 'Error: Could not open \"'$3'\" for writing' >&2\nexit 1\n".write(to: dot, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dot.path)
        let png = dir.appendingPathComponent("out.png").path
        let failed = try runNabla(["graph", example("seed-function.nabla"), "--png", png], settingEnvironment: ["PATH": path])
        #expect(failed.status == 2)
        #expect(failed.err == "error: dot could not render '\(png)' (status 1): Error: Could not open \"\(png)\" for writing\n")
        // A dot that copies its input to the output: the DOT text reaches it whole.
        try "#!/bin/sh\ncp \"$4\" \"$3\"\n".write(to: dot, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dot.path)
        let rendered = try runNabla(["graph", example("seed-function.nabla"), "--backward", "--png", png], settingEnvironment: ["PATH": path])
        #expect(rendered.status == 0 && rendered.out == "")
        let drawn = try runNabla(["graph", example("seed-function.nabla"), "--backward"])
        #expect(try String(contentsOfFile: png, encoding: .utf8) + "\n" == drawn.out)
    }

    /// Compiles C files in `directory` with gcc (strict C99, warnings as errors), runs the
    /// program and returns what it printed.
    private func compileAndRunC(_ files: [String], in directory: URL) throws -> String {
        let gcc = Process()
        gcc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gcc.currentDirectoryURL = directory
        gcc.arguments = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o", "program"] + files + ["-lm"]
        let errors = Pipe()
        gcc.standardError = errors
        try gcc.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        gcc.waitUntilExit()
        #expect(gcc.terminationStatus == 0, "gcc: \(message)")
        guard gcc.terminationStatus == 0 else { return "" }
        let program = Process()
        program.executableURL = directory.appendingPathComponent("program")
        let pipe = Pipe()
        program.standardOutput = pipe
        try program.run()
        let printed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        program.waitUntilExit()
        return printed
    }
}

/// `NABLA_ISA` narrows the runtime's vector code: the AVX2 and baseline paths (of matrix
/// products, LU and Cholesky) run on a wider machine and give the same bits as its own path.
@Suite("Instruction sets: every path gives the same bits")
struct InstructionSetTests {
    /// Files whose kernels call the runtime's matrix product (tiled and matrix-vector), LU
    /// solves and inverses, and the Cholesky factor and triangular solves.
    static let files = ["benchmarks/problems/p4-mlp.nabla", "benchmarks/problems/p5-gp.nabla",
                        "examples/gaussian-process-cholesky.nabla", "benchmarks/problems/p5-gp-cholesky.nabla",
                        "examples/matrix-identities.nabla"]

    @Test(arguments: files)
    func narrowerPathsAgreeBitForBit(_ file: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let arguments = ["run", root.appendingPathComponent(file).path, "--seed", "3", "--format", "json"]
        let widest = try runNabla(arguments, settingEnvironment: ["NABLA_BLAS": "off"])
        #expect(widest.status == 0, "\(widest.err)")
        for isa in ["avx2", "baseline"] {
            let narrow = try runNabla(arguments, settingEnvironment: ["NABLA_ISA": isa, "NABLA_BLAS": "off"])
            #expect(narrow.status == 0, "\(isa): \(narrow.err)")
            #expect(narrow.out == widest.out, "\(file): NABLA_ISA=\(isa) changes the results")
        }
    }

    @Test func theBenchmarkNamesTheInstructionSetAndBadValuesAreErrors() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = root.appendingPathComponent("examples/seed-function.nabla").path
        let bench = try runNabla(["bench", file, "--backend", "tcc", "--seconds", "0.01"], settingEnvironment: ["NABLA_ISA": "baseline"])
        #expect(bench.status == 0, "\(bench.err)")
        #expect(bench.out.contains("instruction set baseline"), "\(bench.out)")
        let bad = try runNabla(["run", file, "--seed", "1"], settingEnvironment: ["NABLA_ISA": "sse9"])
        #expect(bad.status == 2)
        #expect(bad.err.contains("error: NABLA_ISA must be one of 'baseline', 'avx2', 'avx512', got 'sse9'"), "\(bad.err)")
    }
}
