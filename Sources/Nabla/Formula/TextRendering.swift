// Terms printed in matrix notation, as Unicode text or as LaTeX.

/// How tightly a printed term binds, to decide where parentheses go.
enum Binding: Int, Comparable {
    case sum, product, factor, postfix, atom
    static func < (a: Binding, b: Binding) -> Bool { a.rawValue < b.rawValue }
}

/// Prints terms as readable Unicode (`latex` false) or as LaTeX.
struct NotationRenderer {
    let latex: Bool

    func render(_ t: Term) -> String { print(t).text }

    private func wrap(_ t: Term, _ needed: Binding) -> String {
        let (text, level) = print(t)
        return level < needed ? (latex ? "\\left(\(text)\\right)" : "(\(text))") : text
    }

    private var transposeMark: String { latex ? "^{\\top}" : "ᵀ" }
    private var ones: String { latex ? "\\mathbf{1}" : "𝟙" }

    private func print(_ t: Term) -> (text: String, level: Binding) {
        if t.rank == 1, t.row, needsOuterTranspose(t) {
            return (wrap(Algebra.oriented(t, row: false), .atom) + transposeMark, .postfix)
        }
        switch t.kind {
        case let .symbol(name):
            return (symbolName(name) + (t.row ? transposeMark : ""), t.row ? .postfix : .atom)
        case let .number(v):
            return (number(v), v < 0 ? .sum : .atom)
        case let .filled(v):
            let base = v == 0 ? (latex ? "\\mathbf{0}" : "0") : ones + (t.row ? transposeMark : "")
            if v == 0 || v == 1 { return (base, .atom) }
            return (number(v) + base, v < 0 ? .sum : .product)
        case .identity:
            return ("I", .atom)
        case let .literal(xs):
            let list = xs.count <= 16 ? xs.map(number).joined(separator: ", ") : (latex ? "\\ldots \\text{\(xs.count) constants} \\ldots" : "… \(xs.count) constants …")
            return ((latex ? "\\left[\(list)\\right]" : "[\(list)]") + (t.row ? transposeMark : ""), .atom)
        case let .sum(ts):
            return (sum(ts), .sum)
        case let .scaled(c, u):
            if c == -1 { return ("-" + wrap(u, .product), .sum) }
            let coefficient = number(c)
            let body = wrap(u, .product)
            let gap = c.rounded() == c && Swift.abs(c) < 1e15 ? (latex ? "\\," : "") : (latex ? "\\," : " ")
            return (coefficient + gap + body, c < 0 ? .sum : .product)
        case let .product(fs):
            return (product(fs), .product)
        case let .hadamard(fs):
            return (fs.map { wrap($0, .factor) }.joined(separator: latex ? " \\odot " : " ⊙ "), .product)
        case let .quotient(a, b):
            if latex { return ("\\frac{\(render(a))}{\(render(b))}", .atom) }
            return (wrap(a, .factor) + "/" + wrap(b, .postfix), .product)
        case let .power(a, e):
            return (power(a, e, elementwise: !t.isScalar), .postfix)
        case let .transpose(u):
            if case let .inverse(v) = u.kind { return (wrap(v, .atom) + (latex ? "^{-\\top}" : "⁻ᵀ"), .postfix) }
            return (wrap(u, .atom) + transposeMark, .postfix)
        case let .inverse(u):
            return (wrap(u, .atom) + (latex ? "^{-1}" : "⁻¹"), .postfix)
        case let .permute(u, axes):
            return (function("permute") + "(" + render(u) + ", " + list(axes) + ")", .atom)
        case let .call(f, args):
            return call(f, args)
        case let .reshape(u):
            if u.rank <= 1, t.shape.count == u.shape.count, t.shape.dims.filter({ $0 != 1 }).count <= 1 {
                return print(u)
            }
            return (function("reshape") + "(" + render(u) + ", " + list(t.shape.dims) + ")", .atom)
        case let .broadcast(u):
            return broadcast(u, t.shape)
        case let .slice(u, s):
            return (wrap(u, .atom) + "[" + sliceText(s, u.shape) + "]", .atom)
        case let .pad(u, s):
            return (function("pad") + "(" + render(u) + ", " + list(t.shape.dims) + ", [" + sliceText(s, t.shape) + "])", .atom)
        case let .concat(ts, 0) where t.rank == 1:
            // The vector of its pieces, whichever way it is written.
            let list = ts.map { render(Algebra.oriented($0, row: false)) }.joined(separator: ", ")
            return (latex ? "\\left[\(list)\\right]" : "[\(list)]", .atom)
        case let .concat(ts, axis):
            return (function("concat") + "(" + ts.map(render).joined(separator: ", ") + (latex ? ";\\ \\text{axis } \(axis))" : "; axis \(axis))"), .atom)
        case let .loop(l):
            return (loopName(l) + "(" + l.operands.map(render).joined(separator: ", ") + ")", .atom)
        }
    }

