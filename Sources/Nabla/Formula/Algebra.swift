// The constructors of terms, which simplify as they build: numbers are folded, scalar
// factors collected in front, identity factors and double transposes removed, transposes
// pushed through sums, products and inverses ((AB)ᵀ = BᵀAᵀ, (X⁻¹)ᵀ = X⁻ᵀ), like terms gathered
// (2A + A = 3A), common factors taken out of sums (Mx + Mᵀx = (M + Mᵀ)x), broadcast products
// written as outer products and diagonal matrices (a bᵀ, A diag(v)), and sums of the backward
// pass written as products with a vector of ones (X𝟙, 𝟙ᵀX) or as dot products (aᵀb).
//
// Every rule is an identity of real arithmetic, so a formula equals what the kernel computes up
// to rounding; none is applied to the kernels themselves.

enum Algebra {
    // MARK: Leaves

    static func symbol(_ name: String, _ shape: Shape, row: Bool = false) -> Term { Term(.symbol(name), shape, row: row) }
    static func number(_ value: Double) -> Term { Term(.number(value), []) }
    /// A tensor of equal elements (a number for a scalar).
    static func filled(_ value: Double, _ shape: Shape, row: Bool = false) -> Term {
        shape.rank == 0 ? number(value) : Term(.filled(value), shape, row: row)
    }
    static func zero(_ shape: Shape) -> Term { filled(0, shape) }
    static func ones(_ n: Int, row: Bool = false) -> Term { filled(1, [n], row: row) }
    static func identity(_ n: Int) -> Term { Term(.identity, [n, n]) }

    /// A constant tensor: a number, a filled tensor, the identity, or its elements.
    static func constant(_ value: TensorData) -> Term {
        let xs = value.scalars
        if value.shape.rank == 0 { return number(xs[0]) }
        if let first = xs.first, xs.allSatisfy({ $0 == first || ($0.isNaN && first.isNaN) }) { return filled(first, value.shape) }
        if value.shape.rank == 2, value.shape[0] == value.shape[1] {
            let n = value.shape[0]
            if (0..<n * n).allSatisfy({ xs[$0] == ($0 % (n + 1) == 0 ? 1 : 0) }) { return identity(n) }
        }
        return Term(.literal(xs), value.shape)
    }

    // MARK: Orientation and transposes

    /// A vector written as a row (`row` true) or a column; other terms unchanged.
    static func oriented(_ t: Term, row: Bool) -> Term {
        t.rank == 1 && t.row != row ? transposed(t) : t
    }

    /// The transpose, pushed inward as far as it goes. Scalars are their own transposes; a
    /// vector changes between column and row.
    static func transposed(_ t: Term) -> Term {
        switch t.rank {
        case 0: return t
        case 1: return flipped(t)
        case 2: return transposedMatrix(t)
        default: return Term(.permute(t, Array((0..<t.rank).reversed())), Shape(t.shape.dims.reversed()))
        }
    }

    /// A vector written the other way (column to row or back).
    private static func flipped(_ t: Term) -> Term {
        let row = !t.row
        switch t.kind {
        case let .sum(ts): return Term(.sum(ts.map(transposed)), t.shape, row: row)
        case let .scaled(c, u): return Term(.scaled(c, transposed(u)), t.shape, row: row)
        case let .hadamard(ts): return Term(.hadamard(ts.map(transposed)), t.shape, row: row)
        case let .quotient(a, b): return Term(.quotient(transposed(a), transposed(b)), t.shape, row: row)
        case let .power(a, b): return Term(.power(transposed(a), transposed(b)), t.shape, row: row)
        case let .call(f, args) where f.isElementwise: return Term(.call(f, args.map(transposed)), t.shape, row: row)
        case let .product(fs): return product(fs.reversed().map(transposed))
        default: return Term(t.kind, t.shape, row: row)
        }
    }

