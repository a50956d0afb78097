// A formula as lines: the result first and its definitions under it ("where ...") in matrix
// notation; definitions first and the result last in NumPy, so the lines run in order. Loops are
// blocks: their body's formulas in notation, a Python function in NumPy.

extension Formula {
    func renderedNotation(_ r: NotationRenderer) -> String {
        var lines = [resultLine(r)]
        for definition in definitions {
            lines += definitionLines(definition, r, indent: "  ")
        }
        return lines.joined(separator: "\n")
    }

    private func resultLine(_ r: NotationRenderer) -> String {
        let body = r.render(result)
        if r.latex { return leftSide(latex: true) + " = " + body }
        if let directional {
            return "\(name)[\(r.symbolName(directional.direction))] = \(body)    \(shapeText(result.shape)) per direction \(r.symbolName(directional.direction)) of shape \(shapeText(directional.variable))"
        }
        return "\(name) = \(body)    \(shapeText(result.shape))"
    }

    /// The left-hand side in LaTeX: ∂L/∂θ, ∂²f/∂x², ∂e/∂x v.
    private func leftSide(latex: Bool) -> String {
        let r = NotationRenderer(latex: true)
        switch subject {
        case let .named(name): return r.symbolName(name)
        case let .derivative(_, kind, of, wrt, along):
            let f = r.symbolName(of), x = r.symbolName(wrt)
            let first = "\\frac{\\partial \(f)}{\\partial \(x)}"
            let second = "\\frac{\\partial^{2} \(f)}{\\partial \(x)^{2}}"
            let direction = (along ?? directional?.direction).map { "\\, " + r.symbolName($0) } ?? ""
            switch kind {
            case .grad, .jacobian: return first + direction
            case .jvp: return first + direction
            case .hessian, .hvp: return second + direction
            }
        }
    }

    private func definitionLines(_ d: Definition, _ r: NotationRenderer, indent: String) -> [String] {
        let name = r.symbolName(d.name)
        let lead = r.latex ? "\\text{where } " : indent + "where "
        guard case let .loop(l) = d.term.kind else {
            return [lead + name + " = " + r.render(d.term) + (r.latex ? "" : "    " + shapeText(d.term.shape))]
        }
        return loopLines(l, name: name, lead: lead, r, indent: indent)
    }

    private func loopLines(_ l: LoopTerm, name: String, lead: String, _ r: NotationRenderer, indent: String) -> [String] {
        let s = l.scan, b = s.body
        // Words are \text{} in LaTeX.
        func words(_ w: String) -> String { r.latex ? "\\text{\(w)}" : w }
        let dots = r.latex ? "\\ldots" : "…"
        let range = s.reverse ? "k = \(s.steps - 1), \(dots), 0" : "k = 0, \(dots), \(s.steps - 1)"
        let p = l.parameters.map(r.symbolName)
        let carries = (0..<b.carryCount).map { "\(p[$0]) = \(r.render(l.operands[$0]))" }
        let sequences = (0..<b.sequenceCount).map { "\(p[b.carryCount + $0]) = " + words("row ") + "k" + words(" of ") + r.render(l.operands[b.carryCount + $0]) }
        let captures = (0..<b.captureCount).map { "\(p[b.carryCount + b.sequenceCount + 1 + $0]) = \(r.render(l.operands[b.carryCount + b.sequenceCount + $0]))" }
        let separator = r.latex ? ";\\; " : "; "
        var lines = [lead + "\(name) = " + words("loop over ") + range + words(" from ") + (carries + sequences + captures).joined(separator: separator) + ":"]
        let inner = indent + "    "
        let arrow = r.latex ? " \\leftarrow" : " ←"
        for (i, result) in l.bodyResults.enumerated() {
            let target = i < b.carryCount ? p[i] + arrow : words("output \(i - b.carryCount)") + "[k] ="
            lines.append(inner + target + " " + r.render(result))
        }
        for d in l.bodyDefinitions { lines += definitionLines(d, r, indent: inner) }
        let (finals, outputs, history) = s.pieces
        var layout: [String] = []
        for (i, piece) in finals.enumerated() { layout.append("[\(piece.offset):\(piece.offset + piece.shape.count)] " + words("the last ") + p[i]) }
        for (i, piece) in outputs.enumerated() { layout.append("[\(piece.offset):\(piece.offset + piece.shape.count)] " + words("output \(i) of every step")) }
        for (i, piece) in history.enumerated() { layout.append("[\(piece.offset):\(piece.offset + piece.shape.count)] " + p[i] + words(" before every step")) }
        lines.append(inner + name + words(" holds ") + layout.joined(separator: ", "))
        return lines
    }

    private func shapeText(_ shape: Shape) -> String { shape.rank == 0 ? "scalar" : "\(shape)" }

    // MARK: NumPy

