// The formulas of a program's derivative outputs. Gradients and directional derivatives are
// read from the graph reverse and forward mode built; Jacobians and Hessians, which the kernel
// assembles column by column, are read from their directional derivative along a symbolic
// direction v (J v), whose matrix J is then taken from the formula (`LinearMap`).

extension NablaProgram {
    /// The formula of each derivative output (grad, jacobian, hessian, jvp, hvp), in output order.
    /// - Parameter expandingBindings: write the file's bindings out instead of by name.
    /// - Throws: `NablaError.invalidArgument` when an output holds an operation with no formula.
    public func derivativeFormulas(expandingBindings: Bool = false) throws -> [Formula] {
        guard let first = derivatives.first else { return [] }
        let built = first.built
        let inputNames = GraphTerms.names(of: built.inputs)
        let bindings = expandingBindings ? [:] : firstNames(bindingNodes)
        var terms = GraphTerms(nodes: built.nodes, inputNames: inputNames, bindingNames: bindings)
        var formulas: [Formula] = []
        for d in derivatives {
            let subject = Formula.Subject.derivative(name: d.name, kind: d.kind, of: d.functionName, wrt: d.variable, along: d.direction)
            switch d.kind {
            case .grad, .jvp, .hvp:
                let term = try terms.term(of: d.resultNode)
                let row = d.kind == .grad && jacobianLayout == .numerator
                formulas.append(Formula(subject: subject, result: Algebra.oriented(term, row: row), definitions: terms.definitions))
            case .jacobian, .hessian:
                formulas.append(try jacobianFormula(d, subject: subject, bindings: bindings))
            }
        }
        // Output variables of the NumPy form: none may take an input's, a binding's or an
        // earlier output's name.
        let r = NumPyRenderer()
        var taken = Set(built.inputs.map { r.pythonName($0.name) }).union(bindingNames.map(r.pythonName))
        for k in formulas.indices {
            var name = Formula.pythonIdentifier(formulas[k].name)
            while taken.contains(name) { name += "_" }
            taken.insert(name)
            formulas[k].numpyTarget = name
        }
        return formulas
    }

    /// The formula of a named binding or output of the file (derivative outputs included).
    /// - Throws: `NablaError.unknownName` for a name that is neither.
    public func formula(of name: String, expandingBindings: Bool = false) throws -> Formula {
        if let d = derivatives.firstIndex(where: { $0.name == name }) {
            return try derivativeFormulas(expandingBindings: expandingBindings)[d]
        }
        guard let node = bindingNodes.first(where: { $0.name == name })?.node, let built = derivatives.first?.built ?? builtGraph else {
            throw NablaError.unknownName(kind: "binding", name: name, known: bindingNodes.map(\.name))
        }
        var bindings = expandingBindings ? [:] : firstNames(bindingNodes)
        bindings[node] = nil
        var terms = GraphTerms(nodes: built.nodes, inputNames: GraphTerms.names(of: built.inputs),
                               bindingNames: bindings)
        let term = try terms.term(of: node)
        return Formula(subject: .named(name), result: Algebra.oriented(term, row: false), definitions: terms.definitions)
    }

    /// Each node's first binding name (a node bound twice keeps the earlier name).
    private func firstNames(_ nodes: [(name: String, node: Int)]) -> [Int: String] {
        var names: [Int: String] = [:]
        for (name, node) in nodes where names[node] == nil { names[node] = name }
        return names
    }

    /// A Jacobian (or Hessian: the Jacobian of the gradient) as a matrix formula, or as J
    /// applied to a direction when it has none here.
    private func jacobianFormula(_ d: DerivativeOutput, subject: Formula.Subject, bindings: [Int: String]) throws -> Formula {
        let (builder, tensors) = GraphBuilder.replaying(d.built)
        let y = tensors[d.functionNode], x = tensors[d.variableNode]
        let taken = Set(d.built.inputs.map(\.name)).union(bindings.values)
        let direction = (x.shape.rank >= 2 ? ["V", "v", "dX", "U"] : ["v", "V", "dx", "u"]).first { !taken.contains($0) } ?? freshDirection(taken)
        let v = try builder.input(direction, shape: x.shape)
        let dy = try jvp(of: y, wrt: x, tangent: v)
        var names: [Int: String] = [:]
        for (old, name) in bindings { names[tensors[old].id] = name }
        var terms = GraphTerms(nodes: builder.nodes, inputNames: GraphTerms.names(of: builder.inputPorts),
                               bindingNames: names)
        terms.reserve(direction)
        let term = Algebra.oriented(try terms.term(of: dy.id), row: false)
        let layout = d.kind == .hessian ? JacobianLayout.numerator : d.layout
        let directional = Formula(subject: subject, result: term, definitions: terms.definitions, directional: (direction, x.shape, layout))
        guard x.shape.rank <= 1, y.shape.rank <= 1,
              let (j, definitions) = matrixOfLinearTerm(term, terms.definitions, direction: direction, variable: x.shape, terms: &terms) else {
            return directional
        }
        let result = y.shape.rank == 0 && x.shape.rank == 1 ? Algebra.oriented(j, row: layout == .numerator)
            : (layout == .numerator || x.shape.rank == 0 ? j : Algebra.transposed(j))
        return Formula(subject: subject, result: result, definitions: definitions)
    }

    /// J with `term` = J v, reading the named terms that depend on v in order: each becomes the
    /// definition of its own matrix, so long chains stay one line per step.
    private func matrixOfLinearTerm(_ term: Term, _ definitions: [Definition], direction: String, variable: Shape,
                                    terms: inout GraphTerms) -> (Term, [Definition])? {
        var kept: [Definition] = []
        if variable.rank == 0 {
            // A scalar direction: J is the term at v = 1.
            var values = [direction: Algebra.number(1)]
            var dependent: Set<String> = [direction]
            for definition in definitions {
                guard definition.term.mentionsAny(dependent) else { kept.append(definition); continue }
                guard let j = LinearMap.substituting(values, in: definition.term) else { return nil }
                let name = terms.freshName("J")
                values[definition.name] = Algebra.symbol(name, j.shape, row: j.row)
                dependent.insert(definition.name)
                kept.append(Definition(name: name, term: j, origin: .intermediate))
            }
            return LinearMap.substituting(values, in: term).map { ($0, kept) }
        }
        var map = LinearMap(direction: direction, n: variable[0])
        for definition in definitions {
            guard definition.term.mentionsAny(map.dependent) else { kept.append(definition); continue }
            guard let j = map.matrix(of: definition.term) else { return nil }
            let name = terms.freshName("J")
            map.learn(definition.name, Algebra.symbol(name, j.shape, row: j.row))
            kept.append(Definition(name: name, term: j, origin: .intermediate))
        }
        return map.matrix(of: term).map { ($0, kept) }
    }

    private func freshDirection(_ taken: Set<String>) -> String {
        var k = 1
        while taken.contains("v\(k)") { k += 1 }
        return "v\(k)"
    }
}