    /// True for row vectors printed as the transpose of their column form ((a ⊙ b)ᵀ rather
    /// than aᵀ ⊙ bᵀ); sums, multiples and products print their rows directly.
    private func needsOuterTranspose(_ t: Term) -> Bool {
        switch t.kind {
        case .symbol, .filled, .literal, .sum, .scaled, .product, .number: return false
        case .concat(_, 0): return false
        default: return true
        }
    }

    private func sum(_ ts: [Term]) -> String {
        var text = ""
        for (i, term) in positiveFirst(ts).enumerated() {
            var positive = term
            var negative = false
            if case let .scaled(c, u) = term.kind, c < 0 {
                positive = Algebra.scale(-c, u)
                negative = true
            } else if let v = term.uniformValue, v < 0 {
                positive = Algebra.filled(-v, term.shape, row: term.row)
                negative = true
            }
            if i == 0 {
                text = negative ? "-" + wrap(positive, .product) : wrap(term, .sum)
            } else {
                text += (negative ? " - " : " + ") + wrap(positive, .product)
            }
        }
        return text
    }

    /// The terms with a positive one first where there is one: 𝟙 - f rather than -f + 𝟙.
    private func positiveFirst(_ ts: [Term]) -> [Term] {
        func negative(_ t: Term) -> Bool {
            if case let .scaled(c, _) = t.kind { return c < 0 }
            return (t.uniformValue ?? 0) < 0
        }
        guard let first = ts.first, negative(first), let k = ts.firstIndex(where: { !negative($0) }) else { return ts }
        var reordered = ts
        reordered.insert(reordered.remove(at: k), at: 0)
        return reordered
    }

    private func product(_ fs: [Term]) -> String {
        var text = ""
        var previousCompact = false
        for (i, f) in fs.enumerated() {
            let piece = wrap(f, .factor)
            let compact = isCompact(piece)
            if i > 0 { text += (compact && previousCompact) ? "" : (latex ? "\\," : " ") }
            text += piece
            previousCompact = compact
        }
        return text
    }

    /// Short factors (a single-letter name with marks, or a parenthesized group) are written
    /// side by side; longer ones get a space between them.
    private func isCompact(_ piece: String) -> Bool {
        if latex { return true }
        if piece.hasPrefix("(") { return true }
        guard let first = piece.unicodeScalars.first, first.properties.isAlphabetic || piece.hasPrefix("𝟙") else { return false }
        let letters = piece.unicodeScalars.filter { $0.properties.isAlphabetic && !"ᵀ".unicodeScalars.contains($0) }
        return letters.count <= 1 && !piece.contains("(")
    }

    private func power(_ a: Term, _ e: Term, elementwise: Bool) -> String {
        let base = wrap(a, .atom)
        if latex {
            let exponent = e.uniformValue.map(number) ?? render(e)
            return base + "^{" + (elementwise ? "\\circ " : "") + exponent + "}"
        }
        if let p = e.uniformValue, p.rounded() == p, p >= 0, p < 10 {
            let digits = Array("⁰¹²³⁴⁵⁶⁷⁸⁹")
            return base + (elementwise ? "^∘" + number(p) : String(digits[Int(p)]))
        }
        return base + (elementwise ? "^∘" : "^") + wrap(e, .atom)
    }

