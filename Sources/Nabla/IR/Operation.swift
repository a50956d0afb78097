/// A primitive operation of the graph IR.
///
/// Everything Nabla knows about an operation is declared on its type, in one place: the shape
/// rule, the interpreter's evaluation, the reverse-mode derivative rule (written with the
/// builder, so a derivative is an ordinary graph) and its computation in the loop IR, from which
/// the C is rendered. Adding an operation means adding one conforming type and its tests.
///
/// Operations are values: two equal operations applied to the same inputs compute the same
/// result, which is what common-subexpression elimination relies on.
public protocol Operation: Hashable, Sendable, CustomStringConvertible {
    /// Short name used in diagnostics and graph drawings.
    var name: String { get }

    /// The shape of the result for operands of the given shapes.
    /// - Throws: `NablaError.shapeMismatch` or `.invalidArgument`, naming the operation and the
    ///   shapes involved.
    func outputShape(for inputs: [Shape]) throws -> Shape

    /// Computes the result from concrete operands whose shapes passed `outputShape(for:)`.
    func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData

    /// Reverse-mode rule: the cotangent of each operand given the cotangent of the result.
    ///
    /// Returns one entry per operand; an entry may be nil where `rule.needsGradient` is false or
    /// the operand's derivative is identically zero. Each non-nil entry has its operand's shape.
    func pullback(_ rule: PullbackRule) throws -> [Tensor?]

    /// Forward-mode rule: the tangent of the result given the tangents of the operands.
    ///
    /// `rule.tangents[i]` is nil where operand `i` does not depend on the differentiated
    /// variables (its tangent is zero). Returns nil when the result's tangent is zero; otherwise
    /// a tensor shaped like the result.
    func tangent(_ rule: TangentRule) throws -> Tensor?

    /// The statements computing this node in a kernel, in the loop IR: `site` says where the
    /// result and operands live. The functions they call (libm, helpers, Nabla's runtime) are
    /// named in the statements themselves.
    func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement]

    /// What code generation may do with the operation beyond `lower`: fuse it into loops, fold
    /// it into reads. The protocol families declare it (`UnaryElementwise`, `StridedView`, ...);
    /// other operations are `.opaque`.
    var role: OperationRole { get }

    /// For elementwise operations, the result's element from the operands' elements (as
    /// `UnaryElementwise.expression` and `BinaryElementwise.expression` give it); nil for the
    /// others.
    func elementwise(_ operands: [LoopIR.Expression]) -> LoopIR.Expression?

    /// True when the pullback hands each element's cotangent to some operands (or operand
    /// elements) and exact zeros to the others, as `where`, `maximum`, `max` and `relu` do.
    /// Reverse mode then keeps those zeros exact upstream (`PullbackRule.cotangentMasks`), so a
    /// branch not taken adds nothing to a derivative even where its own derivative is inf or NaN.
    var selects: Bool { get }

    /// True when simplification may compute the operation when all its operands are constant
    /// (with the interpreter, at compile time). Operations whose work does not follow the size
    /// of their operands and result (a loop of many steps) say false, so compiling stays fast.
    var foldsConstants: Bool { get }

    /// True when the operation's statements read each operand only through its elements (or
    /// its address, for a loop), from the first on: code generation then hands it contiguous
    /// views (a slice of a vector, a reshape, a scalar in a local) in place instead of copies.
    var readsContiguousViewsInPlace: Bool { get }

    /// How the operation runs in a data-parallel kernel when operands are split by rows over
    /// processes or are partial sums (see `RowSplit`); asked only when some operand is not
    /// replicated. The default sums partial operands first and refuses operands split by rows.
    func splitRows(_ split: RowSplit) -> RowSplit.Rule
}

/// How code generation may treat an operation.
public enum OperationRole: Hashable, Sendable {
    /// Computed by its own statements (`Operation.lower`), from stored operands into storage.
    case opaque
    /// A graph input.
    case input
    /// A constant.
    case constant
    /// Elementwise with one or two operands: fused into loops with others over its shape.
    case elementwise
    /// A rearrangement of its operand's elements (`StridedView`): folded into its readers'
    /// indexing when they allow it.
    case view
    /// A sum over some axes: accumulated inside the loop of its operand.
    case sum
    /// A padded slice (the adjoint of a slice): scattered from inside the loop of its operand.
    case padSlice
}

