/// The static shape of an f64 tensor: its extent along each axis, outermost first.
///
/// A scalar has the empty shape `[]`. Data is always stored row-major (the last axis varies
/// fastest).
public struct Shape: Hashable, Sendable, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// Extent along each axis.
    public var dims: [Int]

    /// Creates a shape from its extents. Extents must not be negative.
    public init(_ dims: [Int]) {
        precondition(dims.allSatisfy { $0 >= 0 }, "negative extent in shape \(dims)")
        self.dims = dims
    }

    public init(arrayLiteral elements: Int...) { self.init(elements) }

    /// The shape of a scalar.
    public static let scalar = Shape([])

    /// Number of axes.
    public var rank: Int { dims.count }

    /// Number of elements (1 for a scalar).
    public var count: Int { dims.reduce(1, *) }

    /// True for rank 0.
    public var isScalar: Bool { dims.isEmpty }

    /// Row-major strides in elements.
    public var strides: [Int] {
        var result = [Int](repeating: 1, count: dims.count)
        var running = 1
        for axis in stride(from: dims.count - 1, through: 0, by: -1) {
            result[axis] = running
            running *= dims[axis]
        }
        return result
    }

    public subscript(axis: Int) -> Int { dims[axis] }

    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }

    /// The NumPy broadcast of two shapes, or nil when they are incompatible.
    ///
    /// Shapes are aligned at their last axis; each pair of extents must be equal or one of
    /// them 1.
    public static func broadcast(_ a: Shape, _ b: Shape) -> Shape? {
        let rank = max(a.rank, b.rank)
        var dims = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.rank ? 1 : a.dims[i - (rank - a.rank)]
            let db = i < rank - b.rank ? 1 : b.dims[i - (rank - b.rank)]
            if da == db || db == 1 {
                dims[i] = da
            } else if da == 1 {
                dims[i] = db
            } else {
                return nil
            }
        }
        return Shape(dims)
    }

    /// True when this shape broadcasts to `target` under NumPy rules.
    public func broadcasts(to target: Shape) -> Bool {
        guard rank <= target.rank else { return false }
        let offset = target.rank - rank
        for i in 0..<rank where dims[i] != 1 && dims[i] != target.dims[i + offset] {
            return false
        }
        return true
    }

    /// Strides for reading this shape as if broadcast to `target`: zero along every axis this
    /// shape lacks or has extent 1 where the target is wider.
    func broadcastStrides(to target: Shape) -> [Int] {
        Nabla.broadcastStrides(self, strides, to: target)
    }
}
