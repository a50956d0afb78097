import Foundation

// Loops whose code does not grow with their trip count: one `Scan` node holds its body as a
// graph, runs it once per step, and is differentiated into other scans (a reverse scan for
// reverse mode, a scan of the body's tangent for forward mode), so derivatives of loops are
// loops and compose to any order.

/// The body of a loop: a graph run once per step.
///
/// Its inputs are, in order: the carries, one row of each sequence (the sequence's slice at the
/// step), the step number `k` (a scalar, 0 for the first step), and the values it captures
/// from around the loop. Its outputs: the carries after the step, then the step's outputs.
public final class LoopBody: Hashable, Sendable, CustomStringConvertible {
    /// The body's computation.
    public let graph: Graph
    /// Carries passed from each step to the next.
    public let carryCount: Int
    /// Sequences read one row per step.
    public let sequenceCount: Int
    /// Values from around the loop the body reads (the same at every step).
    public let captureCount: Int
    /// Whether the body selects (`Operation.selects`): then so does the loop, whose cotangents
    /// for its operands may hold the zeros of a branch not taken.
    public let selects: Bool

    /// A body with the given counts; the graph's inputs and outputs must follow them (see the
    /// type's description).
    /// - Throws: `NablaError.invalidArgument` when the graph has another number of inputs than
    ///   the counts make, fewer outputs than carries, or a step number that is not a scalar.
    public init(graph: Graph, carryCount: Int, sequenceCount: Int, captureCount: Int) throws {
        let counts = [carryCount, sequenceCount, captureCount]
        guard counts.allSatisfy({ $0 >= 0 }), graph.inputs.count == counts.reduce(1, +) else {
            throw NablaError.invalidArgument(op: "loop body", reason: "a body of \(carryCount) carries, \(sequenceCount) sequences and \(captureCount) captured values takes \(counts.reduce(1, +)) inputs (with the step number), its graph has \(graph.inputs.count)")
        }
        guard graph.outputs.count >= carryCount else {
            throw NablaError.invalidArgument(op: "loop body", reason: "a body of \(carryCount) carries returns at least that many values, its graph returns \(graph.outputs.count)")
        }
        guard graph.nodes[graph.inputs[carryCount + sequenceCount].node].shape.isScalar else {
            throw NablaError.invalidArgument(op: "loop body", reason: "the step number, input \(carryCount + sequenceCount), must be a scalar")
        }
        self.graph = graph
        self.carryCount = carryCount
        self.sequenceCount = sequenceCount
        self.captureCount = captureCount
        selects = graph.nodes.contains { $0.operation.selects }
    }

    /// Per-step outputs, stacked into sequences by the loop.
    public var stepOutputCount: Int { graph.outputs.count - carryCount }
    /// Shapes of the carries.
    var carryShapes: [Shape] { (0..<carryCount).map { graph.nodes[graph.inputs[$0].node].shape } }
    /// Shapes of one row of each sequence.
    var rowShapes: [Shape] { (0..<sequenceCount).map { graph.nodes[graph.inputs[carryCount + $0].node].shape } }
    /// Shapes of the captured values.
    var captureShapes: [Shape] { (0..<captureCount).map { graph.nodes[graph.inputs[carryCount + sequenceCount + 1 + $0].node].shape } }
    /// Shapes of one step's outputs.
    var stepOutputShapes: [Shape] { (carryCount..<graph.outputs.count).map { graph.nodes[graph.outputs[$0].node].shape } }

    public static func == (a: LoopBody, b: LoopBody) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
    public var description: String { "body of \(graph.nodes.count) nodes" }
}

/// A loop of `steps` steps over a `LoopBody`: `fold`, `scan` and `map` are scans.
///
/// Operands: the initial carries, the sequences (each `[steps] + row shape`), the captured
/// values. The result is one flat vector holding, in order, the final carries, each step
/// output stacked (`[steps] + shape`) and, with `keepsCarries`, each carry as it was before each
/// step (`[steps] + shape`, what reverse mode needs). `pieces` gives where each part lies.
public struct Scan: Operation {
    /// The body run at each step.
    public let body: LoopBody
    /// Number of steps.
    public let steps: Int
    /// True to run the steps from the last to the first (step `k` still reads row `k` and
    /// writes output row `k`).
    public let reverse: Bool
    /// True to also return the carries before each step.
    public let keepsCarries: Bool

    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(body: LoopBody, steps: Int, reverse: Bool = false, keepsCarries: Bool = false) {
        self.body = body
        self.steps = steps
        self.reverse = reverse
        self.keepsCarries = keepsCarries
    }

