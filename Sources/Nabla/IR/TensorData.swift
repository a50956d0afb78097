/// Concrete f64 tensor data: a shape and its elements in row-major order.
///
/// This is what the interpreter computes with and what kernels read and write.
public struct TensorData: Hashable, Sendable, CustomStringConvertible {
    /// The tensor's shape; `scalars` holds `shape.count` elements.
    public let shape: Shape
    /// Elements in row-major order; `scalars.count == shape.count`.
    public var scalars: [Double]

    /// Creates a tensor from a shape and its row-major elements.
    /// - Throws: `NablaError.sizeMismatch` when the element count does not fit the shape.
    public init(shape: Shape, scalars: [Double]) throws {
        guard scalars.count == shape.count else {
            throw NablaError.sizeMismatch(
                what: "tensor data", expected: shape.count, got: scalars.count)
        }
        self.shape = shape
        self.scalars = scalars
    }

    init(unchecked shape: Shape, _ scalars: [Double]) {
        assert(scalars.count == shape.count)
        self.shape = shape
        self.scalars = scalars
    }

    /// A scalar tensor.
    public init(_ value: Double) {
        self.shape = .scalar
        self.scalars = [value]
    }

    /// A tensor of the given shape with every element equal to `value`.
    public init(repeating value: Double, shape: Shape) {
        self.shape = shape
        self.scalars = [Double](repeating: value, count: shape.count)
    }

    /// The single element of a tensor with one element.
    public var scalar: Double {
        precondition(scalars.count == 1, "tensor of shape \(shape) is not a scalar")
        return scalars[0]
    }

    /// Element at a multi-index.
    public subscript(_ index: Int...) -> Double {
        precondition(index.count == shape.rank, "index rank \(index.count) for shape \(shape)")
        var offset = 0
        for (i, s) in zip(index, shape.strides) { offset += i * s }
        return scalars[offset]
    }

    public var description: String { "TensorData(shape: \(shape), scalars: \(scalars))" }
}