    private static func transposedMatrix(_ t: Term) -> Term {
        let shape = Shape([t.shape[1], t.shape[0]])
        switch t.kind {
        case let .transpose(u): return u
        case .identity: return t
        case let .filled(v): return filled(v, shape)
        case .call(.diagonalMatrix, _): return t
        case let .sum(ts): return Term(.sum(ts.map(transposed)), shape)
        case let .scaled(c, u): return Term(.scaled(c, transposed(u)), shape)
        case let .hadamard(ts): return Term(.hadamard(ts.map(transposed)), shape)
        case let .quotient(a, b): return Term(.quotient(transposed(a), transposed(b)), shape)
        case let .power(a, b): return Term(.power(transposed(a), transposed(b)), shape)
        case let .call(f, args) where f.isElementwise: return Term(.call(f, args.map(transposed)), shape)
        case let .product(fs): return product(fs.reversed().map(transposed))
        case let .reshape(u) where u.rank == 1 && (shape[0] == 1 || shape[1] == 1):
            // A column [n, 1] holding u becomes a row [1, n] holding uᵀ.
            return Term(.reshape(transposed(u)), shape)
        case let .broadcast(u) where u.rank == 0: return Term(.broadcast(u), shape)
        case let .broadcast(u) where u.rank == 1:
            // Rows equal to u become columns equal to u.
            return Term(.broadcast(reshape(oriented(u, row: false), [u.shape[0], 1])), shape)
        case let .broadcast(u) where u.rank == 2 && u.shape[1] == 1:
            if case let .reshape(v) = u.kind, v.rank == 1 { return Term(.broadcast(oriented(v, row: true)), shape) }
            return Term(.transpose(t), shape)
        default: return Term(.transpose(t), shape)
        }
    }

    // MARK: Sums

    /// The sum of terms of one shape (scalars may be mixed in only when the shape is scalar).
    static func add(_ terms: [Term], _ shape: Shape) -> Term {
        let row = terms.first(where: { $0.rank == 1 })?.row ?? false
        var flat: [Term] = []
        var constant = 0.0
        for term in terms {
            let term = oriented(term, row: row)
            if case let .sum(inner) = term.kind { flat += inner; continue }
            if let v = term.uniformValue {
                constant += v
                continue
            }
            flat.append(term)
        }
        // Like terms: equal up to a numeric coefficient.
        var bases: [Term] = []
        var coefficients: [Double] = []
        var index: [Term: Int] = [:]
        for term in flat {
            let (c, base) = coefficient(of: term)
            if let i = index[base] { coefficients[i] += c } else {
                index[base] = bases.count
                bases.append(base)
                coefficients.append(c)
            }
        }
        var gathered = zip(coefficients, bases).filter { $0.0 != 0 }.map { scale($0.0, $0.1) }
        gathered = factoredOut(gathered, shape)
        if let pieces = joinedPieces(gathered, shape) { gathered = [pieces] }
        if constant != 0 { gathered.append(filled(constant, shape, row: row)) }
        if gathered.isEmpty { return zero(shape) }
        if gathered.count == 1 { return gathered[0] }
        if let m = commonCoefficient(gathered) {
            return scale(m, Term(.sum(gathered.map { scale(1 / m, $0) }), shape, row: row))
        }
        return Term(.sum(gathered), shape, row: row)
    }

    /// A sum of vectors each placed in zeros at its own range (the gradient of a vector read in
    /// slices) as the vector of its pieces, [a, b, c]; nil when the ranges overlap or are strided.
    private static func joinedPieces(_ terms: [Term], _ shape: Shape) -> Term? {
        guard shape.rank == 1, terms.count > 1 else { return nil }
        var pieces: [(start: Int, end: Int, term: Term)] = []
        for t in terms {
            switch t.kind {
            case let .pad(u, slice) where slice.steps == [1]:
                pieces.append((slice.starts[0], slice.ends[0], oriented(u, row: false)))
            case let .concat(parts, 0):
                var offset = 0
                for part in parts {
                    if !part.isZero { pieces.append((offset, offset + part.shape[0], part)) }
                    offset += part.shape[0]
                }
            default: return nil
            }
        }
        pieces.sort { $0.start < $1.start }
        var parts: [Term] = []
        var next = 0
        for piece in pieces {
            guard piece.start >= next else { return nil }
            if piece.start > next { parts.append(zero([piece.start - next])) }
            parts.append(piece.term)
            next = piece.end
        }
        if next < shape[0] { parts.append(zero([shape[0] - next])) }
        return Term(.concat(parts, axis: 0), shape, row: terms[0].row)
    }

    /// `a - b`.
    static func subtract(_ a: Term, _ b: Term, _ shape: Shape) -> Term { add([a, negate(b)], shape) }

    /// A numeric coefficient and the rest: (2, A) for 2A, (1, A) for A.
    private static func coefficient(of t: Term) -> (Double, Term) {
        if case let .scaled(c, u) = t.kind { return (c, u) }
        return (1, t)
    }

