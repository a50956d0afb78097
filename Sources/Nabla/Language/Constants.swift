/// Whole numbers (dims, shapes, indices, axes) and constant lists, evaluated with explicit
/// stacks rather than recursion.
extension Elaborator {
    /// A step of `staticInteger`.
    private enum IntegerTask {
        case evaluate(Expression)
        /// Pops n, pushes -n.
        case negate(SourceSpan)
        /// Pops b and a, pushes `a op b`.
        case combine(ChainOperator, SourceSpan)
    }

    /// The value of a whole-number expression: literals and dims combined by `+ - *` and
    /// negation, with overflow reported.
    mutating func staticInteger(_ expression: Expression) throws -> Int {
        var tasks = [IntegerTask.evaluate(expression)]
        var values: [Int] = []
        while let task = tasks.popLast() {
            switch task {
            case let .evaluate(expression):
                try scheduleInteger(expression, &tasks, &values)
            case let .negate(span):
                let n = values.removeLast()
                guard n != Int.min else { throw error("integer overflow", at: span) }
                values.append(-n)
            case let .combine(op, span):
                let b = values.removeLast(), a = values.removeLast()
                let (result, overflow) = switch op {
                case .add: a.addingReportingOverflow(b)
                case .subtract: a.subtractingReportingOverflow(b)
                default: a.multipliedReportingOverflow(by: b)
                }
                guard !overflow else { throw error("integer overflow", at: span) }
                values.append(result)
            }
        }
        return values[0]
    }

    /// Pushes a leaf's value, or the tasks that evaluate a negation or a chain (its first
    /// operand, then each operand and its operator, left to right). An operator other than
    /// `+ - *` is reported over the chain up to its operand, the last such first.
    private mutating func scheduleInteger(_ expression: Expression, _ tasks: inout [IntegerTask], _ values: inout [Int]) throws {
        switch expression {
        case let .number(value, span):
            values.append(try wholeNumber(value, at: span))
        case let .name(name):
            values.append(try dimValue(name))
        case let .negation(operand, span):
            tasks.append(.negate(span))
            tasks.append(.evaluate(operand))
        case let .chain(first, rest, _):
            if let bad = rest.lastIndex(where: { $0.op == .divide || $0.op == .matmul }) {
                throw error("expected a whole number (a literal, a dim, or + - * of them)", at: first.span.to(rest[bad].operand.span))
            }
            for link in rest.reversed() {
                tasks.append(.combine(link.op, first.span.to(link.operand.span)))
                tasks.append(.evaluate(link.operand))
            }
            tasks.append(.evaluate(first))
        default:
            throw error("expected a whole number (a literal, a dim, or + - * of them)", at: expression.span)
        }
    }

    /// A literal that must be a whole number of a size an index or a shape can have.
    private mutating func wholeNumber(_ value: Double, at span: SourceSpan) throws -> Int {
        guard value == value.rounded() else {
            throw error("expected a whole number, found \(abbreviated(file.text(of: span)))", at: span)
        }
        guard Swift.abs(value) <= 1e15 else {
            throw error("\(abbreviated(file.text(of: span))) is too large for a size, index or axis", at: span)
        }
        return Int(value)
    }

    /// The value of a dim named in a whole-number expression.
    private mutating func dimValue(_ name: Name) throws -> Int {
        if let n = dims[name.text] { return n }
        if failedDims.contains(name.text) { throw Reported() }
        if values[name.text] != nil {
            throw error("\(name.quoted) is a tensor, but a whole number (a literal or a dim) is needed here", at: name.span)
        }
        throw unknownName(name, among: .dims)
    }

    /// The value of a numeric literal, possibly negated, else nil.
    func constantValue(_ expression: Expression) -> Double? {
        var expression = expression
        var sign = 1.0
        while case let .negation(operand, _) = expression {
            sign = -sign
            expression = operand
        }
        guard case let .number(value, _) = expression else { return nil }
        return sign * value
    }

    /// True when a list literal holds only numbers and dims (in lists of lists, to any depth):
    /// constant data rather than tensors to stack. Walks with an explicit stack.
    func isConstantList(_ elements: [Expression]) -> Bool {
        var pending = elements
        while let element = pending.popLast() {
            if case let .list(inner, _) = element {
                pending += inner
            } else if constantValue(element) == nil {
                guard case let .name(name) = element, dims[name.text] != nil else { return false }
            }
        }
        return true
    }

    /// A list literal being read by `constantList`: its elements, the next to read, and the
    /// rows read so far when its elements are lists.
    private struct ListInProgress {
        let elements: [Expression]
        let span: SourceSpan
        var next = 0
        var rows: [TensorData] = []
    }

    /// A nested list of numbers (or dims) as constant data; every level's lists must have one
    /// shape. Read depth first with an explicit stack.
    mutating func constantList(_ elements: [Expression], span: SourceSpan) throws -> TensorData {
        var stack = [ListInProgress(elements: elements, span: span)]
        while true {
            let top = stack.count - 1
            let list = stack[top]
            let data: TensorData
            if list.elements.isEmpty {
                data = try TensorData(shape: [0], scalars: [])
            } else if case .list = list.elements[0] {
                if list.next < list.elements.count {
                    let element = list.elements[list.next]
                    guard case let .list(inner, innerSpan) = element else {
                        throw error("a nested list must hold lists of equal length throughout", at: element.span)
                    }
                    stack[top].next += 1
                    stack.append(ListInProgress(elements: inner, span: innerSpan))
                    continue
                }
                data = try stacked(list.rows, at: list.span)
            } else {
                data = try row(of: list.elements)
            }
            stack.removeLast()
            guard !stack.isEmpty else { return data }
            stack[stack.count - 1].rows.append(data)
        }
    }

    /// Rows of one shape stacked along a new first axis.
    private mutating func stacked(_ rows: [TensorData], at span: SourceSpan) throws -> TensorData {
        guard rows.allSatisfy({ $0.shape == rows[0].shape }) else {
            throw error("the rows of this list have different shapes", at: span)
        }
        return try TensorData(shape: Shape([rows.count] + rows[0].shape.dims), scalars: rows.flatMap(\.scalars))
    }

    /// A list of numbers (or dims) as a vector.
    private mutating func row(of elements: [Expression]) throws -> TensorData {
        var scalars: [Double] = []
        for element in elements {
            if let value = constantValue(element) {
                scalars.append(value)
            } else if case let .name(name) = element, let n = dims[name.text] {
                scalars.append(Double(n))
            } else {
                throw error("a list literal holds numbers only", at: element.span)
            }
        }
        return try TensorData(shape: [scalars.count], scalars: scalars)
    }
}
