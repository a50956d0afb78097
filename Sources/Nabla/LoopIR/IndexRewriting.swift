extension LoopIR {
    /// The statements with every element index (of loads, places, addresses and pointers)
    /// replaced by `f` of it.
    static func mapIndices(_ statements: [Statement], _ f: (Index) -> Index) -> [Statement] {
        statements.map { mapIndices($0, f) }
    }

    static func mapIndices(_ statement: Statement, _ f: (Index) -> Index) -> Statement {
        func e(_ x: Expression) -> Expression { mapIndices(x, f) }
        func p(_ place: Place) -> Place {
            if case let .element(buffer, index) = place { return .element(buffer, f(index)) }
            return place
        }
        switch statement {
        case .comment, .counter: return statement
        case let .declare(v, x, mutable): return .declare(v, e(x), mutable: mutable)
        case let .assign(place, x): return .assign(p(place), e(x))
        case let .accumulate(place, x): return .accumulate(p(place), e(x))
        case var .loop(loop):
            loop.body = mapIndices(loop.body, f)
            return .loop(loop)
        case let .block(inner): return .block(mapIndices(inner, f))
        case let .call(function, arguments): return .call(function, arguments.map { mapIndices($0, f) })
        case let .ifElse(c, a, b): return .ifElse(mapIndices(c, f), mapIndices(a, f), mapIndices(b, f))
        case let .pointer(n, buffer, index, writable): return .pointer(n, buffer, f(index), writable: writable)
        case var .invoke(invocation):
            invocation.inputs = invocation.inputs.map { mapIndices($0, f) }
            invocation.outputs = invocation.outputs.map { mapIndices($0, f) }
            invocation.workspace = mapIndices(invocation.workspace, f)
            return .invoke(invocation)
        case var .parallel(p):
            p.body = mapIndices(p.body, f)
            p.after = mapIndices(p.after, f)
            return .parallel(p)
        }
    }

    static func mapIndices(_ expression: Expression, _ f: (Index) -> Index) -> Expression {
        expression.rewritten { node in
            switch node {
            case let .load(buffer, index): return .load(buffer, f(index))
            case let .call(function, arguments): return .call(function, arguments.map { mapIndices($0, f) })
            case let .select(c, a, b): return .select(mapIndices(c, f), mapIndices(a, f), mapIndices(b, f))
            default: return nil
            }
        }
    }

    static func mapIndices(_ argument: Argument, _ f: (Index) -> Index) -> Argument {
        switch argument {
        case let .value(x): return .value(mapIndices(x, f))
        case let .address(buffer, index): return .address(buffer, f(index))
        case .integer, .addressOf: return argument
        }
    }

    static func mapIndices(_ condition: Condition, _ f: (Index) -> Index) -> Condition {
        switch condition {
        case let .compare(op, a, b): return .compare(op, mapIndices(a, f), mapIndices(b, f))
        case let .or(a, b): return .or(mapIndices(a, f), mapIndices(b, f))
        case let .and(a, b): return .and(mapIndices(a, f), mapIndices(b, f))
        case let .not(a): return .not(mapIndices(a, f))
        }
    }

    /// Every element index the statements use.
    static func indices(in statements: [Statement]) -> [Index] {
        var result: [Index] = []
        visit(statements) { item in
            switch item {
            case let .expression(.load(_, index)), let .place(.element(_, index)): result.append(index)
            case let .argument(.address(_, index)): result.append(index)
            case let .statement(.pointer(_, _, index, _)): result.append(index)
            default: break
            }
        }
        return result
    }

    /// A body written with one counter per axis of `extents` (`Counter.axis`), rewritten for one
    /// flat loop over every element (`Counter.flat`), or nil when some index does not walk its
    /// memory contiguously (row-major over the extents) or stand still. Axes of extent 1 never
    /// move and are ignored.
    static func flattened(_ body: [Statement], extents: [Int]) -> [Statement]? {
        let contiguous = rowMajorStrides(extents)
        let axes = extents.indices.filter { extents[$0] != 1 }
        for index in indices(in: body) {
            var moves = false, stands = false
            for axis in axes {
                let stride = index.stride(of: .axis(axis))
                if stride == 0 { stands = true } else if stride == contiguous[axis] { moves = true } else { return nil }
            }
            // Contiguous along every moving axis, or along none.
            if moves && stands { return nil }
        }
        return mapIndices(body) { index in
            let moves = axes.contains { index.stride(of: .axis($0)) != 0 }
            let others = index.terms.filter { if case .axis = $0.counter { return false } else { return true } }
            return Index(index.offset, others + (moves ? [Index.Term(.flat, 1)] : []))
        }
    }
}