    /// Terms sharing a last (or first) matrix factor gathered: Mx + Nx = (M + N)x; then terms
    /// sharing a scalar factor: s a + s b = s(a + b).
    private static func factoredOut(_ terms: [Term], _ shape: Shape) -> [Term] {
        guard terms.count > 1 else { return terms }
        var result = gatherFactors(terms, last: true)
        if result.count > 1 { result = gatherFactors(result, last: false) }
        if result.count > 1 { result = gatherScalarFactor(result, shape) }
        return result
    }

    /// The factors of a term's product (the term itself when it is not one), and its coefficient.
    private static func factors(of t: Term) -> (Double, [Term]) {
        let (c, base) = coefficient(of: t)
        if case let .product(fs) = base.kind { return (c, fs) }
        return (c, [base])
    }

    /// The scalar factor most terms share (at least two), taken out of them.
    private static func gatherScalarFactor(_ terms: [Term], _ shape: Shape) -> [Term] {
        var counts: [Term: Int] = [:]
        var order: [Term] = []
        for term in terms {
            for f in Set(factors(of: term).1) where f.isScalar && f.uniformValue == nil {
                if counts[f] == nil { order.append(f) }
                counts[f, default: 0] += 1
            }
        }
        guard let best = order.max(by: { counts[$0]! < counts[$1]! }), counts[best]! > 1 else { return terms }
        var rests: [Term] = []
        var first: Int?
        var kept: [Int: Term] = [:]
        for (i, term) in terms.enumerated() {
            var (c, fs) = factors(of: term)
            guard let k = fs.firstIndex(of: best) else { kept[i] = term; continue }
            fs.remove(at: k)
            rests.append(scale(c, fs.isEmpty ? number(1) : product(fs)))
            if first == nil { first = i }
        }
        let combined = product([best, add(rests.map { $0.shape == shape ? $0 : broadcast($0, shape) }, shape)])
        return terms.indices.compactMap { $0 == first ? combined : kept[$0] }
    }

    /// A sum whose terms all have coefficients ±c (c ≠ 1) as c times the sum of the rest:
    /// 2a - 2b = 2(a - b).
    private static func commonCoefficient(_ terms: [Term]) -> Double? {
        guard terms.count > 1 else { return nil }
        let cs = terms.map { $0.uniformValue ?? coefficient(of: $0).0 }
        guard let m = cs.first.map(Swift.abs), m != 1, m != 0, m.isFinite, cs.allSatisfy({ Swift.abs($0) == m }) else { return nil }
        return cs.allSatisfy { $0 < 0 } ? -m : m
    }

    private static func gatherFactors(_ terms: [Term], last: Bool) -> [Term] {
        var groups: [Term: [Int]] = [:]
        var order: [Term] = []
        for (i, term) in terms.enumerated() {
            guard let (factor, _) = split(term, last: last) else { continue }
            if groups[factor] == nil { order.append(factor) }
            groups[factor, default: []].append(i)
        }
        // Each gathered group takes the place of its first member.
        var replacement: [Int: Term] = [:]
        var used = Set<Int>()
        for factor in order {
            guard let members = groups[factor], members.count > 1 else { continue }
            let rests = members.map { split(terms[$0], last: last)!.1 }
            guard let restShape = rests.first?.shape, rests.allSatisfy({ $0.shape == restShape }) else { continue }
            let combined = add(rests, restShape)
            replacement[members[0]] = last ? product([combined, factor]) : product([factor, combined])
            used.formUnion(members)
        }
        guard !used.isEmpty else { return terms }
        return terms.indices.compactMap { replacement[$0] ?? (used.contains($0) ? nil : terms[$0]) }
    }

    /// A product term as its last (or first) non-scalar factor and the rest (with the
    /// coefficient), when it has at least two non-scalar factors.
    private static func split(_ term: Term, last: Bool) -> (Term, Term)? {
        let (c, base) = coefficient(of: term)
        guard case let .product(fs) = base.kind else { return nil }
        let scalars = fs.filter(\.isScalar), matrices = fs.filter { !$0.isScalar }
        guard matrices.count >= 2 else { return nil }
        let factor = last ? matrices.last! : matrices.first!
        let others = scalars + (last ? Array(matrices.dropLast()) : Array(matrices.dropFirst()))
        return (factor, scale(c, product(others)))
    }

    // MARK: Multiples and products

