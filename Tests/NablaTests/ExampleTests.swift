import Foundation
import Testing
@testable import Nabla

/// One `#= NAME=VALUES ... -> NAME=VALUES ...` line of an example: inputs and expected outputs.
struct ExampleExpectation {
    var inputs: [String: String] = [:]
    var outputs: [String: [Double]] = [:]
}

func expectations(in text: String) -> [ExampleExpectation] {
    text.split(separator: "\n").compactMap { line in
        guard line.hasPrefix("#=") else { return nil }
        let halves = line.dropFirst(2).components(separatedBy: "->")
        guard halves.count == 2 else { return nil }
        var expectation = ExampleExpectation()
        for pair in halves[0].split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            expectation.inputs[String(parts[0])] = String(parts[1])
        }
        for pair in halves[1].split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            expectation.outputs[String(parts[0])] = parts[1].split(separator: ",").map { Double($0)! }
        }
        return expectation
    }
}

@Suite("Example graph files")
struct ExampleTests {
    @Test func thereAreExamples() {
        #expect(exampleFiles().count >= 10)
    }

    /// A derivative that is NaN (with its finite difference) is not confirmed: the check fails
    /// it with an infinite error rather than passing it.
    @Test func aNaNDerivativeFailsTheCheck() throws {
        let program = try NablaProgram(source: "input x\noutput f = x^0.5\ngrad f wrt x\n", fileName: "nan.nabla")
        let inputs = ["x": TensorData(-0.5)]
        let computed = try Interpreter.evaluate(program.graph, inputs: inputs)
        #expect(computed["df/dx"]!.scalar.isNaN)
        let results = try DerivativeCheck.check(program, at: inputs, computed: computed)
        #expect(results.count == 1 && !results[0].passed && results[0].error == .infinity)
    }

    /// Every example compiles, its kernel matches the interpreter, every derivative agrees with
    /// finite differences at seeded inputs, and every `#=` line's values hold.
    @Test(arguments: exampleFiles().map { URL(fileURLWithPath: $0).lastPathComponent })
    func exampleRunsAndChecks(_ name: String) throws {
        let path = exampleFiles().first { $0.hasSuffix("/" + name) }!
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // Small sizes keep the finite-difference checks quick.
        let program = try NablaProgram(source: text, fileName: name, dims: name == "rosenbrock.nabla" ? ["N": 12] : [:])
        var rng = SeededRandom(seed: 5)
        var inputs: [String: TensorData] = [:]
        for port in program.graph.inputs {
            inputs[port.name] = TensorData.random(program.graph.nodes[port.node].shape, in: -1...1, using: &rng)
        }
        let computed = try expectKernelMatchesInterpreter(program.graph, inputs)
        let results = try DerivativeCheck.check(program, at: inputs, computed: computed)
        #expect(!results.isEmpty, "\(name) has derivative outputs")
        for result in results {
            #expect(result.passed, "\(name): \(result.output) differs from finite differences by \(result.error)")
        }

        let full = try NablaProgram(source: text, fileName: name)
        let kernel = try Kernel(full.graph)
        for expectation in expectations(in: text) {
            var given: [String: TensorData] = [:]
            for port in full.graph.inputs {
                let shape = full.graph.nodes[port.node].shape
                given[port.name] = try TensorText.parse(expectation.inputs[port.name]!, shape: shape, name: port.name)
            }
            let out = try kernel(given)
            for (output, values) in expectation.outputs {
                let got = try #require(out[output], "\(name) has output \(output)")
                expectClose(got.scalars, values, tolerance: 1e-13, floor: 1, "\(name) \(output) at \(expectation.inputs)")
            }
        }
    }

    /// The Rosenbrock example at its minimum (1, ..., 1): value and gradient vanish, and the
    /// Hessian-vector product equals the closed-form tridiagonal Hessian times v.
    @Test func rosenbrockAtItsMinimum() throws {
        let path = exampleFiles().first { $0.hasSuffix("/rosenbrock.nabla") }!
        let n = 6
        let program = try NablaProgram(contentsOfFile: path, dims: ["N": n])
        let v = (0..<n).map { Double($0) - 2 }
        let out = try Kernel(program.graph)(["x": TensorData(repeating: 1, shape: [n]), "v": try TensorData(shape: [n], scalars: v)])
        #expect(out["f"]!.scalar == 0)
        #expect(out["df/dx"]!.scalars == [Double](repeating: 0, count: n))
        // At x = 1: H_ii = 802 for 0 < i < n-1 (202 at the last, 802 at the first), H_{i,i+1} = -400.
        var hv = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let diagonal = (i < n - 1 ? 802.0 : 0) + (i > 0 ? 200 : 0)
            hv[i] = diagonal * v[i]
            if i + 1 < n { hv[i] += -400 * v[i + 1] }
            if i > 0 { hv[i] += -400 * v[i - 1] }
        }
        expectClose(out["d2f/dx2.v"]!.scalars, hv, tolerance: 1e-14)
    }
}