extension Operation {
    public var role: OperationRole { .opaque }
    public func elementwise(_ operands: [LoopIR.Expression]) -> LoopIR.Expression? { nil }
    public var selects: Bool { false }
    public var foldsConstants: Bool { true }
    public var readsContiguousViewsInPlace: Bool { false }
}

extension Operation {
    public var description: String { name }
}

extension Operation {
    /// The result computed from constant operands `values` with the interpreter's arithmetic
    /// (`evaluate`), when the operation folds constants and its result, of `shape`, has at most
    /// `limit` elements and no more than its largest operand (a broadcast stays symbolic: a
    /// loop filling memory beats a large literal); nil otherwise. Simplification and the
    /// builder both fold through this.
    func folded(_ values: [TensorData], shape: Shape, limit: Int) -> TensorData? {
        guard !values.isEmpty, foldsConstants, shape.count <= limit, shape.count <= max(1, values.map(\.shape.count).max()!) else {
            return nil
        }
        return evaluate(values, shape: shape)
    }
}

/// What a reverse-mode rule receives: the node's operands and result as builder tensors, the
/// cotangent flowing into the result, and which operands need a cotangent at all.
public struct PullbackRule {
    /// The operands of the node being differentiated.
    public let inputs: [Tensor]
    /// The node's own result (reuse it rather than recomputing, as `exp` does).
    public let output: Tensor
    /// Cotangent of the result, shaped like `output`.
    public let cotangent: Tensor
    /// Whether operand `i` lies on a path from a differentiated variable.
    public let needsGradient: [Bool]
    /// True when the cotangent came through a selecting operation (`Operation.selects`): its
    /// exact zeros may stand for "not selected", where this node's own derivative need not be
    /// finite. Elementwise rules then give exactly zero wherever the cotangent is zero (a
    /// "strong zero"), so the branch not taken contributes nothing.
    public var cotangentMasks = false

    /// The rule's inputs: operands, result, cotangent, which operands need one, and whether
    /// the cotangent masks.
    public init(inputs: [Tensor], output: Tensor, cotangent: Tensor, needsGradient: [Bool], cotangentMasks: Bool = false) {
        self.inputs = inputs
        self.output = output
        self.cotangent = cotangent
        self.needsGradient = needsGradient
        self.cotangentMasks = cotangentMasks
    }
}

/// What a forward-mode rule receives: the node's operands and result, and the tangent of each
/// operand (nil for zero).
public struct TangentRule {
    /// The operands of the node being differentiated.
    public let inputs: [Tensor]
    /// The node's own result (reuse it rather than recomputing).
    public let output: Tensor
    /// Tangent of each operand, shaped like it; nil where it is zero.
    public let tangents: [Tensor?]

    /// The builder the differentiated graph lives in.
    public var builder: GraphBuilder { output.builder }
}

/// An operation that is linear in its single operand (a transpose, a sum, a slice...): its
/// tangent is the operation applied to the operand's tangent.
public protocol LinearOperation: Operation {}

extension LinearOperation {
    public func tangent(_ rule: TangentRule) throws -> Tensor? {
        guard let t = rule.tangents[0] else { return nil }
        return try rule.builder.apply(self, [t])
    }
}

extension Operation {
    /// True when the type has one value (a type of size zero, such as `Add` or `Sin`): the same
    /// type is the same operation, so hashing and comparing need only the type.
    static var hasOneValue: Bool { MemoryLayout<Self>.size == 0 }

    /// True when `other` is an operation of this type equal to this one.
    func isEqual(to other: any Operation) -> Bool {
        // The dynamic cast is the slow part of this test, and a type of one value needs none.
        if Self.hasOneValue { return type(of: other) == Self.self }
        guard let other = other as? Self else { return false }
        return self == other
    }
}
