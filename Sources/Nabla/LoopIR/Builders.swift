extension LoopIR {
    /// A value as an operation's statements see it: where its elements live and its extents.
    public struct Operand: Hashable, Sendable {
        /// Where the elements are.
        public enum Storage: Hashable, Sendable {
            /// Element `i` is `buffer[base + i]`.
            case memory(Buffer, base: Int)
            /// A rank-0 value in a variable.
            case variable(Variable)
            /// A rank-0 constant written inline.
            case literal(Double)
        }

        /// Where the elements live: memory, a variable or an inline literal.
        public let storage: Storage
        /// Extent along each axis, outermost first (empty for a scalar).
        public let extents: [Int]

        /// An operand with its elements in `storage`.
        public init(_ storage: Storage, extents: [Int]) {
            self.storage = storage
            self.extents = extents
        }

        /// Number of elements.
        public var count: Int { extents.reduce(1, *) }

        /// Row-major strides of the extents.
        public var strides: [Int] { rowMajorStrides(extents) }

        /// The element at `index` (ignored for variables and literals).
        public func element(_ index: Index = Index()) -> Expression {
            switch storage {
            case let .memory(buffer, base): return .load(buffer, shifted(index, base))
            case let .variable(v): return .variable(v)
            case let .literal(value): return .literal(value)
            }
        }

        /// The element at `index` as something to write. A literal cannot be written.
        public func place(_ index: Index = Index()) -> Place {
            switch storage {
            case let .memory(buffer, base): return .element(buffer, shifted(index, base))
            case let .variable(v): return .variable(v)
            case .literal: preconditionFailure("a literal operand is never written")
            }
        }

        /// The address of the element at `index`, for functions taking pointers.
        public func address(_ index: Index = Index()) -> Argument {
            switch storage {
            case let .memory(buffer, base): return .address(buffer, shifted(index, base))
            case let .variable(v): return .addressOf(v)
            case .literal: preconditionFailure("a literal operand has no address")
            }
        }

        private func shifted(_ index: Index, _ base: Int) -> Index {
            var copy = index
            copy.offset += base
            return copy
        }
    }

    /// What an operation's `lower(_:)` works with: its result and operands, and whether heavy
    /// work may call Nabla's runtime (JIT kernels) instead of inline loops (standalone C).
    public struct Site: Sendable {
        /// Where the result goes.
        public let output: Operand
        /// The operands, in the operation's order.
        public let inputs: [Operand]
        /// True when heavy work may call Nabla's runtime (JIT kernels); false for standalone C,
        /// which inlines its loops.
        public let useRuntime: Bool

        /// What `lower(_:)` receives for one node.
        public init(output: Operand, inputs: [Operand], useRuntime: Bool) {
            self.output = output
            self.inputs = inputs
            self.useRuntime = useRuntime
        }

        /// The result elementwise: `output[i] = expression(operands at i)`, operands read with
        /// NumPy broadcasting.
        public func elementwise(_ expression: ([Expression]) -> Expression) -> [Statement] {
            let extents = output.extents
            var accesses = [Access(output, strides: output.strides)]
            for input in inputs { accesses.append(Access(input, strides: broadcastStridesOf(input.extents, to: extents))) }
            return loopNest(over: extents, accesses) { cells in
                [.assign(cells[0].place, expression(cells.dropFirst().map(\.value)))]
            }
        }

        /// The result as a strided view of operand 0: element `i` of the result (row-major) is
        /// operand element `offset + sum(index[k] * strides[k])`.
        public func gather(offset: Int, strides: [Int]) -> [Statement] {
            copy(from: inputs[0], offset: offset, strides: strides, into: output, mayUnroll: false)
        }
    }

    /// One operand of a loop nest, read or written at `offset + sum(index[k] * strides[k])`
    /// for each loop index.
    public struct Access: Sendable {
        /// The operand read or written.
        public let operand: Operand
        /// Element read or written when every loop index is 0.
        public let offset: Int
        /// Elements the access moves per step of each loop index, outermost first (0: it stays put).
        public let strides: [Int]

        /// An access to `operand` at `offset + sum(index[k] * strides[k])`.
        public init(_ operand: Operand, offset: Int = 0, strides: [Int]) {
            self.operand = operand
            self.offset = offset
            self.strides = strides
        }
    }

    /// An access at the current index of a loop nest.
    public struct Cell: Sendable {
        /// The operand accessed.
        public let operand: Operand
        /// Index of the element at the current iteration, in the nest's counters.
        public let index: Index
        /// The element, to read.
        public var value: Expression { operand.element(index) }
        /// The element, to write.
        public var place: Place { operand.place(index) }
    }

    /// A loop nest over `extents` whose body `body` builds from each access's cell. When every
    /// access walks its operand contiguously or not at all, the nest is one flat loop; one
    /// element needs no loop, none no statement.
    public static func loopNest(over extents: [Int], _ accesses: [Access], mayUnroll: Bool = false,
                                _ body: ([Cell]) -> [Statement]) -> [Statement] {
        let count = extents.reduce(1, *)
        if count == 0 { return [] }
        if count == 1 {
            return body(accesses.map { Cell(operand: $0.operand, index: Index($0.offset)) })
        }
        let contiguous = rowMajorStrides(extents)
        let flat = accesses.allSatisfy { a in a.strides == contiguous || a.strides.allSatisfy { $0 == 0 } }
        if flat {
            let cells = accesses.map { a in
                Cell(operand: a.operand, index: Index(a.offset, a.strides.contains { $0 != 0 } ? [Index.Term(.flat, 1)] : []))
            }
            return [.loop(Loop(.flat, to: count, mayUnroll: mayUnroll, body: body(cells)))]
        }
        let counters = extents.indices.map(Counter.axis)
        let cells = accesses.map { a in Cell(operand: a.operand, index: Index(offset: a.offset, counters: counters, strides: a.strides)) }
        var statements = body(cells)
        for axis in extents.indices.reversed() {
            statements = [.loop(Loop(counters[axis], to: extents[axis], mayUnroll: mayUnroll && axis == extents.count - 1, body: statements))]
        }
        return statements
    }

    /// `target` element by element from `source` read at `offset + sum(index[k] * strides[k])`
    /// (target's own shape, row-major).
    public static func copy(from source: Operand, offset: Int = 0, strides: [Int], into target: Operand, mayUnroll: Bool) -> [Statement] {
        loopNest(over: target.extents, [Access(target, strides: target.strides), Access(source, offset: offset, strides: strides)],
                 mayUnroll: mayUnroll) { cells in
            [.assign(cells[0].place, cells[1].value)]
        }
    }

    /// Every element of `target` set to `value`.
    public static func fill(_ target: Operand, with value: Double) -> [Statement] {
        loopNest(over: target.extents, [Access(target, strides: target.strides)]) { cells in
            [.assign(cells[0].place, .literal(value))]
        }
    }
}

/// Row-major strides of `extents`, in elements.
func rowMajorStrides(_ extents: [Int]) -> [Int] {
    var result = [Int](repeating: 1, count: extents.count)
    var running = 1
    for axis in stride(from: extents.count - 1, through: 0, by: -1) {
        result[axis] = running
        running &*= extents[axis]
    }
    return result
}

/// Strides for reading a contiguous value of `extents` broadcast to `target` (NumPy rules):
/// zero along the axes it lacks and where it has extent 1 but the target does not.
func broadcastStridesOf(_ extents: [Int], to target: [Int]) -> [Int] {
    let strides = rowMajorStrides(extents)
    let offset = target.count - extents.count
    return (0..<target.count).map { axis in
        let mine = axis - offset
        if mine < 0 { return 0 }
        return extents[mine] == 1 && target[axis] != 1 ? 0 : strides[mine]
    }
}
