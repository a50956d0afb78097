// Least squares two ways: the normal equations solved directly, and gradient descent on the
// same loss, which must arrive at the same parameters.
//
// A cubic y = 0.5 - 1.2 t + 0.8 t^2 + 0.3 t^3 plus noise at 50 points of [-1, 1]; features
// Phi = [1, t, t^2, t^3]. One kernel gives L = 1/2 ||y - Phi theta||^2 and its gradient;
// another solves (Phi^T Phi) theta = Phi^T y with Nabla's LU. Exits 1 unless gradient descent
// ends within 1e-8 of the direct solution.
//
//     swift run least-squares-fit
import Foundation
import Nabla

let count = 50, features = 4
var state: UInt64 = 7
@MainActor func noise() -> Double {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return (Double(state >> 11) / Double(1 << 53) * 2 - 1) * 0.05
}
var phi: [Double] = [], ys: [Double] = []
for i in 0..<count {
    let t = -1 + 2 * Double(i) / Double(count - 1)
    phi += [1, t, t * t, t * t * t]
    ys.append(0.5 - 1.2 * t + 0.8 * t * t + 0.3 * t * t * t + noise())
}

do {
    let g = GraphBuilder()
    let Phi = try g.input("Phi", shape: [count, features]), y = try g.input("y", shape: [count])
    let theta = try g.input("theta", shape: [features])
    let residual = try y - Phi.matmul(theta)
    let loss = 0.5 * sum(square(residual))
    let descent = try Kernel(g.graph(outputs: ["L": loss, "dL/dtheta": gradient(of: loss, wrt: theta)]))
    let normal = try solve(Phi.transposed.matmul(Phi), Phi.transposed.matmul(y))
    let direct = try Kernel(g.graph(outputs: ["theta": normal]))

    // Every declared input is an input of both kernels; the direct one ignores theta.
    let exact = try direct([phi, ys, [Double](repeating: 0, count: features)])[0]
    // The step 1 / (largest eigenvalue of Phi^T Phi) at most: the trace bounds it.
    var gram = [Double](repeating: 0, count: features)
    for i in 0..<count { for j in 0..<features { gram[j] += phi[i * features + j] * phi[i * features + j] } }
    let rate = 1 / gram.reduce(0, +)
    var estimate = [Double](repeating: 0, count: features)
    var steps = 0
    var out = try descent([phi, ys, estimate])
    while steps < 2_000_000 && out[1].map(Swift.abs).max()! > 1e-12 {
        estimate = zip(estimate, out[1]).map { $0 - rate * $1 }
        out = try descent([phi, ys, estimate])
        steps += 1
        if steps.isMultiple(of: 20000) { print(String(format: "step %7d  L %.12f  |grad| %.2e", steps, out[0][0], out[1].map(Swift.abs).max()!)) }
    }
    let gap = zip(exact, estimate).map { Swift.abs($0 - $1) }.max()!
    print("normal equations:  " + exact.map { String(format: "%+.10f", $0) }.joined(separator: " "))
    print("gradient descent:  " + estimate.map { String(format: "%+.10f", $0) }.joined(separator: " ") + " (\(steps) steps)")
    print(String(format: "largest difference: %.2e", gap))
    exit(gap < 1e-8 ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