    /// c t.
    static func scale(_ c: Double, _ t: Term) -> Term {
        if c == 1 { return t }
        switch t.kind {
        case let .number(v): return number(c * v)
        case let .filled(v): return Term(.filled(c * v), t.shape, row: t.row)
        case let .scaled(d, u): return scale(c * d, u)
        default: return Term(.scaled(c, t), t.shape, row: t.row)
        }
    }

    static func negate(_ t: Term) -> Term { scale(-1, t) }

    /// The matrix product of factors (vectors oriented to fit, scalars anywhere), simplified.
    static func product(_ factors: [Term]) -> Term {
        var coefficient = 1.0
        var scalars: [Term] = []
        var matrices: [Term] = []
        var pending = Array(factors.reversed())
        while let f = pending.popLast() {
            switch f.kind {
            // A scalar product stays one factor: splicing it into a chain of matrices would
            // change what multiplies what (xᵀw x is (xᵀw)x, not xᵀ(wx)).
            case let .product(inner) where !f.isScalar || matrices.isEmpty && pending.allSatisfy(\.isScalar):
                pending += inner.reversed()
            case let .scaled(c, u):
                coefficient *= c
                pending.append(u)
            case let .number(v): coefficient *= v
            default:
                if f.isScalar { scalars.append(f) } else { matrices.append(f) }
            }
        }
        // Identity factors go, unless nothing else is left to give the product its shape.
        if matrices.contains(where: { !$0.isIdentity }) { matrices.removeAll(where: \.isIdentity) }
        else if matrices.count > 1 { matrices = [matrices[0]] }
        let (shape, row) = productShape(matrices)
        if coefficient == 0 || matrices.contains(where: \.isZero) { return zero(shape) }
        let fs = scalars + matrices
        let base: Term
        switch fs.count {
        case 0: base = number(1)
        case 1: base = fs[0]
        default: base = Term(.product(fs), shape, row: row)
        }
        return scale(coefficient, base)
    }

    /// The shape of a chain of matrix factors, and whether a vector result is a row.
    static func productShape(_ matrices: [Term]) -> (Shape, Bool) {
        guard let first = matrices.first, let last = matrices.last else { return ([], false) }
        if matrices.count == 1 { return (first.shape, first.row) }
        var dims: [Int] = []
        // A row vector first contributes no rows; a column vector last contributes no columns.
        if !(first.rank == 1 && first.row) { dims.append(first.shape[0]) }
        if !(last.rank == 1 && !last.row) { dims.append(last.shape.dims.last!) }
        let row = dims.count == 1 && first.rank == 1 && first.row
        return (Shape(dims), row)
    }

    /// `a @ b` with Nabla's rules for vectors and matrices.
    static func matmul(_ a: Term, _ b: Term) -> Term {
        switch (a.rank, b.rank) {
        case (1, 1): return product([oriented(a, row: true), oriented(b, row: false)])
        case (1, _): return product([oriented(a, row: true), b])
        case (_, 1): return product([a, oriented(b, row: false)])
        default: return product([a, b])
        }
    }

    // MARK: Elementwise

    /// The elementwise product, broadcasting as NumPy does.
    static func hadamard(_ a: Term, _ b: Term, _ shape: Shape) -> Term {
        if a.isScalar || b.isScalar {
            let (s, t) = a.isScalar ? (a, b) : (b, a)
            return product([s, broadcast(t, shape)])
        }
        if let v = a.uniformValue { return scale(v, broadcast(b, shape)) }
        if let v = b.uniformValue { return scale(v, broadcast(a, shape)) }
        if case let .scaled(c, u) = a.kind { return scale(c, hadamard(u, b, shape)) }
        if case let .scaled(c, u) = b.kind { return scale(c, hadamard(a, u, shape)) }
        if let special = broadcastProduct(a, b, shape) ?? broadcastProduct(b, a, shape) { return special }
        let (x, y) = (broadcast(a, shape), broadcast(b, shape))
        if x == y { return power(x, number(2), shape) }
        var factors: [Term] = []
        for t in [x, y] {
            if case let .hadamard(inner) = t.kind { factors += inner } else { factors.append(t) }
        }
        return Term(.hadamard(factors.map { oriented($0, row: x.row) }), shape, row: x.row)
    }

    /// Products that broadcasting makes matrix products: a column times a row (an outer
    /// product a bᵀ), a matrix times a vector broadcast along its rows (A diag(v)) or columns
    /// (diag(u) A).
    private static func broadcastProduct(_ a: Term, _ b: Term, _ shape: Shape) -> Term? {
        guard shape.rank == 2 else { return nil }
        if let u = columnFactor(a, shape), let v = rowFactor(b, shape) { return product([u, v]) }
        guard a.shape == shape, !isBroadcast(a) else { return nil }
        if let v = rowFactor(b, shape) { return product([a, diagonalMatrix(v)]) }
        if let u = columnFactor(b, shape) { return product([diagonalMatrix(u), a]) }
        return nil
    }