    /// Most doubles reverse mode stores for one loop's carries (2 GiB).
    public static let maximumStoredCarries = 1 << 28

    public var selects: Bool { body.selects }

    /// The body's function takes the address of each operand (a local's, for a scalar).
    public var readsContiguousViewsInPlace: Bool { true }

    /// Most body nodes times steps a loop of constants may have to be computed at compile time.
    public static let maximumFoldedWork = 1 << 14

    /// Only small loops: the interpreter runs the body once per step.
    public var foldsConstants: Bool {
        let (work, overflow) = steps.multipliedReportingOverflow(by: body.graph.nodes.count)
        return !overflow && work <= Scan.maximumFoldedWork
    }

    public var name: String { "scan[\(steps)\(reverse ? ", reverse" : "")\(keepsCarries ? ", carries" : "")]" }

    /// Captured values split by rows run each step on this process's rows (see
    /// `RowSplit.loop`).
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule { split.loop(self) }

    /// One part of the result: where it starts in the flat vector, and its shape.
    public struct Piece: Hashable, Sendable {
        /// Offset of the first element in the flat result.
        public let offset: Int
        /// The part's shape.
        public let shape: Shape
    }

    /// The final carries, the stacked step outputs and (with `keepsCarries`) the carries before
    /// each step, in that order.
    public var pieces: (finals: [Piece], outputs: [Piece], history: [Piece]) {
        var offset = 0
        func take(_ shape: Shape) -> Piece {
            defer { offset += shape.count }
            return Piece(offset: offset, shape: shape)
        }
        let finals = body.carryShapes.map(take)
        let outputs = body.stepOutputShapes.map { take(Shape([steps] + $0.dims)) }
        let history = keepsCarries ? body.carryShapes.map { take(Shape([steps] + $0.dims)) } : []
        return (finals, outputs, history)
    }

