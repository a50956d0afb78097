// Gaussian-process hyperparameters fitted by gradient descent on the negative log marginal
// likelihood.
//
// 30 noisy samples of sin(3 t) on [-1, 1]; a squared-exponential kernel
// K = s^2 exp(-(t_i - t_j)^2 / (2 l^2)) + sigma^2 I with log l, log s, log sigma as parameters;
// NLML = 1/2 y^T K^-1 y + 1/2 log det K + n/2 log 2 pi. One Nabla kernel gives the NLML and its
// gradient (through the solve and the log-determinant); gradient descent on the logs follows
// it. Exits 1 unless the NLML fell and the gradient ends below 1e-4.
//
//     swift run gp-hyperparameters
import Foundation
import Nabla

let count = 30
var state: UInt64 = 11
@MainActor func noise() -> Double {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return (Double(state >> 11) / Double(1 << 53) * 2 - 1) * 0.1
}
let ts = (0..<count).map { -1 + 2 * Double($0) / Double(count - 1) }
let ys = ts.map { Foundation.sin(3 * $0) + noise() }
// Squared distances between the points, an input like the data.
let distances = ts.flatMap { a in ts.map { b in (a - b) * (a - b) } }
var identity = [Double](repeating: 0, count: count * count)
for i in 0..<count { identity[i * count + i] = 1 }

do {
    let g = GraphBuilder()
    let D = try g.input("D", shape: [count, count]), I = try g.input("I", shape: [count, count])
    let y = try g.input("y", shape: [count]), logs = try g.input("logs", shape: [3])
    let lengthscale = try exp(logs[0]), scale = try exp(logs[1]), noiseLevel = try exp(logs[2])
    let K = try scale * scale * exp(-0.5 * D / (lengthscale * lengthscale)) + noiseLevel * noiseLevel * I
    let nlml = try 0.5 * y.matmul(solve(K, y)) + 0.5 * logdet(K) + 0.5 * Double(count) * Foundation.log(2 * Double.pi)
    let kernel = try Kernel(g.graph(outputs: ["nlml": nlml, "d/dlogs": gradient(of: nlml, wrt: logs)]))

    var parameters = [Foundation.log(1.0), Foundation.log(1.0), Foundation.log(0.5)]
    var out = try kernel([distances, identity, ys, parameters])
    let first = out[0][0]
    var steps = 0
    while steps < 5000 && out[1].map(Swift.abs).max()! > 1e-5 {
        parameters = zip(parameters, out[1]).map { $0 - 0.02 * $1 }
        out = try kernel([distances, identity, ys, parameters])
        steps += 1
        if steps.isMultiple(of: 250) {
            print(String(format: "step %4d  NLML %.6f  l %.4f  s %.4f  sigma %.4f", steps, out[0][0],
                         Foundation.exp(parameters[0]), Foundation.exp(parameters[1]), Foundation.exp(parameters[2])))
        }
    }
    let gradientSize = out[1].map(Swift.abs).max()!
    print(String(format: "NLML %.6f -> %.6f in %d steps; l = %.4f, s = %.4f, sigma = %.4f (the data's noise is uniform, sd 0.058); |gradient| %.1e",
                 first, out[0][0], steps, Foundation.exp(parameters[0]), Foundation.exp(parameters[1]), Foundation.exp(parameters[2]), gradientSize))
    exit(out[0][0] < first && gradientSize < 1e-4 ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
