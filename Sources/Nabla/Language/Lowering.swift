/// Lowering expressions to tensors with an explicit work stack.
///
/// Nothing here recurses: a long chain, a deep power or postfix chain and a call of a function
/// that calls another, through ten thousand definitions, all run in a loop over heap-allocated
/// stacks, so lowering is safe on a thread with a small stack. Function calls expand their
/// function's body each time, memoised per (function, argument tensors); a budget on the
/// expression nodes expanded from function bodies stops a program whose expansion would grow
/// without bound (a function calling another twice, calling another twice, ...).
extension Elaborator {
    /// Parameter bindings of the function body being lowered.
    typealias Scope = [String: Tensor]

    /// Expression nodes the function calls of any program may expand, in all (a memoised call
    /// counts as one); a larger file may expand `expandedNodesPerByte` for each of its bytes.
    /// Past the budget, a call is an error rather than a wait for memory or time; expansion's
    /// work is linear in the file's size.
    static let minimumExpansionBudget = 1 << 20
    static let expandedNodesPerByte = 16

    /// The expansion budget of this program's file.
    var expansionBudget: Int { max(Self.minimumExpansionBudget, Self.expandedNodesPerByte * file.bytes.count) }

    /// A unit of work of `lower`.
    enum LoweringTask {
        /// Lower the expression in the scope, pushing its tensor.
        case lower(Expression, Scope)
        /// Pop the step's operands, push its result.
        case apply(LoweringStep)
    }

    /// What to do with tensors already lowered.
    enum LoweringStep {
        /// Pops x, pushes -x.
        case negate(SourceSpan)
        /// Pops b and a, pushes `a op b`.
        case chain(ChainOperator, span: SourceSpan)
        /// Pops the exponent (unless it is the constant given) and the base, pushes base ^ exponent.
        case power(constantExponent: Double?, span: SourceSpan)
        /// Pops x, pushes x indexed or transposed; the span runs from x's start to the operation's end.
        case postfix(PostfixOperation, span: SourceSpan)
        /// Pops b and a, pushes 1 where `a relation b` holds, else 0.
        case compare(LoopIR.ComparisonOperator, span: SourceSpan)
        /// Pops `count` masks, pushes their `and` (or `or`), left to right.
        case logical(LogicalOperator, count: Int, span: SourceSpan)
        /// Pops a mask, pushes its `not`.
        case not(SourceSpan)
        /// Pops `count` tensors of one shape, pushes them stacked along a new leading axis.
        case stack(count: Int, span: SourceSpan)
        /// Pops a loop's tensor arguments (its initial carry, its sequence), pushes its result.
        case loop(Builtin, function: Name, steps: Int?, span: SourceSpan)
        /// Pops the built-in's tensor arguments, pushes its result.
        case builtin(Builtin, arguments: [Expression], tensorCount: Int, span: SourceSpan)
        /// Pops a user function's arguments; pushes the result of an earlier identical call, or
        /// enters the call and schedules its body.
        case expand(function: String, argumentCount: Int, span: SourceSpan)
        /// Leaves the innermost call, memoising its result (the tensor on top).
        case finishCall(CallKey)
    }

    /// A call of a user function on given argument tensors: the same key, the same result, since
    /// functions are pure and the builder shares equal nodes.
    struct CallKey: Hashable {
        let function: String
        let arguments: [Int]
    }

    /// A user function call being expanded.
    struct ActiveCall {
        let function: String
        let span: SourceSpan
    }

    /// The stacks of one `lower`.
    struct LoweringState {
        var tasks: [LoweringTask]
        var results: [Tensor] = []
        var calls: [ActiveCall] = []

        /// Removes and returns the top `count` results, the deepest first.
        mutating func popResults(_ count: Int) -> [Tensor] {
            let popped = Array(results.suffix(count))
            results.removeLast(count)
            return popped
        }
    }