    /// Elements of the flat result.
    var resultCount: Int {
        let (finals, outputs, history) = pieces
        return (finals + outputs + history).reduce(0) { $0 + $1.shape.count }
    }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        let b = body
        try requireOperands(inputs, b.carryCount + b.sequenceCount + b.captureCount, "scan")
        guard steps >= 0 else { throw NablaError.invalidArgument(op: "scan", reason: "the number of steps must not be negative, got \(steps)") }
        for (k, shape) in b.carryShapes.enumerated() where inputs[k] != shape {
            throw NablaError.shapeMismatch(op: "scan", shapes: [inputs[k], shape], reason: "initial carry \(k) must have the shape the body takes")
        }
        for (k, row) in b.rowShapes.enumerated() where inputs[b.carryCount + k] != Shape([steps] + row.dims) {
            throw NablaError.shapeMismatch(op: "scan", shapes: [inputs[b.carryCount + k], Shape([steps] + row.dims)], reason: "sequence \(k) must have \(steps) rows of the shape the body takes")
        }
        for (k, shape) in b.captureShapes.enumerated() where inputs[b.carryCount + b.sequenceCount + k] != shape {
            throw NablaError.shapeMismatch(op: "scan", shapes: [inputs[b.carryCount + b.sequenceCount + k], shape], reason: "captured value \(k) has the wrong shape")
        }
        let (outputs, carries) = (b.stepOutputShapes, b.graph.outputs.prefix(b.carryCount).map { b.graph.nodes[$0.node].shape })
        for (k, shape) in carries.enumerated() where shape != b.carryShapes[k] {
            throw NablaError.shapeMismatch(op: "scan", shapes: [b.carryShapes[k], shape], reason: "the body returns carry \(k) with a shape other than the one it takes")
        }
        // Each part is checked as it is added: steps and shapes can be large enough to overflow.
        let tooLarge = NablaError.invalidArgument(op: "scan", reason: "its results (final carries, outputs of every step\(keepsCarries ? ", carries before every step" : "")) would have more than \(Shape.maximumElementCount) elements")
        var total = 0
        func add(_ count: Int, times factor: Int) throws {
            let (n, overflow) = count.multipliedReportingOverflow(by: factor)
            let (sum, overflowed) = total.addingReportingOverflow(n)
            guard !overflow, !overflowed, sum <= Shape.maximumElementCount else { throw tooLarge }
            total = sum
        }
        for shape in b.carryShapes { try add(shape.count, times: 1) }
        if keepsCarries { for shape in b.carryShapes { try add(shape.count, times: steps) } }
        for shape in outputs { try add(shape.count, times: steps) }
        let shape = Shape([total])
        try shape.checkElementCount(of: "scan")
        return shape
    }

    /// A loop's statements call its body, compiled as a function of its own, which only code
    /// generation can do (`KernelLowering` lowers scans itself).
    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        throw NablaError.internalInconsistency("a scan is lowered by code generation, not by the operation")
    }

    // MARK: Interpretation

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let b = body
        var carries = Array(inputs[0..<b.carryCount])
        let sequences = Array(inputs[b.carryCount..<(b.carryCount + b.sequenceCount)])
        let captures = Array(inputs[(b.carryCount + b.sequenceCount)...])
        let (finals, outputs, history) = pieces
        var result = [Double](repeating: 0, count: shape.count)
        for j in 0..<steps {
            let k = reverse ? steps - 1 - j : j
            for (piece, carry) in zip(history, carries) { write(carry.scalars, into: &result, piece, row: k) }
            var arguments = carries
            for (sequence, row) in zip(sequences, b.rowShapes) {
                let n = row.count
                arguments.append(TensorData(unchecked: row, Array(sequence.scalars[(k * n)..<((k + 1) * n)])))
            }
            arguments.append(TensorData(Double(k)))
            arguments += captures
            // Shapes were checked when the node was made, so the body cannot fail.
            let values = try! Interpreter.evaluate(b.graph, inputs: arguments)
            carries = Array(values[0..<b.carryCount])
            for (piece, value) in zip(outputs, values[b.carryCount...]) { write(value.scalars, into: &result, piece, row: k) }
        }
        for (piece, carry) in zip(finals, carries) { write(carry.scalars, into: &result, piece, row: 0) }
        return TensorData(unchecked: shape, result)
    }

    /// Writes `scalars` as row `row` of `piece` (a piece without a step axis has row 0 only).
    private func write(_ scalars: [Double], into result: inout [Double], _ piece: Piece, row: Int) {
        let start = piece.offset + row * scalars.count
        for (i, x) in scalars.enumerated() { result[start + i] = x }
    }

    // MARK: Derivatives

    /// Reverse mode: a reverse scan whose body is the vector-Jacobian product of this body. It
    /// reads the carries before each step (from a scan that keeps them), the sequences and the
    /// cotangents of the step outputs, carries the cotangents of the carries and the sums of the
    /// captured values' cotangents, and outputs each row's cotangent.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] {
        let b = body, g = rule.cotangent, builder = g.builder
        let (finals, outputs, recordedPieces) = pieces
        let sequences = Array(rule.inputs[b.carryCount..<(b.carryCount + b.sequenceCount)])
        let captures = Array(rule.inputs[(b.carryCount + b.sequenceCount)...])
        let needs = rule.needsGradient
        let sequenceNeeds = Array(needs[b.carryCount..<(b.carryCount + b.sequenceCount)])
        let captureNeeds = Array(needs[(b.carryCount + b.sequenceCount)...])

        let carried = b.carryShapes.reduce(0) { $0 + $1.count }
        let (stored, overflow) = carried.multipliedReportingOverflow(by: steps)
        guard !overflow, stored <= Scan.maximumStoredCarries else {
            throw NablaError.invalidArgument(op: "scan", reason: "reverse mode through this loop of \(steps) steps would store \(overflow ? "\(carried) doubles of carries at each step" : "\(stored) doubles of carries"), more than the \(Scan.maximumStoredCarries) (2 GiB) a loop may store; use fewer steps, or forward mode (jvp) for few variables")
        }
        // The carries before each step: this node's own record, or that of a scan keeping them,
        // made beside this node (not in the builder of the cotangent, which may be the body of
        // a loop over Jacobian directions: the record would be remade at each direction).
        let recorded = keepsCarries ? rule.output : try rule.output.builder.apply(Scan(body: b, steps: steps, reverse: reverse, keepsCarries: true), rule.inputs)
        let history = Scan(body: b, steps: steps, reverse: reverse, keepsCarries: true).pieces.history.map { try! piece(recorded, $0) }

        let (backward, extra) = try Self.vjpBody(of: b, sequenceNeeds: sequenceNeeds, captureNeeds: captureNeeds, recordsCarries: keepsCarries, masking: rule.cotangentMasks || b.selects, parent: builder)
        let gradientCaptures = captures.indices.filter { captureNeeds[$0] }
        var operands: [Tensor] = try finals.map { try piece(g, $0) }
        operands += gradientCaptures.map { builder.filled(0, shape: captures[$0].shape) }
        operands += history + sequences + outputs.map { try! piece(g, $0) }
        // The recorded carries are results too: their cotangents join the carries' on the way back.
        operands += try recordedPieces.map { try piece(g, $0) }
        operands += captures + extra
        let scan = Scan(body: backward, steps: steps, reverse: !reverse)
        let swept = try builder.apply(scan, operands)
        let (sweptFinals, sweptOutputs, _) = scan.pieces
        var result: [Tensor?] = try (0..<b.carryCount).map { needs[$0] ? try piece(swept, sweptFinals[$0]) : nil }
        var nextOutput = 0
        for k in 0..<b.sequenceCount {
            guard sequenceNeeds[k] else { result.append(nil); continue }
            result.append(try piece(swept, sweptOutputs[nextOutput]))
            nextOutput += 1
        }
        var nextCapture = b.carryCount
        for k in captures.indices {
            guard captureNeeds[k] else { result.append(nil); continue }
            result.append(try piece(swept, sweptFinals[nextCapture]))
            nextCapture += 1
        }
        return result
    }

    /// The body of the reverse scan of `body`. Carries: the carries' cotangents, then the sums
    /// of the needed captures' cotangents; rows: the carries before the step, the sequences'
    /// rows, the step outputs' cotangents and (`recordsCarries`) the cotangents of the recorded
    /// carries; captures: the body's. Step outputs: the needed sequences' row cotangents.
    static func vjpBody(of body: LoopBody, sequenceNeeds: [Bool], captureNeeds: [Bool], recordsCarries: Bool, masking: Bool, parent: GraphBuilder) throws -> (LoopBody, [Tensor]) {
        let g = GraphBuilder(bodyOf: parent)
        let carryCotangents = try body.carryShapes.enumerated().map { try g.input("carry_cotangent\($0.offset)", shape: $0.element) }
        let sums = try body.captureShapes.enumerated().filter { captureNeeds[$0.offset] }.map { try g.input("capture_sum\($0.offset)", shape: $0.element) }
        let carries = try body.carryShapes.enumerated().map { try g.input("carry\($0.offset)", shape: $0.element) }
        let rows = try body.rowShapes.enumerated().map { try g.input("row\($0.offset)", shape: $0.element) }
        let outputCotangents = try body.stepOutputShapes.enumerated().map { try g.input("output_cotangent\($0.offset)", shape: $0.element) }
        let recordedCotangents = recordsCarries ? try body.carryShapes.enumerated().map { try g.input("recorded_cotangent\($0.offset)", shape: $0.element) } : []
        let k = try g.input("k")
        let captures = try body.captureShapes.enumerated().map { try g.input("capture\($0.offset)", shape: $0.element) }
        let values = try replay(body, in: g, carries + rows + [k] + captures)
        let variables = carries + rows.indices.filter { sequenceNeeds[$0] }.map { rows[$0] } + captures.indices.filter { captureNeeds[$0] }.map { captures[$0] }
        let cotangents = try vjp(of: values, cotangents: carryCotangents + outputCotangents, wrt: variables, masking: masking)
        let carryCount = carries.count, rowCount = rows.indices.filter { sequenceNeeds[$0] }.count
        var previous = Array(cotangents[0..<carryCount])
        for (k, recorded) in recordedCotangents.enumerated() { previous[k] = try previous[k] + recorded }
        let rowCotangents = Array(cotangents[carryCount..<(carryCount + rowCount)])
        let captureCotangents = Array(cotangents[(carryCount + rowCount)...])
        let newSums = try zip(sums, captureCotangents).map { try $0 + $1 }
        let made = try finishBody(g, carries: previous + newSums, outputs: rowCotangents, sequenceCount: carries.count + rows.count + outputCotangents.count + recordedCotangents.count)
        return (made, g.captures.map(\.outer))
    }

    /// Forward mode: a scan of the body together with its tangent, carrying each carry and its
    /// tangent; the result's tangent is assembled from that scan's pieces.
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        let b = body, builder = rule.builder
        guard rule.tangents.contains(where: { $0 != nil }) else { return nil }
        let initTangents = (0..<b.carryCount).map { rule.tangents[$0] ?? builder.filled(0, shape: b.carryShapes[$0]) }
        let sequenceTangents = (0..<b.sequenceCount).map { rule.tangents[b.carryCount + $0] }
        let captureTangents = (0..<b.captureCount).map { rule.tangents[b.carryCount + b.sequenceCount + $0] }
        let (forward, extra) = try Self.jvpBody(of: b, sequenceTangents: sequenceTangents.map { $0 != nil }, captureTangents: captureTangents.map { $0 != nil }, parent: builder)
        var operands = Array(rule.inputs[0..<b.carryCount]) + initTangents
        operands += Array(rule.inputs[b.carryCount..<(b.carryCount + b.sequenceCount)]) + sequenceTangents.compactMap { $0 }
        operands += Array(rule.inputs[(b.carryCount + b.sequenceCount)...]) + captureTangents.compactMap { $0 } + extra
        let scan = Scan(body: forward, steps: steps, reverse: reverse, keepsCarries: keepsCarries)
        let swept = try builder.apply(scan, operands)
        let (finals, outputs, history) = scan.pieces
        let c = b.carryCount, m = b.stepOutputCount
        // Tangent pieces in this node's order: final carries, step outputs, history.
        let parts = Array(finals[c...]) + Array(outputs[m...]) + (history.isEmpty ? [] : Array(history[c...]))
        let flat = try parts.map { try piece(swept, $0).reshaped([$0.shape.count]) }
        return flat.count == 1 ? flat[0] : try concat(flat, axis: 0)
    }

    /// The body computing `body` and its tangent. Carries: the carries, then their tangents;
    /// rows: the rows, then the tangents of those that have one; captures likewise. Step
    /// outputs: the outputs, then their tangents.
    static func jvpBody(of body: LoopBody, sequenceTangents: [Bool], captureTangents: [Bool], parent: GraphBuilder) throws -> (LoopBody, [Tensor]) {
        let g = GraphBuilder(bodyOf: parent)
        let carries = try body.carryShapes.enumerated().map { try g.input("carry\($0.offset)", shape: $0.element) }
        let carryTangents = try body.carryShapes.enumerated().map { try g.input("carry_tangent\($0.offset)", shape: $0.element) }
        let rows = try body.rowShapes.enumerated().map { try g.input("row\($0.offset)", shape: $0.element) }
        let rowTangents = try body.rowShapes.enumerated().filter { sequenceTangents[$0.offset] }.map { try g.input("row_tangent\($0.offset)", shape: $0.element) }
        let k = try g.input("k")
        let captures = try body.captureShapes.enumerated().map { try g.input("capture\($0.offset)", shape: $0.element) }
        let captureTangentInputs = try body.captureShapes.enumerated().filter { captureTangents[$0.offset] }.map { try g.input("capture_tangent\($0.offset)", shape: $0.element) }
        let values = try replay(body, in: g, carries + rows + [k] + captures)
        let variables = carries + rows.indices.filter { sequenceTangents[$0] }.map { rows[$0] } + captures.indices.filter { captureTangents[$0] }.map { captures[$0] }
        let tangents = carryTangents + rowTangents + captureTangentInputs
        let valueTangents = try values.map { try jvp(of: $0, wrt: variables, tangents: tangents) }
        let c = body.carryCount
        let made = try finishBody(g, carries: Array(values[0..<c]) + Array(valueTangents[0..<c]),
                                  outputs: Array(values[c...]) + Array(valueTangents[c...]), sequenceCount: rows.count + rowTangents.count)
        return (made, g.captures.map(\.outer))
    }

    /// `body`'s outputs computed in `builder` from `inputs` (one per body input).
    static func replay(_ body: LoopBody, in builder: GraphBuilder, _ inputs: [Tensor]) throws -> [Tensor] {
        var tensors = [Tensor?](repeating: nil, count: body.graph.nodes.count)
        for (port, input) in zip(body.graph.inputs, inputs) { tensors[port.node] = input }
        for (i, node) in body.graph.nodes.enumerated() where tensors[i] == nil {
            if let constant = node.operation as? Constant {
                tensors[i] = builder.constant(constant.value)
            } else {
                tensors[i] = try builder.apply(node.operation, node.inputs.map { tensors[$0]! })
            }
        }
        return body.graph.outputs.map { tensors[$0.node]! }
    }
}

