/// A named input of the graph. Its name lives in `Graph.inputs`, not here, so renaming an input
/// never changes an operation.
public struct Input: Operation {
    /// The operation of input nodes. Graphs declare inputs with `GraphBuilder.input(_:shape:)`;
    /// applying it throws.
    public init() {}

    public var name: String { "input" }
    public var role: OperationRole { .input }
    public func outputShape(for inputs: [Shape]) throws -> Shape {
        throw NablaError.invalidArgument(op: name, reason: "inputs are declared with GraphBuilder.input")
    }
    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData {
        preconditionFailure("the interpreter binds inputs itself")
    }
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] { [] }
    public func tangent(_ rule: TangentRule) throws -> Tensor? { nil }
    /// Kernels read inputs where the caller put them.
    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] { [] }
}

/// A constant tensor.
public struct Constant: Operation {
    /// The tensor the node holds.
    public let value: TensorData
    /// A node holding `value`, with no operands (`GraphBuilder.constant(_:)` builds these).
    public init(_ value: TensorData) { self.value = value }
    public var role: OperationRole { .constant }
    public var name: String {
        value.shape.isScalar ? "const \(formatDouble(value.scalar))" : "const \(value.shape)"
    }
    public func outputShape(for inputs: [Shape]) throws -> Shape { value.shape }
    public func evaluate(_ inputs: [TensorData], shape: Shape) -> TensorData { value }
    public func pullback(_ rule: PullbackRule) throws -> [Tensor?] { [] }
    public func tangent(_ rule: TangentRule) throws -> Tensor? { nil }
    /// Code generation places constants itself: inline for scalars, static arrays otherwise.
    public func lower(_ site: LoopIR.Site) throws -> [LoopIR.Statement] { [] }
}

/// A short decimal for names and labels.
func formatDouble(_ value: Double) -> String {
    if value == value.rounded(), Swift.abs(value) < 1e15 { return String(Int(value)) }
    return value.description
}