    /// Thrown once the expansion budget's error has been reported: no "in this call" notes.
    struct ExpansionLimitReached: Error {}

    /// Lowers an expression to a tensor. `scope` binds a user function's parameters.
    mutating func lower(_ expression: Expression, scope: Scope) throws -> Tensor {
        // The stacks of the last `lower` are reused: a file of 10^5 bindings lowers 10^5
        // expressions. (A `lower` inside another, for a loop's body, makes its own.)
        var state = spareLoweringState ?? LoweringState(tasks: [])
        spareLoweringState = nil
        defer {
            state.tasks.removeAll(keepingCapacity: true)
            state.results.removeAll(keepingCapacity: true)
            state.calls.removeAll(keepingCapacity: true)
            spareLoweringState = state
        }
        state.tasks.append(.lower(expression, scope))
        do {
            while let task = state.tasks.popLast() {
                switch task {
                case let .lower(expression, scope): try schedule(expression, in: scope, &state)
                case let .apply(step): try perform(step, &state)
                }
            }
        } catch is ExpansionLimitReached {
            throw Reported()
        } catch {
            noteCalls(state.calls)
            throw error
        }
        return state.results[0]
    }

    /// Lowers a leaf at once; for anything else, pushes the steps that lower it.
    private mutating func schedule(_ expression: Expression, in scope: Scope, _ state: inout LoweringState) throws {
        if !state.calls.isEmpty { try spendExpansionBudget(state) }
        switch expression {
        case let .number(value, _):
            state.results.append(builder.constant(value))
        case let .name(name):
            state.results.append(try resolve(name, in: scope))
        case let .negation(operand, span):
            state.tasks.append(.apply(.negate(span)))
            state.tasks.append(.lower(operand, scope))
        case let .chain(first, rest, _):
            // Runs as: first, operand 1, step 1, operand 2, step 2, ...
            for link in rest.reversed() {
                state.tasks.append(.apply(.chain(link.op, span: first.span.to(link.operand.span))))
                state.tasks.append(.lower(link.operand, scope))
            }
            state.tasks.append(.lower(first, scope))
        case let .power(operands, _):
            schedulePower(operands, in: scope, &state)
        case let .postfix(base, operations, _):
            for operation in operations.reversed() {
                state.tasks.append(.apply(.postfix(operation, span: base.span.to(operation.span))))
            }
            state.tasks.append(.lower(base, scope))
        case let .call(function, arguments, span):
            try scheduleCall(function, arguments, span: span, in: scope, &state)
        case let .list(elements, span):
            if isConstantList(elements) {
                state.results.append(builder.constant(try constantList(elements, span: span)))
                return
            }
            state.tasks.append(.apply(.stack(count: elements.count, span: span)))
            for element in elements.reversed() { state.tasks.append(.lower(element, scope)) }
        case let .comparison(relation, left, right, span):
            state.tasks.append(.apply(.compare(relation, span: span)))
            state.tasks.append(.lower(right, scope))
            state.tasks.append(.lower(left, scope))
        case let .logical(op, operands, span):
            state.tasks.append(.apply(.logical(op, count: operands.count, span: span)))
            for operand in operands.reversed() { state.tasks.append(.lower(operand, scope)) }
        case let .not(operand, span):
            state.tasks.append(.apply(.not(span)))
            state.tasks.append(.lower(operand, scope))
        }
    }

    /// `b0 ^ b1 ^ ... ^ bn` runs as: b0, b1, ..., bn, then the powers from the right. A constant
    /// last exponent is not lowered: `x ^ 2` becomes the constant-exponent power.
    private func schedulePower(_ operands: [Expression], in scope: Scope, _ state: inout LoweringState) {
        let last = operands.count - 1
        let end = operands[last].span
        let constantExponent = constantValue(operands[last])
        for i in 0..<last {
            state.tasks.append(.apply(.power(constantExponent: i == last - 1 ? constantExponent : nil, span: operands[i].span.to(end))))
        }
        if constantExponent == nil { state.tasks.append(.lower(operands[last], scope)) }
        for operand in operands[..<last].reversed() { state.tasks.append(.lower(operand, scope)) }
    }