/// `map(body, xs)` as the body's elementwise operations applied to all of `xs` at once, when
/// the body is nothing else (elementwise operations of its row, scalar constants, and captured
/// values that broadcast to a row without enlarging it) and does not read the step number; nil
/// otherwise. Each element sees the same operations, so the result is the loop's, bit for bit,
/// and it fuses with what is around it.
func elementwiseMap(_ body: LoopBody, over xs: Tensor, captures: [Tensor]) throws -> Tensor? {
    let graph = body.graph
    guard body.carryCount == 0, body.sequenceCount == 1, body.stepOutputCount == 1 else { return nil }
    let row = body.rowShapes[0]
    guard graph.nodes[graph.outputs[0].node].shape == row else { return nil }
    guard body.captureShapes.allSatisfy({ Shape.broadcast($0, row) == row }) else { return nil }
    let step = graph.inputs[1].node
    for node in graph.nodes where !(node.operation is Input) {
        if node.inputs.contains(step) { return nil }
        switch node.operation.role {
        case .elementwise: continue
        case .constant where node.shape.isScalar: continue
        default: return nil
        }
    }
    var tensors = [Tensor?](repeating: nil, count: graph.nodes.count)
    tensors[graph.inputs[0].node] = xs
    for (port, capture) in zip(graph.inputs.dropFirst(2), captures) { tensors[port.node] = capture }
    for (i, node) in graph.nodes.enumerated() where tensors[i] == nil {
        if let constant = node.operation as? Constant {
            tensors[i] = xs.builder.constant(constant.value)
        } else if !(node.operation is Input) {
            tensors[i] = try xs.builder.apply(node.operation, node.inputs.map { tensors[$0]! })
        }
    }
    let result = tensors[graph.outputs[0].node]!
    // A body that does not read its row gives the same row each time.
    let stacked = Shape([xs.shape[0]] + row.dims)
    return result.shape == stacked ? result : try result.broadcast(to: stacked)
}

