// Terms printed as NumPy expressions that evaluate, with the inputs bound to arrays of their
// shapes, to the arrays the kernels compute.

/// Prints terms as Python with NumPy (imported as `np`).
struct NumPyRenderer {
    /// Python levels: + -, then * / @, then unary minus, then **, then atoms.
    private enum Level: Int, Comparable {
        case sum, product, unary, power, atom
        static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    func render(_ t: Term) -> String { print(t).0 }

    private func wrap(_ t: Term, _ needed: Level) -> String {
        let (text, level) = print(t)
        return level < needed ? "(\(text))" : text
    }

    private func print(_ t: Term) -> (String, Level) {
        switch t.kind {
        case let .symbol(name): return (pythonName(name), .atom)
        case let .number(v): return numberLevel(v)
        case let .filled(v):
            if v == 0 { return ("np.zeros(\(tuple(t.shape)))", .atom) }
            if v == 1 { return ("np.ones(\(tuple(t.shape)))", .atom) }
            return ("np.full(\(tuple(t.shape)), \(number(v)))", .atom)
        case .identity: return ("np.eye(\(t.shape[0]))", .atom)
        case let .literal(xs):
            return ("np.array([\(xs.map(number).joined(separator: ", "))]).reshape(\(tuple(t.shape)))", .atom)
        case let .sum(ts):
            var text = wrap(ts[0], .sum)
            for term in ts.dropFirst() {
                if case let .scaled(c, u) = term.kind, c < 0 {
                    text += " - " + wrap(Algebra.scale(-c, u), .unary)
                } else {
                    text += " + " + wrap(term, .product)
                }
            }
            return (text, .sum)
        case let .scaled(c, u):
            if c == -1 { return ("-" + wrap(u, .unary), .unary) }
            return (number(c) + " * " + wrap(u, .unary), .product)
        case let .product(fs): return (product(fs), .product)
        case let .hadamard(fs): return (fs.map { wrap($0, .unary) }.joined(separator: " * "), .product)
        case let .quotient(a, b): return (wrap(a, .product) + " / " + wrap(b, .unary), .product)
        case let .power(a, e): return (wrap(a, .atom) + " ** " + wrap(e, .unary), .power)
        case let .transpose(u): return (u.rank == 2 ? wrap(u, .atom) + ".T" : wrap(u, .atom), .atom)
        case let .inverse(u): return ("np.linalg.inv(\(render(u)))", .atom)
        case let .permute(u, axes): return ("np.transpose(\(render(u)), \(tuple(Shape(axes))))", .atom)
        case let .call(f, args): return (call(f, args), .atom)
        case let .reshape(u): return ("np.reshape(\(render(u)), \(tuple(t.shape)))", .atom)
        case let .broadcast(u): return ("np.broadcast_to(\(render(u)), \(tuple(t.shape)))", .atom)
        case let .slice(u, s): return (wrap(u, .atom) + "[" + sliceText(s) + "]", .atom)
        case let .pad(u, s):
            // An expression that fills zeros at the slice's positions and returns them.
            return ("(lambda _nabla_z: (_nabla_z.__setitem__(np.s_[\(sliceText(s))], \(render(u))), _nabla_z)[1])(np.zeros(\(tuple(t.shape))))", .atom)
        case let .concat(ts, axis):
            return ("np.concatenate([\(ts.map(render).joined(separator: ", "))], axis=\(axis))", .atom)
        case let .loop(l):
            return ("\(loopFunctionName(l))(\(l.operands.map(render).joined(separator: ", ")))", .atom)
        }
    }

    /// Factors multiplied left to right: `*` for scalars, `np.outer` where a column meets a
    /// row (which `@` on 1-D arrays would contract), `@` otherwise.
    private func product(_ fs: [Term]) -> String {
        var text = wrap(fs[0], .unary)
        var done: [Term] = fs[0].isScalar ? [] : [fs[0]]
        var scalarOnly = fs[0].isScalar
        for f in fs.dropFirst() {
            let right = wrap(f, .unary)
            if f.isScalar || scalarOnly {
                text += " * " + right
            } else {
                let (shape, row) = Algebra.productShape(done)
                let leftIsColumn = shape.rank == 1 && !row
                let rightIsRow = f.rank == 1 && f.row
                if leftIsColumn || rightIsRow {
                    text = "np.outer(\(text), \(render(f)))"
                } else {
                    text += " @ " + right
                }
            }
            if !f.isScalar { done.append(f) }
            scalarOnly = scalarOnly && f.isScalar
        }
        return text
    }

