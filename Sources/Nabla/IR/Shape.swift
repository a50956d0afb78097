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

    /// A shape written as its list of extents: `[2, 3]`.
    public init(arrayLiteral elements: Int...) { self.init(elements) }

    /// The shape of a scalar.
    public static let scalar = Shape([])

    /// Number of axes.
    public var rank: Int { dims.count }

    /// The most elements one tensor of a graph may have: 2^40 (8 TiB of doubles).
    ///
    /// `GraphBuilder` rejects larger shapes where they enter a graph. The bound keeps every
    /// index computation of the interpreter and of code generation inside `Int`: an extent,
    /// a stride or an offset into one tensor is at most 2^40, a stride times an extent at
    /// most that too, and a matrix product's m * k * n at most (2^40)^1.5 = 2^60.
    public static let maximumElementCount = 1 << 40

    /// The most elements all the tensors of one graph may hold together: 2^56, so that the
    /// workspace of a kernel, in bytes, fits in an `Int` with room for alignment padding.
    public static let maximumGraphElementCount = 1 << 56

    /// Number of elements (1 for a scalar), or `Int.max` when the product of the extents does
    /// not fit in an `Int` (no such shape gets into a graph; see `checkElementCount(of:)`).
    public var count: Int {
        if dims.contains(0) { return 0 }
        return Shape.product(dims) ?? Int.max
    }

    /// The product of `extents`, or nil when it overflows `Int`.
    static func product(_ extents: some Sequence<Int>) -> Int? {
        var result = 1
        for extent in extents {
            let (next, overflow) = result.multipliedReportingOverflow(by: extent)
            if overflow { return nil }
            result = next
        }
        return result
    }

    /// The product of the extents with zero extents counted as 1: the element count this
    /// shape would have without its empty axes, and a bound on each of its strides and on
    /// every product of some of its extents. Nil when that overflows `Int`.
    var span: Int? { Shape.product(dims.lazy.map { max($0, 1) }) }

    /// Checks that a tensor of this shape may be part of a graph: at most
    /// `maximumElementCount` elements, counting zero extents as 1 (so that a shape such as
    /// `[0, 1 << 40, 1 << 40]`, empty but with strides past the bound, is refused too).
    /// - Parameter what: what has this shape, for the message (`"input 'x'"`, an operation's
    ///   name).
    /// - Throws: `NablaError.invalidArgument` naming `what`, the shape and the bound.
    public func checkElementCount(of what: @autoclosure () -> String) throws {
        guard let span, span <= Shape.maximumElementCount else {
            let size = dims.contains(0) ? "counting its empty axes as 1, more than" : "more than"
            throw NablaError.invalidArgument(
                op: what(),
                reason: "shape \(self) has \(size) \(Shape.maximumElementCount) (2^40) elements, the most one tensor may have")
        }
    }

    /// True for rank 0.
    public var isScalar: Bool { dims.isEmpty }

    /// Row-major strides in elements.
    public var strides: [Int] {
        var result = [Int](repeating: 1, count: dims.count)
        var running = 1
        for axis in stride(from: dims.count - 1, through: 0, by: -1) {
            result[axis] = running
            // Saturating, so that asking for the strides of a shape no graph accepts does not
            // trap; the product past the outermost axis is never used.
            let (next, overflow) = running.multipliedReportingOverflow(by: dims[axis])
            running = overflow ? Int.max : next
        }
        return result
    }

    /// Extent along `axis` (0 is the outermost).
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

extension Array where Element == Int {
    /// In an increasing array whose first element is at most `value`: the last index whose
    /// element is at most `value` (binary search).
    func lastIndex(notAfter value: Int) -> Int {
        var low = 0, high = count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if self[mid] <= value { low = mid } else { high = mid - 1 }
        }
        return low
    }
}
