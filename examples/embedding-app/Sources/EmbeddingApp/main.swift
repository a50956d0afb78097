// Embeds Nabla kernels in an application: a loss built on a 300 x 300 matrix product with its
// gradient, compiled once with TinyCC, called through the checked API and the unchecked one in
// a loop, and as a tiered kernel that moves to the system compiler's code. Every result is
// checked against Nabla's interpreter; the exit status is 1 when one differs.
//
//     swift run -c release EmbeddingApp [--calls N]
import Foundation
import Nabla

let n = 300
var calls = 50
if let k = CommandLine.arguments.firstIndex(of: "--calls"), k + 1 < CommandLine.arguments.count, let count = Int(CommandLine.arguments[k + 1]) {
    calls = max(1, count)
}

/// Deterministic inputs in [-1, 1).
func values(_ count: Int, seed: UInt64) -> [Double] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }
}

func median(_ samples: [Duration]) -> Duration { samples.sorted()[samples.count / 2] }

func milliseconds(_ d: Duration) -> String {
    let (seconds, attoseconds) = d.components
    return String(format: "%.3f ms", (Double(seconds) + Double(attoseconds) * 1e-18) * 1e3)
}

var failures = 0
@MainActor func check(_ what: String, _ got: [String: TensorData], _ want: [String: TensorData]) {
    let same = want.allSatisfy { name, value in
        got[name].map { zip($0.scalars, value.scalars).allSatisfy { $0.bitPattern == $1.bitPattern } } ?? false
    }
    print("\(what): \(same ? "agrees with the interpreter bit for bit" : "DIFFERS from the interpreter")")
    if !same { failures += 1 }
}

do {
    // L = sum(tanh(A B)), and dL/dA = (1 - tanh(A B)^2) B^T: two 300 x 300 products per call.
    let g = GraphBuilder()
    let A = try g.input("A", shape: [n, n]), B = try g.input("B", shape: [n, n])
    let L = try sum(tanh(A.matmul(B)))
    let graph = try g.graph(outputs: ["L": L, "dL/dA": gradient(of: L, wrt: A)])
    let inputs = [
        "A": try TensorData(shape: [n, n], scalars: values(n * n, seed: 1)),
        "B": try TensorData(shape: [n, n], scalars: values(n * n, seed: 2)),
    ]
    let reference = try Interpreter.evaluate(graph, inputs: inputs)

    let start = ContinuousClock.now
    let kernel = try Kernel(graph)
    print("compiled with TinyCC in \(milliseconds(ContinuousClock.now - start)); runtime: \(KernelRuntime.origin)")

    // Checked: names and shapes are verified, results allocated.
    check("checked call", try kernel(inputs), reference)

    // Unchecked: raw pointers and a workspace of our own, nothing allocated per call.
    let workspace = kernel.makeWorkspace()
    let a = inputs["A"]!.scalars, b = inputs["B"]!.scalars
    var loss = [0.0], gradientA = [Double](repeating: 0, count: n * n)
    var samples: [Duration] = []
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            loss.withUnsafeMutableBufferPointer { lp in
                gradientA.withUnsafeMutableBufferPointer { gp in
                    let ins: [UnsafePointer<Double>?] = [ap.baseAddress, bp.baseAddress]
                    let outs: [UnsafeMutablePointer<Double>?] = [lp.baseAddress, gp.baseAddress]
                    for _ in 0..<calls {
                        let t0 = ContinuousClock.now
                        kernel.callUnchecked(inputs: ins, outputs: outs, workspace: workspace.pointer)
                        samples.append(ContinuousClock.now - t0)
                    }
                }
            }
        }
    }
    check("unchecked calls", ["L": TensorData(loss[0]), "dL/dA": try TensorData(shape: [n, n], scalars: gradientA)], reference)
    print("unchecked call, two \(n) x \(n) products: median \(milliseconds(median(samples))) over \(calls) calls")

    // Tiered: callable at once on TinyCC, then on the system compiler's code.
    let tiered = try TieredKernel(graph, upgradeImmediately: true)
    check("tiered kernel before the upgrade", try tiered(inputs), reference)
    let backend = try tiered.waitForUpgrade()
    check("tiered kernel on \(backend)", try tiered(inputs), reference)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
exit(failures == 0 ? 0 : 1)
