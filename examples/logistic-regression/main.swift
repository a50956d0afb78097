// Logistic regression by gradient descent on generated, linearly separable data.
//
// 200 points in the plane, labelled by which side of the line 1.5 x - y + 0.25 = 0 they fall
// (points within 0.1 of it are left out, so the classes are separated by a margin). The loss
// is the mean log-loss of p = sigmoid(X w + b), written stably as softplus(z) - y z; one Nabla
// kernel computes it and its gradient, and plain gradient descent calls it 400 times. Exits 1
// unless the loss fell at every step and every point ends up classified correctly.
//
//     swift run logistic-regression
import Foundation
import Nabla

/// Deterministic uniform numbers in [-1, 1).
struct Generator {
    var state: UInt64
    mutating func next() -> Double {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }
}

let count = 200
var generator = Generator(state: 42)
var points: [Double] = [], labels: [Double] = []
while labels.count < count {
    let x = generator.next(), y = generator.next()
    let side = 1.5 * x - y + 0.25
    if Swift.abs(side) < 0.1 { continue }
    points += [x, y]
    labels.append(side > 0 ? 1 : 0)
}

do {
    let g = GraphBuilder()
    let X = try g.input("X", shape: [count, 2]), y = try g.input("y", shape: [count])
    let w = try g.input("w", shape: [2]), b = try g.input("b")
    let z = try X.matmul(w) + b
    let loss = try mean(softplus(z) - y * z)
    let gradients = try gradient(of: loss, wrt: [w, b])
    let kernel = try Kernel(g.graph(outputs: ["loss": loss, "dw": gradients[0], "db": gradients[1], "z": z]))

    var weights = [0.0, 0.0], bias = 0.0
    let rate = 2.0
    var previous = Double.infinity, monotone = true
    var out: [[Double]] = []
    for step in 0...400 {
        out = try kernel([points, labels, weights, [bias]])
        let value = out[0][0]
        if value > previous { monotone = false }
        previous = value
        if step % 50 == 0 { print(String(format: "step %3d  loss %.6f", step, value)) }
        if step == 400 { break }
        weights = zip(weights, out[1]).map { $0 - rate * $1 }
        bias -= rate * out[2][0]
    }
    let correct = zip(out[3], labels).filter { ($0 > 0) == ($1 == 1) }.count
    print(String(format: "w = (%.3f, %.3f), b = %.3f; direction of the true line (1.5, -1, 0.25) up to scale", weights[0], weights[1], bias))
    print("loss fell at every step: \(monotone ? "yes" : "NO")")
    print("accuracy: \(correct)/\(count)")
    exit(monotone && correct == count ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
