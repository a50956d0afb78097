/// Where a value lives when some inputs are split by rows over the processes of a
/// data-parallel kernel (`DataParallelKernel`).
public enum RowPlacement: Hashable, Sendable, CustomStringConvertible {
    /// Every process holds the whole value, the same on each.
    case replicated
    /// Each process holds its own block of rows along `axis` (the rows of the sharded inputs);
    /// the value is those blocks joined in process order.
    case rows(axis: Int)
    /// Each process holds a partial value; the value is their sum over the processes (a sum
    /// over rows, before it is reduced).
    case partial

    public var description: String {
        switch self {
        case .replicated: "replicated"
        case .rows(let axis): "rows along axis \(axis)"
        case .partial: "a partial sum"
        }
    }
}

/// The rows of a data-parallel run's sharded inputs and this process's share of them.
public struct ProcessRows: Hashable, Sendable {
    /// Rows over all processes.
    public let rows: Int
    /// The rows this process holds (a contiguous block, possibly empty).
    public let block: Range<Int>
    /// True on the first process (rank 0), which adds the replicated terms of partial sums.
    public let isFirst: Bool
}

/// What an operation is asked when some of its operands are split by rows (or partial sums):
/// the operands' placements and global shapes, and the row counts.
///
/// Operations answer with `Operation.splitRows(_:)`; the default reduces partial operands
/// first and refuses operands split by rows. Shape-carrying operations (a reshape, a
/// broadcast, a slice) return a copy of themselves for this process's row count.
public struct RowSplit {
    /// Placement of each operand (after any reduction or slicing already decided).
    public let placements: [RowPlacement]
    /// Global shape of each operand.
    public let shapes: [Shape]
    /// Global shape of the result.
    public let result: Shape
    /// The rows and this process's share of them.
    public let process: ProcessRows
    /// Rows of the sharded inputs, over all processes.
    public var rows: Int { process.rows }
    /// Rows this process holds.
    public var localRows: Int { process.block.count }

    /// What an operation does with such operands.
    public enum Rule {
        /// The result is split by rows along `axis`; each process applies `local` (the
        /// operation itself, or a copy for its own row count) to its operands.
        case rows(axis: Int, local: any Operation)
        /// The result is a partial sum over the processes of `local` applied to each one's
        /// operands.
        case partial(local: any Operation)
        /// These partial operands must be summed over the processes first (the operation is
        /// not linear in them).
        case reduceFirst([Int])
        /// These replicated operands are to be read as partial sums: the value on the first
        /// process and zero on the others, which sum to it. A partial sum plus a replicated
        /// term (a penalty added to a loss) then stays a partial sum, with no reduction before.
        case promoteFirst([Int])
        /// These replicated operands span the rows along `axis` and must be cut to this
        /// process's block first.
        case sliceFirst([(operand: Int, axis: Int)])
        /// The operation cannot run on split rows, for `reason` (a phrase: "mixes rows").
        case refused(String)
    }

    /// Operands placed as partial sums.
    var partialOperands: [Int] { placements.indices.filter { placements[$0] == .partial } }

    /// The row axis of operand `i`, if it is split by rows.
    func rowAxis(_ i: Int) -> Int? {
        if case .rows(let axis) = placements[i] { return axis }
        return nil
    }

    /// Operands split by rows.
    var rowOperands: [Int] { placements.indices.filter { rowAxis($0) != nil } }

    /// `shape` with its extent along `axis` replaced by this process's row count.
    func localized(_ shape: Shape, axis: Int) -> Shape {
        var dims = shape.dims
        dims[axis] = localRows
        return Shape(dims)
    }

    /// The default rule: reduce partial operands, refuse operands split by rows.
    func needingWholeOperands(_ name: String) -> Rule {
        if !partialOperands.isEmpty { return .reduceFirst(partialOperands) }
        return .refused("\(name) needs all rows of its operand")
    }

    /// The rule of an elementwise operation over broadcast operands.
    ///
    /// Operands split by rows must agree on the row axis of the result; a replicated operand
    /// that spans that axis is cut to this process's rows. `linearIn` says which operands may
    /// stay partial sums: all of them for a sum of terms (`additive`), any one of them with the
    /// others replicated for a product (`multiplicative`), and `none` otherwise.
    func elementwise(_ operation: any Operation, linearIn linearity: ElementwiseLinearity = .none) -> Rule {
        let rank = result.rank
        // Axis of the result each operand axis aligns with (NumPy broadcasting: from the right).
        func resultAxis(_ i: Int, _ axis: Int) -> Int { axis + rank - shapes[i].rank }
        let rowed = rowOperands
        if !rowed.isEmpty {
            if !partialOperands.isEmpty { return .reduceFirst(partialOperands) }
            let axes = Set(rowed.map { resultAxis($0, rowAxis($0)!) })
            guard axes.count == 1, let axis = axes.first else {
                return .refused("\(operation.name) combines values split along different axes")
            }
            var slices: [(operand: Int, axis: Int)] = []
            for i in placements.indices where placements[i] == .replicated {
                let own = axis - (rank - shapes[i].rank)
                if own >= 0, shapes[i][own] != 1 { slices.append((i, own)) }
            }
            if !slices.isEmpty { return .sliceFirst(slices) }
            return .rows(axis: axis, local: operation)
        }
        let partial = partialOperands
        switch linearity {
        case .additive where partial.count == placements.count:
            return .partial(local: operation)
        case .additive:
            return .promoteFirst(placements.indices.filter { placements[$0] == .replicated })
        case .multiplicative(let positions) where partial.count == 1 && positions.contains(partial[0]):
            return .partial(local: operation)
        default:
            // Reducing one operand of a product keeps the other partial.
            if case .multiplicative(let positions) = linearity, let keep = partial.first(where: positions.contains) {
                return .reduceFirst(partial.filter { $0 != keep })
            }
            return .reduceFirst(partial)
        }
    }

    /// Rule of a sum, softmax or other reduction over `axes` of its single operand: split rows
    /// along an axis not reduced stay split (`axes` taken out before it); along a reduced axis,
    /// `overRows` says what happens.
    func reducing(_ operation: any Operation, axes: [Int], overRows: Rule, partial: Rule, keepsAxes: Bool = false) -> Rule {
        if placements[0] == .partial { return partial }
        guard let axis = rowAxis(0) else { return .refused("\(operation.name) on a replicated value") }
        if axes.contains(axis) { return overRows }
        return .rows(axis: keepsAxes ? axis : axis - axes.filter { $0 < axis }.count, local: operation)
    }
}

/// Which operands of an elementwise operation it is linear in, for partial sums.
enum ElementwiseLinearity {
    /// Not linear in any operand (sin, a comparison).
    case none
    /// A sum of its operands (with signs): linear in all of them together.
    case additive
    /// Linear in each of the listed operands while the others are fixed.
    case multiplicative([Int])
}

extension Operation {
    public func splitRows(_ split: RowSplit) -> RowSplit.Rule { split.needingWholeOperands(name) }
}
