// The matrix of a linear map from its formula: a Jacobian J from the formula of J v (the
// directional derivative along a symbolic v), as matrix calculus reads a differential
// dy = J dx. Products, sums, multiples, elementwise products (diag(a) J) and sums of elements
// (𝟙ᵀ J) are read; anything else has no matrix formula here and gives nil.

struct LinearMap {
    /// The direction v, a vector of `n` elements.
    let direction: String
    let n: Int
    /// The matrices of named terms linear in v, by name (as symbols of their own definitions).
    private(set) var known: [String: Term] = [:]
    /// Every symbol that depends on the direction.
    private(set) var dependent: Set<String>

    init(direction: String, n: Int) {
        self.direction = direction
        self.n = n
        dependent = [direction]
    }

    /// Records that the named term `name` has the matrix `j` (a symbol).
    mutating func learn(_ name: String, _ j: Term) {
        known[name] = j
        dependent.insert(name)
    }

    /// J with `term` = J v: for a vector term an [m, n] matrix, for a scalar term a row vector
    /// [n]. Nil when the formula is not read.
    func matrix(of term: Term) -> Term? { matrix(of: term, direction: direction, n: n) }

    private func matrix(of term: Term, direction: String, n: Int) -> Term? {
        guard term.rank <= 1 else { return nil }
        if !term.mentionsAny(dependent) {
            return term.isScalar ? Algebra.zero([n]) : Algebra.zero([term.shape[0], n])
        }
        if term.rank == 1, term.row { return matrix(of: Algebra.oriented(term, row: false), direction: direction, n: n) }
        switch term.kind {
        case let .symbol(name):
            if let j = known[name] { return j }
            return name == direction && term.shape == [n] ? Algebra.identity(n) : nil
        case let .sum(ts):
            var parts: [Term] = []
            for t in ts {
                guard let j = matrix(of: t, direction: direction, n: n) else { return nil }
                parts.append(j)
            }
            return Algebra.add(parts, parts[0].shape)
        case let .scaled(c, u):
            return matrix(of: u, direction: direction, n: n).map { Algebra.scale(c, $0) }
        case let .product(fs):
            return product(fs, term: term, direction: direction, n: n)
        case let .hadamard(fs):
            let (inside, outside) = partition(fs, direction)
            guard !outside.isEmpty else { return nil }
            guard inside.count == 1, let j = matrix(of: inside[0], direction: direction, n: n) else { return nil }
            let a = outside.count == 1 ? outside[0] : Term(.hadamard(outside), term.shape)
            return Algebra.product([Algebra.diagonalMatrix(a), j])
        case let .quotient(a, b) where !b.mentionsAny(dependent):
            guard let j = matrix(of: a, direction: direction, n: n) else { return nil }
            if b.isScalar { return Algebra.product([Term(.quotient(Algebra.number(1), b), []), j]) }
            return Algebra.product([Algebra.diagonalMatrix(Algebra.quotient(Algebra.filled(1, b.shape), b, b.shape)), j])
        case let .broadcast(u) where u.isScalar:
            guard let j = matrix(of: u, direction: direction, n: n) else { return nil }
            return Algebra.product([Algebra.ones(term.shape[0]), j])
        case let .call(.sum(_, true), args) where args[0].rank == 1:
            guard let j = matrix(of: args[0], direction: direction, n: n) else { return nil }
            return Algebra.product([Algebra.ones(args[0].shape[0], row: true), j])
        case let .reshape(u) where u.rank <= 1 && u.shape.count == term.shape.count:
            return matrix(of: u, direction: direction, n: n)
        default:
            return nil
        }
    }

    private func partition(_ ts: [Term], _ direction: String) -> (inside: [Term], outside: [Term]) {
        let d = dependent
        return (ts.filter { $0.mentionsAny(d) }, ts.filter { !$0.mentionsAny(d) })
    }