    private func call(_ f: FormulaFunction, _ args: [Term]) -> String {
        let xs = args.map(render)
        let x = xs.first ?? ""
        switch f {
        case let .unary(u):
            switch u {
            case .sigmoid: return "(1 / (1 + np.exp(-(\(x)))))"
            case .relu: return "np.maximum(\(x), 0)"
            case .softplus: return "np.logaddexp(0, \(x))"
            case .step: return "np.heaviside(\(x), 0)"
            case .not: return "((\(x)) == 0) * 1.0"
            default: return "np.\(u.rawValue)(\(x))"
            }
        case let .compare(relation): return "((\(xs[0])) \(relation) (\(xs[1]))) * 1.0"
        case .and: return "(((\(xs[0])) != 0) & ((\(xs[1])) != 0)) * 1.0"
        case .or: return "(((\(xs[0])) != 0) | ((\(xs[1])) != 0)) * 1.0"
        case .maximum: return "np.maximum(\(xs[0]), \(xs[1]))"
        case .minimum: return "np.minimum(\(xs[0]), \(xs[1]))"
        case .select: return "np.where((\(xs[0])) != 0, \(xs[1]), \(xs[2]))"
        case let .sum(axes, all): return all ? "np.sum(\(x))" : "np.sum(\(x), axis=\(tuple(Shape(axes))))"
        case let .extremum(maximum, axes, all):
            let name = maximum ? "np.max" : "np.min"
            return all ? "\(name)(\(x))" : "\(name)(\(x), axis=\(tuple(Shape(axes))))"
        case let .softmax(axes):
            let a = tuple(Shape(axes))
            return "(lambda z: np.exp(z - np.max(z, axis=\(a), keepdims=True)) / np.sum(np.exp(z - np.max(z, axis=\(a), keepdims=True)), axis=\(a), keepdims=True))(\(x))"
        case let .logSoftmax(axes):
            let a = tuple(Shape(axes))
            return "(lambda z: z - np.max(z, axis=\(a), keepdims=True) - np.log(np.sum(np.exp(z - np.max(z, axis=\(a), keepdims=True)), axis=\(a), keepdims=True)))(\(x))"
        case let .logsumexp(axes, all):
            let a = all ? "None" : tuple(Shape(axes))
            return "(lambda z: np.max(z, axis=\(a)) + np.log(np.sum(np.exp(z - np.max(z, axis=\(a), keepdims=True)), axis=\(a))))(\(x))"
        case .det: return "np.linalg.det(\(x))"
        case .logAbsDet: return "np.linalg.slogdet(\(x))[1]"
        case .adjugate: return "(lambda A: np.linalg.det(A) * np.linalg.inv(A))(\(x))"
        case .trace: return "np.trace(\(x))"
        case .cholesky: return "np.linalg.cholesky(\(x))"
        case .diagonalMatrix, .diagonal: return "np.diag(\(x))"
        case let .solve(transposed): return "np.linalg.solve(\(transposed ? "(\(xs[0])).T" : xs[0]), \(xs[1]))"
        case let .triangularSolve(_, transpose): return "np.linalg.solve(\(transpose ? "(\(xs[0])).T" : xs[0]), \(xs[1]))"
        case let .triangle(lower, diagonal):
            let strict = lower ? "np.tril(\(x), -1)" : "np.triu(\(x), 1)"
            if diagonal == 0 { return strict }
            return "(\(strict) + \(number(diagonal)) * np.diag(np.diag(\(x))))"
        case let .oneHot(count): return "(np.arange(\(count)) == (\(x))) * 1.0"
        }
    }

    // MARK: Names and numbers

    /// The Python function that runs a loop (`FormulaLines` writes it).
    func loopFunctionName(_ l: LoopTerm) -> String { "_nabla_loop\(l.index)" }

    /// A Python identifier for a name: Python's keywords and `np` get a trailing underscore.
    func pythonName(_ name: String) -> String {
        pythonReserved.contains(name) ? name + "_" : name
    }

    func number(_ v: Double) -> String {
        if v.isNaN { return "np.nan" }
        if v.isInfinite { return v < 0 ? "-np.inf" : "np.inf" }
        return v.rounded() == v && Swift.abs(v) < 1e15 ? String(Int(v)) + ".0" : v.description
    }

    private func numberLevel(_ v: Double) -> (String, Level) {
        let text = number(v)
        return (text, text.hasPrefix("-") ? .unary : .atom)
    }

    func tuple(_ shape: Shape) -> String {
        shape.rank == 1 ? "(\(shape[0]),)" : "(" + shape.dims.map(String.init).joined(separator: ", ") + ")"
    }

    private func sliceText(_ s: Slice) -> String {
        (0..<s.starts.count).map { "\(s.starts[$0]):\(s.ends[$0]):\(s.steps[$0])" }.joined(separator: ", ")
    }
}

/// Names a Python program cannot bind: its keywords, and the module name `np`.
let pythonReserved: Set<String> = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "np", "match", "case", "type",
]