/// Part `p` of a scan's flat result, as a tensor of its shape (a view: no copy).
func piece(_ flat: Tensor, _ p: Scan.Piece) throws -> Tensor {
    try flat.slice([.range(start: p.offset, end: p.offset + p.shape.count, step: 1)]).reshaped(p.shape)
}

/// A body from a builder whose inputs so far are the carries, rows and step number (in that
/// order; `sequenceCount` rows) and whose captures came as the body was built: the captured
/// values become the loop's last operands.
func finishBody(_ g: GraphBuilder, carries: [Tensor], outputs: [Tensor], sequenceCount: Int) throws -> LoopBody {
    let results = try (carries + outputs).map { try g.capture($0, op: "loop body") }
    let named = results.enumerated().map { ("out\($0.offset)", $0.element) }
    let graph = try g.graph(outputs: named)
    // Inputs made as captures by the caller, and those captured as the body was built.
    let captureCount = graph.inputs.count - carries.count - sequenceCount - 1
    return try LoopBody(graph: graph, carryCount: carries.count, sequenceCount: sequenceCount, captureCount: captureCount)
}

// MARK: - Builder functions

/// The body being built on this thread, if any: a loop written inside a loop's body (with the
/// Swift API) belongs to that body, even when it reads nothing of it but through captures.
private struct ActiveBody: @unchecked Sendable {
    // Only read on the thread building the body, while the body's closure runs.
    let builder: GraphBuilder
    @TaskLocal static var current: ActiveBody?
}

