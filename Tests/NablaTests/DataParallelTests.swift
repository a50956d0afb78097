import Foundation
import Testing
@testable import Nabla

/// Runs `graph` split by rows over `ranks` threads of an `InProcessGroup`, every rank given
/// the same whole-data inputs, and returns each rank's outputs (or the error it threw).
func runSharded(
    _ graph: Graph, sharding: Set<String>, ranks: Int, inputs: [String: TensorData], backend: Backend = .tcc
) throws -> [[String: TensorData]] {
    let group = InProcessGroup(size: ranks)
    let results = Lock<[Int: Result<[String: TensorData], NablaError>]>([:])
    let done = DispatchSemaphore(value: 0)
    for rank in 0..<ranks {
        let thread = Thread {
            let result = Result { () throws(NablaError) -> [String: TensorData] in
                do {
                    let kernel = try DataParallelKernel(graph, sharding: sharding, communicator: group.members[rank], backend: backend)
                    return try kernel(inputs)
                } catch let error as NablaError { throw error } catch { throw NablaError.internalInconsistency("\(error)") }
            }
            results.withLock { $0[rank] = result }
            done.signal()
        }
        thread.stackSize = 16 << 20
        thread.start()
    }
    for _ in 0..<ranks {
        guard done.wait(timeout: .now() + 120) == .success else { throw NablaError.communication("a rank did not finish in 120 s") }
    }
    return try (0..<ranks).map { rank in try results.withLock { $0[rank]! }.get() }
}

/// A program from source text.
private func program(_ text: String, dims: [String: Int] = [:]) throws -> NablaProgram {
    try NablaProgram(source: "dim N = 10\n" + text, fileName: "sharded.nabla", dims: dims)
}

/// Random inputs for every input of `graph`, from `seed`; inputs named `y` or `labels` get
/// ±1 labels.
private func sampleInputs(_ graph: Graph, seed: UInt64) -> [String: TensorData] {
    var generator = SeededRandom(seed: seed)
    var inputs: [String: TensorData] = [:]
    for port in graph.inputs {
        var value = TensorData.random(graph.nodes[port.node].shape, in: -1...1, using: &generator)
        if port.name == "labels" { value.scalars = value.scalars.map { $0 < 0 ? -1 : 1 } }
        inputs[port.name] = value
    }
    return inputs
}

/// Losses and derivatives a data-parallel user writes, each with what it shards.
private let shardedPrograms: [(name: String, source: String, sharding: Set<String>, stages: Int)] = [
    ("least squares with gradient and Hessian (P3)", """
    input Phi: [N, 3]
    input y: [N]
    input theta: [3]
    e = y - Phi @ theta
    output L = 0.5 * sum(e^2)
    grad L wrt theta
    hessian L wrt theta
    """, ["Phi", "y"], 1),
    ("logistic regression: a mean plus an L2 penalty", """
    input X: [N, 4]
    input labels: [N]
    input w: [4]
    output loss = mean(softplus(-labels * (X @ w))) + 0.01 * sum(w^2)
    grad loss wrt w
    """, ["X", "labels"], 2),
    ("not additive: the square of a sum", """
    input Phi: [N, 3]
    input theta: [3]
    output s = sum(Phi @ theta)^2
    grad s wrt theta
    """, ["Phi"], 2),
    ("rows out: predictions and the gradient with respect to the data", """
    input X: [N, 3]
    input w: [3]
    output p = sigmoid(X @ w)
    output total = sum(p)
    grad total wrt X
    grad total wrt w
    """, ["X"], 1),
    ("a replicated input with the rows, cut to each block", """
    input X: [N, 2]
    input y: [N]
    input w: [2]
    output L = sum((X @ w - y)^2)
    grad L wrt w
    grad L wrt y
    """, ["X"], 1),
    ("centred data: the mean over rows used row by row", """
    input X: [N, 3]
    input w: [3]
    Z = X - mean(X, 0)
    output v = sum((Z @ w)^2) / 2
    grad v wrt w
    grad v wrt X
    """, ["X"], 2),
    ("softmax classification over a class axis", """
    input X: [N, 3]
    input W: [3, 4]
    input T: [N, 4]
    logits = X @ W
    output nll = -sum(T * log_softmax(logits, 1)) / 5
    grad nll wrt W
    """, ["X", "T"], 1),
    ("a Cholesky of the Gram matrix (reduced first)", """
    input X: [N, 3]
    input s: []
    A = X' @ X + exp(s) * eye(3)
    output ld = cho_logdet(cholesky(A))
    grad ld wrt s
    """, ["X"], 2),
    ("transposed data, a dot product over rows", """
    input X: [N, 2]
    input y: [N]
    output g = X' @ y
    output d = dot(y, y)
    """, ["X", "y"], 1),
]

@Suite("Data-parallel kernels over split rows")
struct DataParallelTests {
    /// Every program, on 1 to 4 ranks with row counts that divide evenly, unevenly and leave a
    /// rank without rows, gives every rank the unsharded kernel's outputs.
    @Test(arguments: shardedPrograms.indices)
    func shardedMatchesUnsharded(_ index: Int) throws {
        let case_ = shardedPrograms[index]
        for rows in [2, 7, 12] {
            let graph = try program(case_.source, dims: ["N": rows]).graph
            let inputs = sampleInputs(graph, seed: UInt64(index * 100 + rows))
            let expected = try Kernel(graph)(inputs)
            for ranks in [1, 2, 3, 4] {
                let results = try runSharded(graph, sharding: case_.sharding, ranks: ranks, inputs: inputs)
                for (rank, outputs) in results.enumerated() {
                    for port in graph.outputs {
                        #expect(outputs[port.name]?.shape == expected[port.name]!.shape)
                        expectClose(outputs[port.name]?.scalars ?? [], expected[port.name]!.scalars, tolerance: 1e-12, floor: 1e-12,
                                    "\(case_.name): N=\(rows), \(ranks) ranks, rank \(rank), output \(port.name)")
                    }
                }
            }
        }
    }
}