    private func broadcast(_ u: Term, _ shape: Shape) -> (text: String, level: Binding) {
        if u.isScalar {
            if let v = u.uniformValue { return (number(v) + ones, .product) }
            return (wrap(u, .factor) + ones, .product)
        }
        if u.rank == 1, shape.rank == 2, shape[1] == u.shape[0] {
            return (ones + wrap(Algebra.oriented(u, row: true), .factor), .product)
        }
        if u.rank == 2, u.shape[0] == 1, shape.rank == 2, case let .reshape(v) = u.kind, v.rank == 1 {
            return (ones + wrap(Algebra.oriented(v, row: true), .factor), .product)
        }
        if u.rank == 2, u.shape[1] == 1, shape.rank == 2, shape[0] == u.shape[0] {
            return (wrap(u, .factor) + ones + transposeMark, .product)
        }
        return (function("broadcast") + "(" + render(u) + ", " + list(shape.dims) + ")", .atom)
    }

    private func call(_ f: FormulaFunction, _ args: [Term]) -> (text: String, level: Binding) {
        let inner = args.map(render).joined(separator: ", ")
        func named(_ name: String) -> (String, Binding) { (function(name) + "(" + inner + ")", .atom) }
        switch f {
        case let .unary(u):
            switch u {
            case .sigmoid: return named("sigmoid")
            case .abs: return (latex ? "\\lvert \(inner)\\rvert" : "|\(inner)|", .atom)
            case .sqrt where latex: return ("\\sqrt{\(inner)}", .atom)
            case .sqrt: return ("√" + wrap(args[0], .atom), .postfix)
            case .exp, .log, .sin, .cos, .tan, .tanh:
                return latex ? ("\\\(u.rawValue)\\left(\(inner)\\right)", .atom) : named(u.rawValue)
            default: return named(u.rawValue)
            }
        case let .compare(relation):
            let op = latex ? (["<=": "\\le", ">=": "\\ge", "!=": "\\ne", "==": "="][relation] ?? relation) : (["<=": "≤", ">=": "≥", "!=": "≠", "==": "="][relation] ?? relation)
            return ("[" + render(args[0]) + " \(op) " + render(args[1]) + "]", .atom)
        case .and: return named("and")
        case .or: return named("or")
        case .maximum: return named("max")
        case .minimum: return named("min")
        case .select: return named("where")
        case let .sum(axes, all):
            if latex, all { return ("\\sum " + wrap(args[0], .atom), .product) }
            return all ? named("sum") : (function("sum") + "(" + inner + axesText(axes) + ")", .atom)
        case let .extremum(maximum, axes, all):
            let name = maximum ? "max" : "min"
            return all ? named(name) : (function(name) + "(" + inner + axesText(axes) + ")", .atom)
        case let .softmax(axes): return (function("softmax") + "(" + inner + axesText(axes) + ")", .atom)
        case let .logSoftmax(axes): return (function("log_softmax") + "(" + inner + axesText(axes) + ")", .atom)
        case let .logsumexp(axes, all):
            return all ? named("logsumexp") : (function("logsumexp") + "(" + inner + axesText(axes) + ")", .atom)
        case .det: return (latex ? "\\det\\left(\(inner)\\right)" : "det(\(inner))", .atom)
        case .logAbsDet: return (latex ? "\\log\\lvert \(inner)\\rvert" : "log|\(inner)|", .atom)
        case .adjugate: return named("adj")
        case .trace: return named("tr")
        case .cholesky: return named("chol")
        case .diagonalMatrix, .diagonal: return named("diag")
        case let .solve(transposed):
            return (function("solve") + "(" + wrap(args[0], .atom) + (transposed ? transposeMark : "") + ", " + render(args[1]) + ")", .atom)
        case let .triangularSolve(lower, transpose):
            return (function(lower ? "solve_lower" : "solve_upper") + "(" + wrap(args[0], .atom) + (transpose ? transposeMark : "") + ", " + render(args[1]) + ")", .atom)
        case let .triangle(lower, diagonal):
            let name = lower ? "tril" : "triu"
            return diagonal == 1 ? named(name) : (function(name) + "(" + inner + (latex ? ",\\ \\text{diagonal} \\times " : ", diagonal × ") + number(diagonal) + ")", .atom)
        case let .oneHot(count): return (function("onehot") + "_{\(count)}(" + inner + ")", .atom)
        }
    }