    /// Checks a call's arguments, then pushes the steps that lower the arguments and apply it.
    private mutating func scheduleCall(_ function: Name, _ arguments: [Expression], span: SourceSpan, in scope: Scope, _ state: inout LoweringState) throws {
        if let definition = functions[function.text] {
            // A recursive function was reported where it was defined.
            if recursiveFunctions.contains(function.text) { throw Reported() }
            guard arguments.count == definition.parameters.count else {
                throw error("\(function.quoted) takes \(definition.parameters.count) argument\(definition.parameters.count == 1 ? "" : "s"), got \(arguments.count)", at: span)
            }
            state.tasks.append(.apply(.expand(function: function.text, argumentCount: arguments.count, span: span)))
            for argument in arguments.reversed() { state.tasks.append(.lower(argument, scope)) }
            return
        }
        guard let builtin = Builtin(rawValue: function.text) else { throw unknownFunction(function) }
        try checkArguments(of: builtin, arguments, span: span)
        if builtin.isLoop { return try scheduleLoop(builtin, arguments, span: span, in: scope, &state) }
        let lowered = builtin.tensorArguments(of: arguments, constantValue: constantValue)
        state.tasks.append(.apply(.builtin(builtin, arguments: arguments, tensorCount: lowered.count, span: span)))
        for index in lowered.reversed() { state.tasks.append(.lower(arguments[index], scope)) }
    }

    /// Applies one step to the results on top of the stack.
    private mutating func perform(_ step: LoweringStep, _ state: inout LoweringState) throws {
        switch step {
        case let .negate(span):
            try push(-state.results.removeLast(), at: span, &state)
        case let .chain(op, span):
            let b = state.results.removeLast(), a = state.results.removeLast()
            try push(try combine(a, op, b, at: span), at: span, &state)
        case let .power(constantExponent, span):
            try push(try raise(constantExponent: constantExponent, at: span, &state), at: span, &state)
        case let .postfix(operation, span):
            try push(try applyPostfix(operation, to: state.results.removeLast(), at: span), at: span, &state)
        case let .compare(relation, span):
            let b = state.results.removeLast(), a = state.results.removeLast()
            let compared = try apply(at: span) { try a.builder.apply(Compare(relation), [a, b]) } describe: {
                "cannot compare shapes \(a.shape) and \(b.shape) with '\(relation.rawValue)'"
            }
            try push(compared, at: span, &state)
        case let .logical(op, count, span):
            let masks = state.popResults(count)
            var joined = masks[0]
            for mask in masks.dropFirst() {
                let left = joined
                joined = try apply(at: span) { op == .and ? try and(left, mask) : try or(left, mask) } describe: {
                    "cannot apply '\(op.rawValue)' to shapes \(left.shape) and \(mask.shape)"
                }
                try checkSize(joined.shape, at: span)
            }
            state.results.append(joined)
        case let .not(span):
            try push(Nabla.not(state.results.removeLast()), at: span, &state)
        case let .stack(count, span):
            let elements = state.popResults(count)
            if let odd = elements.firstIndex(where: { $0.shape != elements[0].shape }) {
                throw error("the elements of this list have different shapes: element 1 has shape \(elements[0].shape), element \(odd + 1) has shape \(elements[odd].shape)", at: span)
            }
            try push(try apply(at: span) { try stack(elements) } describe: { "cannot stack these elements" }, at: span, &state)
        case let .loop(builtin, function, steps, span):
            let tensors = state.popResults(builtin == .map || steps != nil ? 1 : 2)
            try push(try runLoop(builtin, function, tensors, steps: steps, span: span), at: span, &state)
        case let .builtin(builtin, arguments, tensorCount, span):
            let tensors = state.popResults(tensorCount)
            try push(try apply(builtin, arguments, tensors: tensors, span: span), at: span, &state)
        case let .expand(function, argumentCount, span):
            enterCall(of: function, arguments: state.popResults(argumentCount), span: span, &state)
        case let .finishCall(key):
            expansions[key] = state.results[state.results.count - 1]
            state.calls.removeLast()
        }
    }