/// The builder a loop belongs to: the innermost of its operands' builders (`fallback` when it
/// has none), or the body being built when the loop is written inside one.
func loopBuilder(_ operands: [Tensor], fallback: GraphBuilder) -> GraphBuilder {
    let innermost = operands.map(\.builder).max { $0.depth < $1.depth } ?? fallback
    if let active = ActiveBody.current?.builder, active.depth > innermost.depth, active.isBody(of: innermost) { return active }
    return innermost
}

/// A loop's body, the values it captured (the loop's last operands) and the builder of the
/// graph the loop goes in.
struct MadeBody {
    let body: LoopBody
    let captures: [Tensor]
    let parent: GraphBuilder
}

/// Builds a body in a child of `parent`: `make` gets the carries, the rows and the step
/// number, and returns the new carries and the step outputs.
func makeBody(parent: GraphBuilder, carries: [Shape], rows: [Shape],
              _ make: ([Tensor], [Tensor], Tensor) throws -> (carries: [Tensor], outputs: [Tensor])) throws -> MadeBody {
    try requireLoopNesting(parent)
    let g = GraphBuilder(bodyOf: parent)
    let carryInputs = try carries.enumerated().map { try g.input("carry\($0.offset)", shape: $0.element) }
    let rowInputs = try rows.enumerated().map { try g.input("row\($0.offset)", shape: $0.element) }
    let k = try g.input("k")
    let (newCarries, outputs) = try ActiveBody.$current.withValue(ActiveBody(builder: g)) { try make(carryInputs, rowInputs, k) }
    for (k, (carry, shape)) in zip(newCarries, carries).enumerated() where carry.shape != shape {
        throw NablaError.shapeMismatch(op: "loop", shapes: [shape, carry.shape], reason: "the body returns carry \(k) with shape \(carry.shape) for a carry of shape \(shape)")
    }
    let body = try finishBody(g, carries: newCarries, outputs: outputs, sequenceCount: rows.count)
    return MadeBody(body: body, captures: g.captures.map(\.outer), parent: parent)
}