    // MARK: Names and numbers

    private func function(_ name: String) -> String { latex ? "\\operatorname{\(name.replacingOccurrences(of: "_", with: "\\_"))}" : name }

    /// A name as printed: Greek letter names as letters, trailing digits as subscripts.
    func symbolName(_ name: String) -> String {
        var stem = Substring(name)
        var digits = ""
        while let last = stem.last, last.isASCII, last.isNumber, stem.count > 1 {
            digits = String(last) + digits
            stem = stem.dropLast()
        }
        // theta_1 is θ₁.
        if !digits.isEmpty, stem.count > 1, stem.last == "_" { stem = stem.dropLast() }
        if latex {
            let base: String
            if let greek = greekLetters[String(stem)] { base = "\\" + (greek.latex) } else if stem.count == 1 { base = String(stem) } else {
                base = "\\mathrm{" + stem.replacingOccurrences(of: "_", with: "\\_") + "}"
            }
            return digits.isEmpty ? base : base + "_{\(digits)}"
        }
        let base = greekLetters[String(stem)]?.text ?? String(stem)
        let subscripts = Array("₀₁₂₃₄₅₆₇₈₉")
        return base + String(digits.map { subscripts[Int(String($0))!] })
    }

    func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-∞" : (latex ? "\\infty" : "∞") }
        if v.rounded() == v, Swift.abs(v) < 1e15 { return String(Int(v)) }
        let plain = v.description
        if plain.count <= 7 { return plain }
        for q in 2...12 {
            let p = v * Double(q)
            if Swift.abs(p - p.rounded()) < 1e-12 * Swift.abs(p), Swift.abs(p) < 1e6 {
                let sign = p < 0 ? "-" : ""
                let n = Int(Swift.abs(p.rounded()))
                return latex ? "\(sign)\\frac{\(n)}{\(q)}" : "\(sign)\(n)/\(q)"
            }
        }
        return plain
    }

    private func axesText(_ axes: [Int]) -> String { (latex ? ",\\ \\text{axes } " : ", axes ") + list(axes) }

    private func list(_ xs: [Int]) -> String { "[" + xs.map(String.init).joined(separator: ", ") + "]" }

    private func sliceText(_ s: Slice, _ shape: Shape) -> String {
        (0..<s.starts.count).map { axis in
            if s.starts[axis] == 0, s.ends[axis] == shape[axis], s.steps[axis] == 1 { return ":" }
            return "\(s.starts[axis]):\(s.ends[axis])" + (s.steps[axis] == 1 ? "" : ":\(s.steps[axis])")
        }.joined(separator: ", ")
    }

    func loopName(_ l: LoopTerm) -> String { (latex ? "\\operatorname{loop}_{\(l.index)}" : "loop\(l.index)") }
}

/// Greek letter names and how each format writes them.
let greekLetters: [String: (text: String, latex: String)] = {
    let lower = ["alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ", "eta": "η",
                 "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π",
                 "rho": "ρ", "sigma": "σ", "tau": "τ", "upsilon": "υ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω"]
    let upper = ["Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ",
                 "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω"]
    var table: [String: (text: String, latex: String)] = [:]
    for (name, letter) in lower.merging(upper, uniquingKeysWith: { a, _ in a }) { table[name] = (letter, name) }
    return table
}()
