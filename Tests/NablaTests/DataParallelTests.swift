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
    """, ["X", "labels"], 1),
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
    """, ["X"], 3),
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
    ("Hessians through a loop over directions, with a penalty counted once", """
    input X: [N, 20]
    input labels: [N]
    input w: [20]
    output loss = mean(softplus(-labels * (X @ w))) + 0.01 * sum(w^2)
    hessian loss wrt w
    """, ["X", "labels"], 1),
    ("columns, joins, selections and a partial sum joined with a replicated value", """
    input X: [N, 3]
    input y: [N]
    input w: [2]
    C = concat(X[:, 0:2], 2 * X[:, 1:3], 1)
    z = C @ concat(w, w, 0)
    output g = concat(X[:, 0:2]' @ y, w, 0)
    output s = sum(where(z > 0, z, 0.5 * z) * maximum(y, 0)) + sum(abs(X[:, 2]))
    grad s wrt w
    grad s wrt X
    """, ["X", "y"], 1),
    ("an empty summed output beside another", """
    input X: [N, 2]
    output a = sum(X, 0)[2:]
    output s = sum(X)
    """, ["X"], 1),
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
        for rows in [1, 2, 7, 12] {
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

/// A kernel for rank `rank` of `size`, without running it (making one does not communicate).
private func planned(_ graph: Graph, sharding: Set<String>, rank: Int = 0, size: Int = 2) throws -> DataParallelKernel {
    try DataParallelKernel(graph, sharding: sharding, communicator: InProcessGroup(size: size).members[rank])
}

/// A line that cannot run on split rows of X, the output named and the reason given.
private let refusalCases: [(String, String, String)] = [
        ("output m = max(X @ w)", "m", "max[0] takes the maximum over the rows"),
        ("output K = X @ X'", "K", "pairs each row of one operand with every row of the other"),
        ("output r = X[0]", "r", "picks some of the rows"),
        ("output T = X'", "T", "its rows lie along axis 1"),
        ("output p = softmax(X @ w)", "p", "softmax[0] normalises over the rows"),
        ("output l = logsumexp(X @ w)", "l", "is not a sum over the rows"),
        ("output f = reshape(X, [3 * N])", "f", "mixes the rows with other axes"),
        ("output d = det(X' @ X) + sum(max(X, 0))", "d", "max[0] takes the maximum over the rows"),
        ("def f(x) = sin(x @ w)\noutput m = map(f, X)", "m", "steps through values split by rows"),
        ("def f(c, x) = c + sum(x)\noutput s = fold(f, 0, X)", "s", "steps through values split by rows"),
]

/// Calls `kernel` unchecked on `inputs` (declaration order) and returns every output, flat.
private func callUnchecked(_ kernel: DataParallelKernel, _ inputs: [[Double]]) -> [Double] {
    let counts = kernel.outputs.map(\.shape.count)
    var flat = [Double](repeating: 0, count: counts.reduce(0, +))
    withBuffers(inputs) { buffers in
        flat.withUnsafeMutableBufferPointer { all in
            var start = 0
            let outputs: [UnsafeMutablePointer<Double>?] = counts.map { n in
                defer { start += n }
                return all.baseAddress! + start
            }
            kernel.callUnchecked(inputs: buffers.map(\.baseAddress), outputs: outputs)
        }
    }
    return flat
}

/// Calls `kernel`'s checked buffer call on `inputs` with outputs of `outputCounts` elements.
private func callChecked(_ kernel: DataParallelKernel, _ inputs: [[Double]], outputCounts: [Int]) throws {
    _ = try withBuffers(inputs) { buffers in
        try withOutputArrays(counts: outputCounts) { try kernel.call(inputs: buffers, outputs: $0) }
    }
}

@Suite("Data-parallel kernels: plans, refusals and calls")
struct DataParallelPlanTests {
    /// Losses and their gradients take one stage, with a replicated penalty too (added on one
    /// process); a square of a sum or a Cholesky of a Gram matrix takes two; the gradient of centred data with respect to the data takes
    /// three (the mean, then the mean of the gradient's rows).
    @Test(arguments: shardedPrograms.indices)
    func stagesAndCombinations(_ index: Int) throws {
        let case_ = shardedPrograms[index]
        let graph = try program(case_.source).graph
        let kernel = try planned(graph, sharding: case_.sharding)
        #expect(kernel.stageCount == case_.stages, "\(case_.name)")
        // Outputs with a row per data row are joined; the rest are sums or replicated.
        let perRow: Set<String> = ["p", "dtotal/dX", "dL/dy", "dv/dX", "ds/dX"]
        for output in kernel.outputs {
            #expect((output.combination == .gathered) == perRow.contains(output.name), "\(case_.name): \(output.name) is \(output.combination)")
        }
    }

    @Test func combinationsOfTheRegularisedLoss() throws {
        let graph = try program(shardedPrograms[1].source).graph
        let kernel = try planned(graph, sharding: ["X", "labels"], rank: 1, size: 3)
        // The penalty is added on process 0 only, so loss and gradient stay partial sums.
        #expect(kernel.outputs.map(\.combination) == [.summed, .summed])
        #expect(kernel.stageCount == 1)
        #expect(kernel.rows == 4..<7)
        #expect(kernel.rowCount == 10)
        #expect(kernel.inputs.map(\.shape) == [[3, 4], [3], [4]])
        // The mean's sum and the gradient's sum (4 + 1 numbers) are reduced.
        #expect(kernel.reducedCount == 5)
        let p3 = try planned(try program(shardedPrograms[0].source).graph, sharding: ["Phi", "y"])
        #expect(p3.outputs.map(\.combination) == [.summed, .summed, .summed])
        #expect(p3.stageCount == 1)
    }

    /// Blocks: the first rows % size processes one row longer, some empty when rows < size.
    @Test func blocksOfRows() {
        #expect((0..<3).map { RowSplitPlan.block(of: $0, size: 3, rows: 10) } == [0..<4, 4..<7, 7..<10])
        #expect((0..<4).map { RowSplitPlan.block(of: $0, size: 4, rows: 2) } == [0..<1, 1..<2, 2..<2, 2..<2])
        #expect(RowSplitPlan.block(of: 0, size: 1, rows: 5) == 0..<5)
    }

    /// What cannot run on blocks of rows is refused, naming the output and why.
    @Test(arguments: refusalCases.indices)
    func refusals(_ index: Int) throws {
        let (line, output, reason) = refusalCases[index]
        let graph = try program("input X: [N, 3]\ninput w: [3]\n" + line).graph
        #expect {
            _ = try planned(graph, sharding: ["X"])
        } throws: { error in
            guard case .notSplittable(let name, let why)? = error as? NablaError else { return false }
            return name == output && why.contains(reason)
        }
    }

    /// At one row there is nothing to split: what is refused at more rows runs whole on
    /// process 0, and every rank gets the unsharded kernel's outputs.
    @Test(arguments: refusalCases.indices)
    func oneRowRunsWhole(_ index: Int) throws {
        let graph = try program("input X: [N, 3]\ninput w: [3]\n" + refusalCases[index].0, dims: ["N": 1]).graph
        let inputs = sampleInputs(graph, seed: UInt64(index))
        let expected = try Kernel(graph)(inputs)
        for ranks in [1, 3] {
            for (rank, outputs) in try runSharded(graph, sharding: ["X"], ranks: ranks, inputs: inputs).enumerated() {
                for port in graph.outputs {
                    #expect(outputs[port.name]?.shape == expected[port.name]!.shape)
                    expectClose(outputs[port.name]?.scalars ?? [], expected[port.name]!.scalars, tolerance: 1e-12, floor: 1e-12,
                                "\(refusalCases[index].0): \(ranks) ranks, rank \(rank)")
                }
            }
        }
        let kernel = try planned(graph, sharding: ["X"], rank: 1, size: 3)
        #expect(kernel.rows == 1..<1)
        #expect(kernel.outputs.allSatisfy { $0.combination == .summed })
    }

    @Test func badShardings() throws {
        let graph = try program("input X: [N, 3]\ninput y: [4]\ninput s: []\noutput o = sum(X) + sum(y) + s").graph
        #expect(throws: NablaError.invalidArgument(op: "shard", reason: "'Z' is not an input (the inputs: X, y, s)")) { try planned(graph, sharding: ["Z"]) }
        let empty = try program("input X: [N, 3]\ninput w: [3]\noutput o = sum(X @ w) + sum(w^2)", dims: ["N": 0]).graph
        #expect(throws: NablaError.invalidArgument(op: "shard", reason: "the sharded inputs have no rows; run without --shard")) { try planned(empty, sharding: ["X"]) }
        #expect(throws: NablaError.invalidArgument(op: "shard", reason: "input 's' is a scalar; only inputs with rows (a leading axis) can be sharded")) {
            try planned(graph, sharding: ["s"])
        }
        #expect(throws: NablaError.invalidArgument(op: "shard", reason: "sharded inputs have different row counts: 'X' has 10, 'y' has 4")) {
            try planned(graph, sharding: ["X", "y"])
        }
        #expect(throws: NablaError.invalidArgument(op: "shard", reason: "no input is sharded")) { try planned(graph, sharding: []) }
    }

    /// The checked calls check sizes against this process's rows; whole data and this
    /// process's rows give the same results; the unchecked call writes the same numbers.
    @Test func checkedAndUncheckedCalls() throws {
        let graph = try program(shardedPrograms[0].source, dims: ["N": 5]).graph
        let inputs = sampleInputs(graph, seed: 3)
        let kernel = try DataParallelKernel(graph, sharding: ["Phi", "y"], communicator: InProcessGroup(size: 1).members[0])
        let whole = try kernel(inputs)
        let expected = try Kernel(graph)(inputs)
        for port in graph.outputs { expectClose(whole[port.name]!.scalars, expected[port.name]!.scalars, tolerance: 1e-12, floor: 1e-12) }

        // One rank of two: rows 0..<3 of 5.
        let group = InProcessGroup(size: 2)
        let first = try DataParallelKernel(graph, sharding: ["Phi", "y"], communicator: group.members[0])
        #expect(first.inputs.map(\.shape) == [[3, 3], [3], [3]])
        let phi = inputs["Phi"]!.scalars, y = inputs["y"]!.scalars, theta = inputs["theta"]!.scalars
        #expect(throws: NablaError.sizeMismatch(what: "input 'Phi' (shape [3, 3])", expected: 9, got: 15)) {
            try callChecked(first, [phi, y, theta], outputCounts: [1, 3, 9])
        }
        #expect(throws: NablaError.sizeMismatch(what: "output 'dL/dtheta' (shape [3])", expected: 3, got: 2)) {
            try callChecked(first, [Array(phi[..<9]), Array(y[..<3]), theta], outputCounts: [1, 2, 9])
        }
        #expect(throws: NablaError.countMismatch(what: "input buffers", expected: 3, got: 1)) {
            try callChecked(first, [theta], outputCounts: [1, 3, 9])
        }
        #expect(throws: NablaError.self) { try first(["Phi": TensorData(repeating: 0, shape: [4, 3]), "y": inputs["y"]!, "theta": inputs["theta"]!]) }
        #expect(throws: NablaError.unknownName(kind: "input", name: "q", known: ["Phi", "y", "theta"])) { try first(inputs.merging(["q": TensorData(1)]) { $1 }) }

        // Both ranks, one given whole data and the other its rows, checked and unchecked.
        let second = try DataParallelKernel(graph, sharding: ["Phi", "y"], communicator: group.members[1])
        let rows = Lock<[Int: [String: TensorData]]>([:])
        let unchecked = Lock<[Double]>([])
        let done = DispatchSemaphore(value: 0)
        Thread {
            let a = try! first(inputs)
            let outs = callUnchecked(first, [Array(phi[..<9]), Array(y[..<3]), theta])
            rows.withLock { $0[0] = a }
            unchecked.withLock { $0 = outs }
            done.signal()
        }.start()
        Thread {
            let local = ["Phi": TensorData(unchecked: [2, 3], Array(phi[9...])), "y": TensorData(unchecked: [2], Array(y[3...])), "theta": inputs["theta"]!]
            let b = try! second(local)
            _ = callUnchecked(second, [Array(phi[9...]), Array(y[3...]), theta])
            rows.withLock { $0[1] = b }
            done.signal()
        }.start()
        for _ in 0..<2 { #expect(done.wait(timeout: .now() + 60) == .success) }
        for rank in 0..<2 {
            for port in graph.outputs {
                expectClose(rows.withLock { $0[rank]![port.name]!.scalars }, expected[port.name]!.scalars, tolerance: 1e-12, floor: 1e-12, "rank \(rank) \(port.name)")
            }
        }
        expectClose(unchecked.withLock { $0 }, graph.outputs.flatMap { expected[$0.name]!.scalars }, tolerance: 1e-12, floor: 1e-12, "unchecked")
        #expect(first.communicationSeconds >= 0)
    }

    /// The cc tier runs the stages as well.
    @Test func optimisingTier() throws {
        let graph = try program(shardedPrograms[1].source, dims: ["N": 9]).graph
        let inputs = sampleInputs(graph, seed: 11)
        let expected = try Kernel(graph)(inputs)
        for outputs in try runSharded(graph, sharding: ["X", "labels"], ranks: 2, inputs: inputs, backend: .cc) {
            for port in graph.outputs { expectClose(outputs[port.name]!.scalars, expected[port.name]!.scalars, tolerance: 1e-12, floor: 1e-12, port.name) }
        }
    }

    /// A deep graph on split rows: 3000 elementwise steps on each row, then a loss and its
    /// gradient (the plan and the stage graphs are built without recursion).
    @Test func deepChainOnRows() throws {
        var text = "input X: [N, 2]\ninput w: [2]\nh0 = X @ w\n"
        for k in 1...3000 { text += "h\(k) = 0.999 * sin(h\(k - 1)) + 0.001\n" }
        text += "output L = mean(h3000^2)\ngrad L wrt w\n"
        let graph = try program(text, dims: ["N": 6]).graph
        let inputs = sampleInputs(graph, seed: 5)
        let expected = try Kernel(graph)(inputs)
        for outputs in try runSharded(graph, sharding: ["X"], ranks: 3, inputs: inputs) {
            for port in graph.outputs { expectClose(outputs[port.name]!.scalars, expected[port.name]!.scalars, tolerance: 1e-12, floor: 1e-12, port.name) }
        }
    }
}