    /// Pushes a step's result after checking its size.
    private mutating func push(_ tensor: Tensor, at span: SourceSpan, _ state: inout LoweringState) throws {
        try checkSize(tensor.shape, at: span)
        state.results.append(tensor)
    }

    /// `a op b`, or a diagnostic at `span`.
    private mutating func combine(_ a: Tensor, _ op: ChainOperator, _ b: Tensor, at span: SourceSpan) throws -> Tensor {
        try apply(at: span) {
            switch op {
            case .add: return try a + b
            case .subtract: return try a - b
            case .multiply: return try a * b
            case .divide: return try a / b
            case .matmul: return try a.matmul(b)
            }
        } describe: { "cannot apply '\(op.rawValue)' to shapes \(a.shape) and \(b.shape)" }
    }

    /// Pops the exponent (unless constant) and the base, and raises one to the other.
    private mutating func raise(constantExponent: Double?, at span: SourceSpan, _ state: inout LoweringState) throws -> Tensor {
        if let constantExponent { return state.results.removeLast() ** constantExponent }
        let b = state.results.removeLast(), a = state.results.removeLast()
        return try apply(at: span) { try a ** b } describe: { "cannot apply '^' to shapes \(a.shape) and \(b.shape)" }
    }

    /// `tensor[items]` or `tensor'`.
    private mutating func applyPostfix(_ operation: PostfixOperation, to tensor: Tensor, at span: SourceSpan) throws -> Tensor {
        guard case let .index(items, _) = operation else { return tensor.transposed }
        var ranges: [SliceRange] = []
        for item in items {
            switch item {
            case let .single(index):
                ranges.append(.index(try staticInteger(index)))
            case let .range(start, end, step, _):
                let s = try start.map { try staticInteger($0) }
                let e = try end.map { try staticInteger($0) }
                let k = try step.map { try staticInteger($0) } ?? 1
                ranges.append(.range(start: s, end: e, step: k))
            }
        }
        return try apply(at: span) { try tensor.slice(ranges) } describe: { "cannot index shape \(tensor.shape) with \(items.count) index\(items.count == 1 ? "" : "es")" }
    }

    /// Pushes the result of an identical earlier call, or enters the call: its body is lowered
    /// next with the parameters bound, then `finishCall` memoises the result.
    private mutating func enterCall(of function: String, arguments: [Tensor], span: SourceSpan, _ state: inout LoweringState) {
        let key = CallKey(function: function, arguments: arguments.map(\.id))
        if let result = expansions[key] {
            state.results.append(result)
            return
        }
        let definition = functions[function]!
        var scope: Scope = [:]
        for (parameter, argument) in zip(definition.parameters, arguments) { scope[parameter.text] = argument }
        state.calls.append(ActiveCall(function: function, span: span))
        state.tasks.append(.apply(.finishCall(key)))
        state.tasks.append(.lower(definition.body, scope))
    }

    /// Counts one expression node expanded from a function body; past the budget, reports the
    /// outermost call being expanded.
    private mutating func spendExpansionBudget(_ state: LoweringState) throws {
        expandedNodes += 1
        guard expandedNodes > expansionBudget else { return }
        let outermost = state.calls[0]
        error("expanding this call of \(quoted(outermost.function)) goes past the limit of \(expansionBudget) expression nodes expanded from function bodies in this file (each call expands its function's body again)", at: outermost.span)
        throw ExpansionLimitReached()
    }