    private static func isBroadcast(_ t: Term) -> Bool {
        if case .broadcast = t.kind { return true }
        return false
    }

    /// The column u of a term whose every column is u: a [m, 1] matrix holding u, or one
    /// broadcast along the columns of `shape`.
    private static func columnFactor(_ t: Term, _ shape: Shape) -> Term? {
        if case let .broadcast(inner) = t.kind, t.shape == shape { return columnFactor(inner, shape) }
        guard t.rank == 2, t.shape == [shape[0], 1] else { return nil }
        if case let .reshape(u) = t.kind, u.rank == 1 { return oriented(u, row: false) }
        return nil
    }

    /// The row vᵀ of a term whose every row is vᵀ: a vector (broadcast along the rows), a
    /// [1, n] matrix holding v, or one of these broadcast to `shape`.
    private static func rowFactor(_ t: Term, _ shape: Shape) -> Term? {
        if case let .broadcast(inner) = t.kind, t.shape == shape { return rowFactor(inner, shape) }
        if t.rank == 1, t.shape == [shape[1]] { return oriented(t, row: true) }
        guard t.rank == 2, t.shape == [1, shape[1]] else { return nil }
        if case let .reshape(u) = t.kind, u.rank == 1 { return oriented(u, row: true) }
        return nil
    }

    /// diag(v) for a vector; c I for a filled vector.
    static func diagonalMatrix(_ v: Term) -> Term {
        let n = v.shape[0]
        if let c = v.uniformValue { return scale(c, identity(n)) }
        return Term(.call(.diagonalMatrix, [oriented(v, row: false)]), [n, n])
    }

    /// Elementwise division, broadcasting.
    static func quotient(_ a: Term, _ b: Term, _ shape: Shape) -> Term {
        if let v = b.uniformValue, v != 0, b.isScalar || b.shape == shape { return scale(1 / v, broadcast(a, shape)) }
        if b.isScalar, !a.isScalar { return product([Term(.quotient(number(1), b), []), a]) }
        let (x, y) = elementwiseOperands([a, b], shape)
        return Term(.quotient(x[0], x[1]), shape, row: y)
    }

    /// Elementwise power.
    static func power(_ a: Term, _ e: Term, _ shape: Shape) -> Term {
        if let p = e.uniformValue {
            if p == 1 { return broadcast(a, shape) }
            if p == 0 { return filled(1, shape) }
            if case let .power(base, inner) = a.kind, let q = inner.uniformValue, q.rounded() == q, p.rounded() == p {
                return power(base, number(p * q), shape)
            }
        }
        let base = broadcast(a, shape)
        let exponent = e.isScalar ? e : broadcast(oriented(e, row: base.row), shape)
        return Term(.power(base, exponent), shape, row: base.row)
    }

    /// An elementwise function of operands broadcast to `shape` (scalars stay scalars).
    static func elementwise(_ f: FormulaFunction, _ args: [Term], _ shape: Shape) -> Term {
        if let known = logicalIdentity(f, args, shape) { return known }
        let (xs, row) = elementwiseOperands(args, shape)
        return Term(.call(f, xs), shape, row: row)
    }

    /// Logic whose value real arithmetic decides: x = x is true, "or" with true is true, a
    /// selection on a constant condition is one of its branches, and the masks reverse mode
    /// puts around cotangents (where(g ≠ 0 or v = v, v, 0), which only keep NaN out of
    /// branches not taken) are their values.
    private static func logicalIdentity(_ f: FormulaFunction, _ args: [Term], _ shape: Shape) -> Term? {
        switch f {
        case .unary(.not): return args[0].uniformValue.map { filled($0 == 0 ? 1 : 0, shape) }
        case .compare("=="), .compare("<="), .compare(">="): return args[0] == args[1] ? filled(1, shape) : nil
        case .compare("!="), .compare("<"), .compare(">"): return args[0] == args[1] ? filled(0, shape) : nil
        case .or:
            if args.contains(where: { ($0.uniformValue ?? 0) != 0 }) { return filled(1, shape) }
            if let zero = args.firstIndex(where: { $0.uniformValue == 0 }) { return broadcast(args[1 - zero], shape) }
            return nil
        case .and:
            if args.contains(where: { $0.uniformValue == 0 }) { return filled(0, shape) }
            return nil
        case .select:
            if let c = args[0].uniformValue { return broadcast(c != 0 ? args[1] : args[2], shape) }
            if args[1] == args[2] { return broadcast(args[1], shape) }
            return nil
        default: return nil
        }
    }