    /// A product with one factor holding the direction: L f R with f a column (R empty or
    /// scalars), a row (t = Rᵀ f for a scalar t), a scalar (t = P s: the outer product P Jₛ)
    /// or diag(u) before a column w (diag(u) w = diag(w) u).
    private func product(_ fs: [Term], term: Term, direction: String, n: Int) -> Term? {
        let d = dependent
        let holders = fs.indices.filter { fs[$0].mentionsAny(d) }
        guard holders.count == 1, let k = holders.first else { return nil }
        let f = fs[k]
        var others = fs
        others.remove(at: k)
        if f.isScalar {
            guard let js = matrix(of: f, direction: direction, n: n) else { return nil }
            let p = Algebra.product(others)
            return Algebra.product([p.rank == 1 ? Algebra.oriented(p, row: false) : p, Algebra.oriented(js, row: true)])
        }
        let left = Array(fs[..<k]), right = Array(fs[(k + 1)...])
        let rightScalars = right.allSatisfy(\.isScalar)
        if f.rank == 1, !f.row, rightScalars {
            guard let j = matrix(of: f, direction: direction, n: n) else { return nil }
            return Algebra.product(left + right + [j])
        }
        if f.rank == 1, f.row, term.isScalar, left.allSatisfy(\.isScalar) {
            guard let j = matrix(of: Algebra.oriented(f, row: false), direction: direction, n: n) else { return nil }
            return Algebra.product(left + [Algebra.transposed(Algebra.product(right)), j])
        }
        if case let .call(.diagonalMatrix, args) = f.kind, right.count == 1, right[0].rank == 1, !right[0].row {
            guard let j = matrix(of: args[0], direction: direction, n: n) else { return nil }
            return Algebra.product(left + [Algebra.diagonalMatrix(right[0]), j])
        }
        return nil
    }
}

extension LinearMap {
    /// The term with the symbols of `values` replaced by their values (of the symbols'
    /// shapes), simplified again; nil for a loop that reads one of them.
    static func substituting(_ values: [String: Term], in t: Term) -> Term? {
        substituting(values, Set(values.keys), in: t)
    }

    private static func substituting(_ values: [String: Term], _ names: Set<String>, in t: Term) -> Term? {
        guard t.mentionsAny(names) else { return t }
        func sub(_ u: Term) -> Term? { substituting(values, names, in: u) }
        func subs(_ us: [Term]) -> [Term]? {
            var out: [Term] = []
            for u in us {
                guard let s = sub(u) else { return nil }
                out.append(s)
            }
            return out
        }
        switch t.kind {
        case let .symbol(name): return values[name].map { Algebra.oriented($0, row: t.row) }
        case .number, .filled, .identity, .literal: return t
        case let .sum(ts): return subs(ts).map { Algebra.add($0, t.shape) }
        case let .scaled(c, u): return sub(u).map { Algebra.scale(c, $0) }
        case let .product(fs): return subs(fs).map(Algebra.product)
        case let .hadamard(fs):
            guard let xs = subs(fs) else { return nil }
            return xs.dropFirst().reduce(xs[0]) { Algebra.hadamard($0, $1, t.shape) }
        case let .quotient(a, b):
            guard let x = sub(a), let y = sub(b) else { return nil }
            return Algebra.quotient(x, y, t.shape)
        case let .power(a, b):
            guard let x = sub(a), let y = sub(b) else { return nil }
            return Algebra.power(x, y, t.shape)
        case let .transpose(u): return sub(u).map(Algebra.transposed)
        case let .inverse(u): return sub(u).map { Term(.inverse($0), t.shape) }
        case let .permute(u, axes): return sub(u).map { Term(.permute($0, axes), t.shape) }
        case let .call(.sum(axes, _), args):
            return sub(args[0]).map { Algebra.sum($0, axes: axes, t.shape) }
        case let .call(f, args):
            guard let xs = subs(args) else { return nil }
            return f.isElementwise ? Algebra.elementwise(f, xs, t.shape) : Algebra.call(f, xs, t.shape)
        case let .reshape(u): return sub(u).map { Algebra.reshape($0, t.shape) }
        case let .broadcast(u): return sub(u).map { Algebra.broadcast($0, t.shape) }
        case let .slice(u, s): return sub(u).map { Term(.slice($0, s), t.shape, row: t.row) }
        case let .pad(u, s): return sub(u).map { Term(.pad($0, s), t.shape, row: t.row) }
        case let .concat(ts, axis): return subs(ts).map { Term(.concat($0, axis: axis), t.shape) }
        case .loop: return nil
        }
    }
}
