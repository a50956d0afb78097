// Fitting an ODE's parameters by gradient descent through its integrator.
//
// A damped oscillator x'' + c x' + k x = 0, s = [x, v], integrated by RK4 with `scan` (the
// state after each of T steps of dt, one loop in the C). Samples of x along the true solution
// (k = 4, c = 0.3) get noise; the loss is the mean squared difference between the integrated
// and the sampled positions, and its gradient with respect to p = [k, c] comes from the same
// kernel (reverse mode runs the steps backwards). Gradient descent with a backtracking line
// search from p = [2.5, 1] must end within 0.05 of the truth: exits 1 otherwise.
//
//     swift run oscillator-fit
import Foundation
import Nabla

let steps = 400, dt = 0.025
let truth = [4.0, 0.3]

/// One RK4 step of the oscillator with parameters p.
func rk4(_ s: Tensor, _ p: Tensor) throws -> Tensor {
    func rhs(_ s: Tensor) throws -> Tensor { try stack([s[1], -(p[0] * s[0]) - p[1] * s[1]]) }
    let k1 = try rhs(s)
    let k2 = try rhs(s + (dt / 2) * k1)
    let k3 = try rhs(s + (dt / 2) * k2)
    let k4 = try rhs(s + dt * k3)
    return try s + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
}

var state: UInt64 = 11
@MainActor func noise() -> Double {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return (Double(state >> 11) / Double(1 << 53) * 2 - 1) * 0.02
}

do {
    let g = GraphBuilder()
    let s0 = try g.input("s0", shape: [2]), p = try g.input("p", shape: [2]), y = try g.input("y", shape: [steps])
    let path = try scan(s0, steps: steps) { s, _ in try rk4(s, p) }
    let loss = try mean(square(path[.all, 0] - y))
    let kernel = try Kernel(g.graph(outputs: ["L": loss, "dL/dp": gradient(of: loss, wrt: p), "x": path[.all, 0]]))

    // The samples: the integrated truth plus noise.
    let clean = try kernel([[1, 0], truth, [Double](repeating: 0, count: steps)])[2]
    let samples = clean.map { $0 + noise() }

    var estimate = [2.5, 1.0]
    var out = try kernel([[1, 0], estimate, samples])
    var iteration = 0
    // Until the gradient vanishes or a step no longer lowers the loss.
    var previous = Double.infinity
    while iteration < 1000, out[1].reduce(0, { max($0, Swift.abs($1)) }) > 1e-9, out[0][0] < previous {
        previous = out[0][0]
        // Backtracking: halve the step until the loss falls enough (Armijo's condition).
        let slope = out[1].reduce(0) { $0 + $1 * $1 }
        var rate = 1.0
        var trial = out
        var candidate = estimate
        repeat {
            candidate = zip(estimate, out[1]).map { $0 - rate * $1 }
            trial = try kernel([[1, 0], candidate, samples])
            rate /= 2
        } while trial[0][0] > out[0][0] - 1e-4 * 2 * rate * slope && rate > 1e-12
        estimate = candidate
        out = trial
        iteration += 1
        if iteration.isMultiple(of: 10) { print(String(format: "iteration %4d  L %.10f  k %.6f  c %.6f", iteration, out[0][0], estimate[0], estimate[1])) }
    }
    let error = zip(estimate, truth).map { Swift.abs($0 - $1) }.max()!
    print(String(format: "fitted k = %.6f, c = %.6f after %d iterations (truth k = 4, c = 0.3); loss %.3e", estimate[0], estimate[1], iteration, out[0][0]))
    print(String(format: "largest parameter error: %.4f", error))
    exit(error < 0.05 ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
