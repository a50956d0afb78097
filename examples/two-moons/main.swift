// A two-layer perceptron trained by minibatch SGD on the two-moons set.
//
// 400 points of two interleaved half circles with noise 0.1; a 2-16-1 network with tanh
// hidden units, its logit z = w2 . tanh(X W1 + b1) + b2 and the mean log-loss softplus(z) - y z.
// One Nabla kernel computes a minibatch's loss and the gradients of all four parameters;
// another evaluates the whole set. SGD with momentum, 32 points a batch, shuffled each epoch; a
// progress line per epoch. Exits 1 unless the loss fell and the accuracy is over 95%.
//
//     swift run two-moons
import Foundation
import Nabla

struct Generator {
    var state: UInt64
    mutating func next() -> Double {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(state >> 11) / Double(1 << 53)
    }
    /// A standard normal number (Box-Muller).
    mutating func normal() -> Double {
        let u = max(next(), 1e-300), v = next()
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v)
    }
}

let count = 400, hidden = 16, batch = 32, epochs = 40
var generator = Generator(state: 2024)
var points: [Double] = [], labels: [Double] = []
for i in 0..<count {
    let upper = i % 2 == 0
    let angle = Double.pi * generator.next()
    let x = upper ? Foundation.cos(angle) : 1 - Foundation.cos(angle)
    let y = upper ? Foundation.sin(angle) : 0.5 - Foundation.sin(angle)
    points += [x + 0.1 * generator.normal(), y + 0.1 * generator.normal()]
    labels.append(upper ? 1 : 0)
}

/// The network's logits for `rows` points, and their mean log-loss.
func network(_ g: GraphBuilder, rows: Int) throws -> (inputs: [Tensor], z: Tensor, loss: Tensor) {
    let X = try g.input("X", shape: [rows, 2]), y = try g.input("y", shape: [rows])
    let W1 = try g.input("W1", shape: [2, hidden]), b1 = try g.input("b1", shape: [hidden])
    let w2 = try g.input("w2", shape: [hidden]), b2 = try g.input("b2")
    let z = try tanh(X.matmul(W1) + b1).matmul(w2) + b2
    return ([X, y, W1, b1, w2, b2], z, try mean(softplus(z) - y * z))
}

do {
    let train = GraphBuilder()
    let (inputs, _, batchLoss) = try network(train, rows: batch)
    let gradients = try gradient(of: batchLoss, wrt: Array(inputs[2...]))
    let step = try Kernel(train.graph(outputs: [("loss", batchLoss)] + zip(["dW1", "db1", "dw2", "db2"], gradients).map { ($0, $1) }))
    let whole = GraphBuilder()
    let (_, logits, wholeLoss) = try network(whole, rows: count)
    let evaluate = try Kernel(whole.graph(outputs: ["loss": wholeLoss, "z": logits]))

    // Parameters: W1, b1, w2, b2, initialised small and random.
    var parameters: [[Double]] = [
        (0..<(2 * hidden)).map { _ in generator.normal() },
        [Double](repeating: 0, count: hidden),
        (0..<hidden).map { _ in generator.normal() / Double(hidden).squareRoot() },
        [0],
    ]
    var velocity = parameters.map { [Double](repeating: 0, count: $0.count) }
    let rate = 0.3, momentum = 0.9
    func report(_ epoch: Int) throws -> (loss: Double, accuracy: Double) {
        let out = try evaluate([points, labels] + parameters)
        let correct = zip(out[1], labels).filter { ($0 > 0) == ($1 == 1) }.count
        let accuracy = Double(correct) / Double(count)
        print(String(format: "epoch %2d  loss %.4f  accuracy %5.1f%%", epoch, out[0][0], 100 * accuracy))
        return (out[0][0], accuracy)
    }
    let first = try report(0)
    var order = Array(0..<count)
    var last = first
    for epoch in 1...epochs {
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(generator.next() * Double(i + 1))) }
        for start in stride(from: 0, to: count - batch + 1, by: batch) {
            let rows = order[start..<(start + batch)]
            let x = rows.flatMap { [points[2 * $0], points[2 * $0 + 1]] }, y = rows.map { labels[$0] }
            let out = try step([x, y] + parameters)
            for k in parameters.indices {
                for j in parameters[k].indices {
                    velocity[k][j] = momentum * velocity[k][j] - rate * out[k + 1][j]
                    parameters[k][j] += velocity[k][j]
                }
            }
        }
        last = try report(epoch)
    }
    let ok = last.loss < first.loss && last.accuracy > 0.95
    print("loss \(String(format: "%.4f", first.loss)) -> \(String(format: "%.4f", last.loss)); accuracy \(String(format: "%.1f", 100 * last.accuracy))%: \(ok ? "trained" : "NOT trained")")
    exit(ok ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
