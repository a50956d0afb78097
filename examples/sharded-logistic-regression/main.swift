// Logistic regression by gradient descent with the data split over MPI processes.
//
// 10,000 generated points in 8 dimensions, labelled by the sign of a fixed linear function
// with 10% of the labels flipped. Each process holds its own block of rows (here it generates
// the whole data and keeps its rows; a real job would read only them), and one data-parallel
// kernel computes the mean log-loss with an L2 penalty and its gradient: each process runs
// the kernel on its rows and the partial sums are added up over MPI, so every process holds
// the full-data loss and gradient and takes the same step.
//
// Process 0 then runs the same 100 steps with an ordinary kernel on all the data and compares
// the iterates; the program exits 1 unless they agree to 1e-12 relative.
//
//     swift build --product sharded-logistic-regression
//     mpirun -np 2 .build/debug/sharded-logistic-regression
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

let rows = 10_000, features = 8, steps = 100, rate = 1.0, penalty = 1e-3

/// The whole data set: points and ±1 labels.
func makeData() -> (points: [Double], labels: [Double]) {
    var generator = Generator(state: 7)
    let truth = (0..<features).map { Double($0 % 3) - 1 + 0.5 }
    var points: [Double] = [], labels: [Double] = []
    for _ in 0..<rows {
        let x = (0..<features).map { _ in generator.next() }
        let side = zip(x, truth).map { $0 * $1 }.reduce(0, +)
        let flipped = generator.next() > 0.8
        points += x
        labels.append((side > 0) != flipped ? 1 : -1)
    }
    return (points, labels)
}

/// The loss mean(softplus(-y (X w))) + penalty |w|^2 and its gradient.
func lossGraph() throws -> Graph {
    let g = GraphBuilder()
    let X = try g.input("X", shape: [rows, features]), y = try g.input("y", shape: [rows])
    let w = try g.input("w", shape: [features])
    let loss = try mean(softplus(-(y * X.matmul(w)))) + penalty * sum(w * w)
    return try g.graph(outputs: ["loss": loss, "dw": gradient(of: loss, wrt: [w])[0]])
}

/// Gradient descent from w = 0, calling `step` for the loss and gradient at each iterate.
func descend(_ evaluate: ([Double]) throws -> (loss: Double, gradient: [Double])) rethrows -> [[Double]] {
    var w = [Double](repeating: 0, count: features)
    var iterates = [w]
    for _ in 0..<steps {
        let (_, g) = try evaluate(w)
        w = zip(w, g).map { $0 - rate * $1 }
        iterates.append(w)
    }
    return iterates
}

let world: MPICommunicator
do {
    world = try MPICommunicator.world()
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
var status: Int32 = 0
do {
    let graph = try lossGraph()
    let kernel = try DataParallelKernel(graph, sharding: ["X", "y"], communicator: world)
    let data = makeData()
    // This process's rows only.
    let mine = kernel.rows
    let localX = Array(data.points[(mine.lowerBound * features)..<(mine.upperBound * features)])
    let localY = Array(data.labels[mine])
    var loss = [0.0], dw = [Double](repeating: 0, count: features)
    var losses: [Double] = []
    let sharded = try descend { w in
        try localX.withUnsafeBufferPointer { x in
            try localY.withUnsafeBufferPointer { y in
                try w.withUnsafeBufferPointer { wb in
                    try loss.withUnsafeMutableBufferPointer { lossBuffer in
                        try dw.withUnsafeMutableBufferPointer { dwBuffer in
                            try kernel.call(inputs: [x, y, wb], outputs: [lossBuffer, dwBuffer])
                        }
                    }
                }
            }
        }
        losses.append(loss[0])
        return (loss[0], dw)
    }
    if world.rank == 0 {
        print("\(world.size) process\(world.size == 1 ? "" : "es"), \(rows) rows (\(mine.count) on process 0), \(kernel.stageCount) stage\(kernel.stageCount == 1 ? "" : "s") per call")
        for step in stride(from: 0, to: steps, by: 20) { print(String(format: "step %3d  loss %.9f", step, losses[step])) }
        let whole = try Kernel(graph)
        let reference = try descend { w in
            let result = try whole([data.points, data.labels, w])
            return (result[0][0], result[1])
        }
        var worst = 0.0
        for (a, b) in zip(sharded, reference) {
            for (x, y) in zip(a, b) { worst = max(worst, abs(x - y) / max(abs(y), 1e-300)) }
        }
        print(String(format: "w = [%@]", sharded.last!.map { String(format: "%.4f", $0) }.joined(separator: ", ")))
        print("largest relative difference from one process on all the data, over \(steps) iterates: \(worst)")
        if worst > 1e-12 { status = 1 }
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    status = 2
}
world.finalize()
exit(status)