    /// Notes the calls being expanded when an error was found, innermost first, since the error
    /// inside a body depends on its arguments. A deep nest of calls shows its innermost few and
    /// the outermost.
    private mutating func noteCalls(_ calls: [ActiveCall]) {
        let shown = 8
        guard calls.count > shown else {
            for call in calls.reversed() { diagnostics.append(Diagnostic(.note, "in this call of \(quoted(call.function))", at: call.span)) }
            return
        }
        for call in calls.suffix(shown - 1).reversed() { diagnostics.append(Diagnostic(.note, "in this call of \(quoted(call.function))", at: call.span)) }
        let between = calls.count - shown
        diagnostics.append(Diagnostic(.note, "in this call of '\(calls[0].function)', through \(between) more call\(between == 1 ? "" : "s")", at: calls[0].span))
    }

    /// Notes the loop whose body held an error, as calls are noted. Nested loops note their
    /// innermost few and the outermost.
    private mutating func noteLoop(_ builtin: Builtin, _ function: Name, at span: SourceSpan) {
        let trailingNotes = diagnostics.reversed().prefix { $0.severity == .note }.count
        guard trailingNotes < 8 || loopBodies.count == 1 else { return }
        diagnostics.append(Diagnostic(.note, "in the body of this '\(builtin.rawValue)' over \(function.quoted)", at: span))
    }

    /// The tensor a name stands for: a parameter, a binding or input, or a dim as a constant.
    private mutating func resolve(_ name: Name, in scope: Scope) throws -> Tensor {
        if let tensor = scope[name.text] { return tensor }
        if let bound = values[name.text] {
            guard let tensor = bound else { throw Reported() }
            return tensor
        }
        if let n = dims[name.text] { return builder.constant(Double(n)) }
        if functions[name.text] != nil || builtinNames.contains(name.text) {
            throw error("\(name.quoted) is a function; call it with arguments", at: name.span)
        }
        throw unknownName(name, among: .values(in: scope))
    }

    /// An unknown function, with the nearest known one as a suggestion.
    private mutating func unknownFunction(_ function: Name) -> Reported {
        let near = maySuggest(for: function.text) ? suggestion(for: function.text, among: Array(builtinNames) + Array(functions.keys)) : nil
        return error("unknown function \(function.quoted)", at: function.span, label: near.map { "did you mean '\($0)'?" })
    }

    // MARK: - Loops

    /// `fold(f, init, n)`, `fold(f, init, xs)`, `scan(...)` likewise, `map(f, xs)`: checks the
    /// function and pushes the steps that lower the tensors and run the loop. A last argument
    /// written as a whole number (literals and dims) is a number of steps; anything else is a
    /// sequence.
    private mutating func scheduleLoop(_ builtin: Builtin, _ arguments: [Expression], span: SourceSpan, in scope: Scope, _ state: inout LoweringState) throws {
        let kind = builtin.rawValue
        guard case let .name(function) = arguments[0] else {
            throw error("the first argument of '\(kind)' is the name of a function defined with 'def'", at: arguments[0].span)
        }
        guard let definition = functions[function.text] else {
            if builtinNames.contains(function.text) {
                throw error("'\(kind)' takes a function defined with 'def'; wrap the built-in \(function.quoted) in one", at: function.span)
            }
            if values[function.text] != nil || dims[function.text] != nil {
                throw error("\(function.quoted) is a value; the first argument of '\(kind)' is the name of a function defined with 'def'", at: function.span)
            }
            throw unknownFunction(function)
        }
        if recursiveFunctions.contains(function.text) { throw Reported() }
        let parameters = builtin == .map ? 1 : 2
        let role = builtin == .map ? "a row" : "the carry and the step number k (or a row)"
        try require(definition.parameters.count == parameters, "'\(kind)' needs a function of \(parameters) parameter\(parameters == 1 ? "" : "s") (\(role)); \(function.quoted) takes \(definition.parameters.count)", at: function.span)
        let last = arguments[arguments.count - 1]
        let steps = builtin != .map && isWholeNumberSyntax(last) ? try staticInteger(last) : nil
        if let steps { try require(steps >= 0, "'\(kind)' needs a number of steps that is not negative, got \(steps)", at: last.span) }
        state.tasks.append(.apply(.loop(builtin, function: function, steps: steps, span: span)))
        if steps == nil { state.tasks.append(.lower(last, scope)) }
        if builtin != .map { state.tasks.append(.lower(arguments[1], scope)) }
    }