    func renderedNumPy() -> String {
        let r = NumPyRenderer()
        var lines: [String] = []
        let target = numpyName
        if let directional {
            // J applied to a direction, as a function of it with the definitions that read it,
            // applied to each basis direction and stacked.
            var dependent: Set<String> = [directional.direction]
            var inner: [String] = []
            for definition in definitions {
                if definition.term.mentionsAny(dependent) {
                    dependent.insert(definition.name)
                    inner += numpyDefinition(definition, r, indent: "    ")
                } else {
                    lines += numpyDefinition(definition, r, indent: "")
                }
            }
            let function = "_along_" + target
            lines.append("def \(function)(\(r.pythonName(directional.direction))):")
            lines += inner
            lines.append("    return np.broadcast_to(np.asarray(\(r.render(result)), dtype=float), \(r.tuple(result.shape)))")
            let n = directional.variable.count
            let columns = "np.array([\(function)(e) for e in np.eye(\(n)).reshape((\(n),) + \(r.tuple(directional.variable)))])"
            let stacked = directional.layout == .numerator
                ? "np.moveaxis(\(columns), 0, -1).reshape(\(r.tuple(Shape(result.shape.dims + directional.variable.dims))))"
                : "\(columns).reshape(\(r.tuple(Shape(directional.variable.dims + result.shape.dims))))"
            lines.append("\(target) = np.asarray(\(stacked), dtype=float)")
        } else {
            for definition in definitions { lines += numpyDefinition(definition, r, indent: "") }
            lines.append("\(target) = \(r.render(result))")
        }
        return lines.joined(separator: "\n")
    }

    private func numpyDefinition(_ d: Definition, _ r: NumPyRenderer, indent: String) -> [String] {
        guard case let .loop(l) = d.term.kind else {
            return [indent + r.pythonName(d.name) + " = " + r.render(d.term)]
        }
        var lines = numpyLoopFunction(l, r, indent: indent)
        lines.append(indent + r.pythonName(d.name) + " = " + r.render(d.term))
        return lines
    }

    /// `def loopN(...)`: the loop run step by step, returning its flat result.
    private func numpyLoopFunction(_ l: LoopTerm, _ r: NumPyRenderer, indent: String) -> [String] {
        let s = l.scan, b = s.body
        let p = l.parameters.map(r.pythonName)
        let carries = Array(p[..<b.carryCount])
        let sequences = (0..<b.sequenceCount).map { "s\($0)" }
        let captures = Array(p[(b.carryCount + b.sequenceCount + 1)...])
        let rows = Array(p[b.carryCount..<(b.carryCount + b.sequenceCount)])
        let step = p[b.carryCount + b.sequenceCount]
        let i1 = indent + "    ", i2 = indent + "        "
        var lines = [indent + "def \(r.loopFunctionName(l))(" + (carries + sequences + captures).joined(separator: ", ") + "):"]
        lines.append(i1 + "outputs = [[None] * \(s.steps) for _ in range(\(b.stepOutputCount))]")
        lines.append(i1 + "history = [[None] * \(s.steps) for _ in range(\(s.keepsCarries ? b.carryCount : 0))]")
        lines.append(i1 + "for \(step) in " + (s.reverse ? "reversed(range(\(s.steps)))" : "range(\(s.steps))") + ":")
        for (i, c) in carries.enumerated() where s.keepsCarries { lines.append(i2 + "history[\(i)][\(step)] = \(c)") }
        for (row, sequence) in zip(rows, sequences) { lines.append(i2 + "\(row) = \(sequence)[\(step)]") }
        for d in l.bodyDefinitions { lines += numpyDefinition(d, r, indent: i2) }
        let values = l.bodyResults.map { "np.asarray(\(r.render($0)), dtype=float)" }
        let outputs = (0..<b.stepOutputCount).map { "y\($0)" }
        let targets = carries + outputs
        if !targets.isEmpty { lines.append(i2 + targets.joined(separator: ", ") + (targets.count == 1 ? "," : "") + " = " + values.joined(separator: ", ") + (values.count == 1 ? "," : "")) }
        for (i, y) in outputs.enumerated() { lines.append(i2 + "outputs[\(i)][\(step)] = \(y)") }
        let stepShapes = b.stepOutputShapes, carryShapes = b.carryShapes
        let pieces = carries.map { "np.ravel(\($0))" }
            + stepShapes.indices.map { "np.ravel(np.array(outputs[\($0)], dtype=float).reshape(\(r.tuple(Shape([s.steps] + stepShapes[$0].dims)))))" }
            + (s.keepsCarries ? carryShapes.indices.map { "np.ravel(np.array(history[\($0)], dtype=float).reshape(\(r.tuple(Shape([s.steps] + carryShapes[$0].dims)))))" } : [])
        lines.append(i1 + "return np.concatenate([" + pieces.joined(separator: ", ") + "] + [np.zeros(0)])")
        return lines
    }

    /// A Python variable name for an output name: `dL/dtheta` is `dL_dtheta`.
    public static func pythonIdentifier(_ name: String) -> String {
        var text = String(name.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
        if text.first?.isNumber ?? true { text = "_" + text }
        return pythonReserved.contains(text) ? text + "_" : text
    }
}

private extension Int {
    /// The first `self` names from `names` at `from`.
    func rangeNames(_ names: [String], from start: Int) -> [String] { Array(names[start..<(start + self)]) }
}