    /// Operands of an elementwise operation: each a scalar or broadcast to the result's shape,
    /// vectors all oriented alike.
    private static func elementwiseOperands(_ args: [Term], _ shape: Shape) -> ([Term], Bool) {
        let row = args.first(where: { $0.rank == 1 && $0.shape == shape })?.row ?? false
        let xs = args.map { $0.isScalar ? $0 : oriented(broadcast($0, shape), row: row) }
        return (xs, row)
    }

    // MARK: Shapes

    /// The operand in another shape with the same elements.
    static func reshape(_ t: Term, _ shape: Shape) -> Term {
        if t.shape == shape { return t }
        if let v = t.uniformValue { return filled(v, shape) }
        switch t.kind {
        case let .reshape(u): return reshape(u, shape)
        case let .scaled(c, u): return scale(c, reshape(u, shape))
        case let .pad(u, slice):
            // A vector placed on the diagonal of a flattened square matrix is diag(v).
            if shape.rank == 2, shape[0] == shape[1], let v = diagonalPlacement(u, slice, shape[0]) { return diagonalMatrix(v) }
        default: break
        }
        let row = shape.rank == 1 ? t.row : false
        return Term(.reshape(t), shape, row: row)
    }

    /// The vector placed at every (n+1)-th position of n² zeros, if that is what pad(u, slice) is.
    private static func diagonalPlacement(_ u: Term, _ slice: Slice, _ n: Int) -> Term? {
        guard u.rank == 1, u.shape[0] == n, slice.starts == [0], slice.steps == [n + 1] || n == 1 else { return nil }
        return u
    }

    /// The operand repeated to `shape` (NumPy's broadcasting).
    static func broadcast(_ t: Term, _ shape: Shape) -> Term {
        if t.shape == shape { return t }
        if let v = t.uniformValue { return filled(v, shape) }
        if case let .scaled(c, u) = t.kind { return scale(c, broadcast(u, shape)) }
        // A vector broadcast to a one-row matrix is a reshape.
        if t.rank == 1, shape.dims == [1, t.shape[0]] { return reshape(t, shape) }
        return Term(.broadcast(t.rank == 1 ? oriented(t, row: true) : t), shape)
    }

    /// The sum over `axes` (sorted) of a term: products with 𝟙 for a matrix's rows or
    /// columns, a dot product for the sum of an elementwise product of vectors.
    static func sum(_ t: Term, axes: [Int], _ shape: Shape) -> Term {
        if axes.isEmpty { return t }
        let all = axes.count == t.rank
        let count = axes.reduce(1) { $0 * t.shape[$1] }
        if let v = t.uniformValue { return filled(v * Double(count), shape) }
        switch t.kind {
        case let .scaled(c, u): return scale(c, sum(u, axes: axes, shape))
        case let .broadcast(u) where u.isScalar && all: return product([number(Double(count)), u])
        case let .sum(ts) where ts.count <= 4: return add(ts.map { sum($0, axes: axes, shape) }, shape)
        case let .hadamard(fs) where fs.count == 2 && t.rank == 1:
            return product([oriented(fs[0], row: true), oriented(fs[1], row: false)])
        case let .power(u, e) where e.uniformValue == 2 && t.rank == 1:
            return product([oriented(u, row: true), oriented(u, row: false)])
        default: break
        }
        if t.rank == 2, !all {
            return axes == [1] ? product([t, ones(t.shape[1])]) : product([ones(t.shape[0], row: true), t])
        }
        return call(.sum(axes: axes, all: all), [t], shape)
    }

    /// A general function call.
    static func call(_ f: FormulaFunction, _ args: [Term], _ shape: Shape) -> Term {
        switch (f, args.first?.kind) {
        case let (.trace, .some(.scaled(c, u))): return scale(c, call(.trace, [u], shape))
        case (.trace, .some(.identity)): return number(Double(args[0].shape[0]))
        case let (.sum(_, true), .some(.call(.diagonal, inner))): return call(.trace, inner, shape)
        default: return Term(.call(f, args), shape)
        }
    }
}