    /// True for an expression written with literals, dims and `+ - *` only.
    private func isWholeNumberSyntax(_ expression: Expression) -> Bool {
        var pending = [expression]
        while let e = pending.popLast() {
            switch e {
            case .number: continue
            case let .name(name): if dims[name.text] == nil { return false }
            case let .negation(operand, _): pending.append(operand)
            case let .chain(first, rest, _):
                guard rest.allSatisfy({ $0.op != .divide && $0.op != .matmul }) else { return false }
                pending.append(first)
                pending += rest.map(\.operand)
            default: return false
            }
        }
        return true
    }

    /// Runs a loop whose body is `function`'s, lowered once into a body graph of its own; the
    /// tensors are the initial carry (not for `map`) and the sequence (without `steps`).
    private mutating func runLoop(_ builtin: Builtin, _ function: Name, _ tensors: [Tensor], steps: Int?, span: SourceSpan) throws -> Tensor {
        if let cycle = loopBodies.firstIndex(of: function.text) {
            let names = (loopBodies[cycle...] + [function.text]).map { "'\($0)'" }.joined(separator: " -> ")
            throw error("recursive loop: the body of \(function.quoted) runs a loop over itself (\(names))", at: function.span)
        }
        let definition = functions[function.text]!
        let initial = builtin == .map ? nil : tensors[0]
        let sequence = steps == nil ? tensors[tensors.count - 1] : nil
        if let sequence {
            try require(sequence.shape.rank > 0, "'\(builtin.rawValue)' runs over the rows of a tensor, but its last argument is a scalar; give a tensor with a leading axis, or a whole number of steps", at: span)
        }
        let rowShape = sequence.map { Shape(Array($0.shape.dims.dropFirst())) }
        let outer = builder
        let savedExpansions = expansions
        loopBodies.append(function.text)
        defer {
            builder = outer
            expansions = savedExpansions
            loopBodies.removeLast()
        }
        let made: MadeBody
        do {
            made = try makeBody(parent: outer, carries: initial.map { [$0.shape] } ?? [], rows: rowShape.map { [$0] } ?? []) { carries, rows, k in
                builder = k.builder
                expansions = [:]
                var scope: Scope = [:]
                for (parameter, argument) in zip(definition.parameters, carries + (rows.isEmpty ? [k] : rows)) { scope[parameter.text] = argument }
                let result = try lower(definition.body, scope: scope)
                switch builtin {
                case .scan: return ([result], [result])
                case .fold: return ([result], [])
                default: return ([], [result])
                }
            }
        } catch let NablaError.shapeMismatch(op, shapes, _) where op == "loop" && shapes.count == 2 {
            throw error("the body of \(function.quoted) returns shape \(shapes[1]) for a carry of shape \(shapes[0]); '\(builtin.rawValue)' needs the shape it takes", at: span)
        } catch let failure as NablaError {
            throw error("cannot run '\(builtin.rawValue)' over \(function.quoted): \(failure)", at: span)
        } catch let reported as Reported {
            noteLoop(builtin, function, at: span)
            throw reported
        }
        builder = outer
        do {
            let (finals, outputs) = try runScan(initial.map { [$0] } ?? [], sequence.map { [$0] } ?? [], steps: steps ?? sequence!.shape[0], made)
            return builtin == .fold ? finals[0] : outputs[0]
        } catch let failure as NablaError {
            throw error("cannot run '\(builtin.rawValue)' over \(function.quoted): \(failure)", at: span)
        }
    }
}