/// Loops nest at most this deep (a loop in the body of a loop, and so on): passes walk
/// nested bodies by recursion, so the depth must be bounded.
public let maximumLoopNesting = 64

/// - Throws: `NablaError.invalidArgument` when a body inside `parent` would nest deeper than
///   `maximumLoopNesting`.
func requireLoopNesting(_ parent: GraphBuilder) throws {
    guard parent.depth < maximumLoopNesting else {
        throw NablaError.invalidArgument(op: "loop", reason: "loops nest more than \(maximumLoopNesting) deep (a loop in the body of a loop, and so on)")
    }
}

/// The rows of `xs` along its leading axis: their count and shape.
private func rowsOf(_ xs: Tensor, op: String) throws -> (count: Int, shape: Shape) {
    guard xs.shape.rank > 0 else {
        throw NablaError.shapeMismatch(op: op, shapes: [xs.shape], reason: "a loop over a sequence needs a tensor with a leading axis, not a scalar")
    }
    return (xs.shape[0], Shape(Array(xs.shape.dims.dropFirst())))
}

/// Runs `made`'s loop for `steps` steps and returns its pieces: final carries, then stacked
/// step outputs. A `map` whose body is elementwise in its row is not a loop at all: the body
/// applied to all rows at once.
func runScan(_ initial: [Tensor], _ sequences: [Tensor], steps: Int, _ made: MadeBody) throws -> ([Tensor], [Tensor]) {
    let builder = made.parent
    let operands = try (initial + sequences + made.captures).map { try builder.capture($0, op: "loop") }
    if initial.isEmpty, sequences.count == 1, let whole = try elementwiseMap(made.body, over: operands[0], captures: Array(operands.dropFirst())) {
        return ([], [whole])
    }
    let scan = Scan(body: made.body, steps: steps)
    let flat = try builder.apply(scan, operands)
    let (finals, outputs, _) = scan.pieces
    return (try finals.map { try piece(flat, $0) }, try outputs.map { try piece(flat, $0) })
}

/// `c = body(c, k)` for k = 0, 1, ..., steps - 1 from `c = initial`; returns the last c. The
/// step number `k` is a scalar. The body may use tensors from around the loop; its C is one
/// loop, whatever the number of steps.
/// - Throws: `NablaError.shapeMismatch` when the body returns a shape other than the carry's.
public func fold(_ initial: Tensor, steps: Int, _ body: (_ carry: Tensor, _ k: Tensor) throws -> Tensor) throws -> Tensor {
    let made = try makeBody(parent: loopBuilder([initial], fallback: initial.builder), carries: [initial.shape], rows: []) { c, _, k in ([try body(c[0], k)], []) }
    return try runScan([initial], [], steps: steps, made).0[0]
}

/// `c = body(c, xs[k])` over the rows of `xs` (its leading axis) from `c = initial`; returns
/// the last c.
public func fold(_ initial: Tensor, over xs: Tensor, _ body: (_ carry: Tensor, _ row: Tensor) throws -> Tensor) throws -> Tensor {
    let (n, row) = try rowsOf(xs, op: "fold")
    let made = try makeBody(parent: loopBuilder([initial, xs], fallback: initial.builder), carries: [initial.shape], rows: [row]) { c, x, _ in ([try body(c[0], x[0])], []) }
    return try runScan([initial], [xs], steps: n, made).0[0]
}

/// Like `fold(_:steps:_:)`, returning every carry after each step, stacked: shape
/// `[steps] + shape(initial)`.
public func scan(_ initial: Tensor, steps: Int, _ body: (_ carry: Tensor, _ k: Tensor) throws -> Tensor) throws -> Tensor {
    let made = try makeBody(parent: loopBuilder([initial], fallback: initial.builder), carries: [initial.shape], rows: []) { c, _, k in
        let next = try body(c[0], k)
        return ([next], [next])
    }
    return try runScan([initial], [], steps: steps, made).1[0]
}

/// Like `fold(_:over:_:)`, returning every carry after each step, stacked: shape
/// `[rows] + shape(initial)`.
public func scan(_ initial: Tensor, over xs: Tensor, _ body: (_ carry: Tensor, _ row: Tensor) throws -> Tensor) throws -> Tensor {
    let (n, row) = try rowsOf(xs, op: "scan")
    let made = try makeBody(parent: loopBuilder([initial, xs], fallback: initial.builder), carries: [initial.shape], rows: [row]) { c, x, _ in
        let next = try body(c[0], x[0])
        return ([next], [next])
    }
    return try runScan([initial], [xs], steps: n, made).1[0]
}

/// `body` applied to each row of `xs` (its leading axis), the results stacked: shape
/// `[rows] + shape(body(row))`.
public func map(_ xs: Tensor, _ body: (_ row: Tensor) throws -> Tensor) throws -> Tensor {
    let (n, row) = try rowsOf(xs, op: "map")
    let made = try makeBody(parent: loopBuilder([xs], fallback: xs.builder), carries: [], rows: [row]) { _, x, _ in ([], [try body(x[0])]) }
    return try runScan([], [xs], steps: n, made).1[0]
}

/// A one-hot vector of `count` elements: 1 at the index its scalar operand holds, 0 elsewhere
/// (all 0 for an index out of range). The basis direction of step k of a Jacobian's loop.
public struct OneHot: Operation {
    /// Elements of the result.
    public let count: Int

    /// The operation, to apply with `GraphBuilder.apply(_:_:)`.
    public init(count: Int) { self.count = count }

    public var name: String { "one_hot[\(count)]" }

    public func outputShape(for inputs: [Shape]) throws -> Shape {
        try requireOperands(inputs, 1, "one_hot")
        guard inputs[0].isScalar else {
            throw NablaError.shapeMismatch(op: "one_hot", shapes: inputs, reason: "the index must be a scalar")
        }
        return Shape([count])
    }

    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        let k = inputs[0].scalar
        return TensorData(unchecked: shape, (0..<count).map { Double($0) == k ? 1 : 0 })
    }

    /// Piecewise constant in its index: no derivative.
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] { [nil] }
    public func tangent(_ rule: TangentRule) throws -> Tensor? { nil }

    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] {
        let i = LoopIR.Expression.variable(.counter(.flat))
        let one = LoopIR.Expression.select(.compare(.equal, i, site.inputs[0].element()), .literal(1), .literal(0))
        return [.loop(LoopIR.Loop(.flat, to: count, body: [.assign(site.output.place(LoopIR.Index(0, [.init(.flat, 1)])), one)]))]
    }
}
