/// Turns parsed statements into a graph: resolves names, dims and user functions, applies
/// built-ins, checks shapes, and maps every error to a diagnostic at its expression.
struct Elaborator {
    let file: SourceFile
    let overrides: [String: Int]
    var builder = GraphBuilder()
    var diagnostics: [Diagnostic] = []

    var dims: [String: Int] = [:]
    /// Dims whose declaration failed (already reported).
    var failedDims: Set<String> = []
    var dimOrder: [String] = []
    /// Bound tensors by name; nil marks a name whose definition failed (already reported),
    /// so its uses do not pile up more errors.
    var values: [String: Tensor?] = [:]
    var isInput: Set<String> = []
    var inputSpans: [String: SourceSpan] = [:]
    var functions: [String: (parameters: [Name], body: Expression)] = [:]
    /// Results of the function calls expanded so far, by function and argument tensors.
    var expansions: [CallKey: Tensor] = [:]
    /// Expression nodes expanded from function bodies so far, against `expansionBudget`.
    var expandedNodes = 0
    /// The emptied stacks of the last `lower`, for the next.
    var spareLoweringState: LoweringState?
    /// Functions that call themselves, directly or through others (reported at their definition).
    var recursiveFunctions: Set<String> = []
    /// Recursion errors by the function whose body holds the call closing the cycle, reported
    /// with that function's definition.
    var recursionErrors: [String: [Diagnostic]] = [:]
    /// Unknown names reported so far; past `maximumSuggestions` no "did you mean" is looked for.
    var suggestionsMade = 0
    var forwardOutputs: [(name: String, tensor: Tensor)] = []
    var outputNames: Set<String> = []
    var derivativeOutputs: [(name: String, tensor: Tensor)] = []
    /// For each derivative output: the function it differentiates, the variable, the direction.
    var derivativeSources: [DerivativeSource] = []
    /// The node of each top-level binding (outputs included) by name, for formulas.
    var bindingNodes: [(name: String, node: Int)] = []
    /// Layout of `jacobian` outputs.
    var jacobianLayout: JacobianLayout = .numerator
    /// Where each name was first declared, for "already declared" notes.
    var declaredAt: [String: SourceSpan] = [:]
    /// Functions whose bodies are being lowered as loop bodies, outermost first.
    var loopBodies: [String] = []
    /// The binding whose expression is being lowered.
    var beingDefined: String?

    var outputs: [(name: String, tensor: Tensor)] { forwardOutputs + derivativeOutputs }

    /// What a derivative output is the derivative of, recorded as it is built.
    struct DerivativeSource {
        let output: String
        let kind: DerivativeKind
        /// The differentiated binding's name, and its tensor (the gradient, for Hessians and HVPs).
        let of: String
        let function: Tensor
        let wrt: String
        let variable: Tensor
        let along: String?
        let layout: JacobianLayout
        /// The output's tensor.
        let result: Tensor
    }

    /// Thrown inside elaboration once a diagnostic has been recorded.
    struct Reported: Error {}

    init(file: SourceFile, overrides: [String: Int], jacobianLayout: JacobianLayout = .numerator) {
        self.file = file
        self.overrides = overrides
        self.jacobianLayout = jacobianLayout
    }

    /// Marks names whose statements failed to parse, so their uses stay quiet.
    mutating func poison(_ names: [String]) {
        for name in names where values[name] == nil {
            values[name] = .some(nil)
            failedDims.insert(name)
        }
    }

    mutating func run(_ statements: [Statement]) {
        findRecursion(statements)
        // Most statements bind a name: tables sized for them once are never rehashed as they grow.
        values.reserveCapacity(values.count + statements.count)
        declaredAt.reserveCapacity(declaredAt.count + statements.count)
        bindingNodes.reserveCapacity(bindingNodes.count + statements.count)
        for statement in statements {
            do {
                try elaborate(statement)
            } catch is Reported {
            } catch {
                // Failures are reported where they happen; one that was not is reported at its
                // statement rather than lost.
                self.error("\(error)", at: statement.span)
            }
        }
    }

    @discardableResult
    mutating func error(_ message: String, at span: SourceSpan, label: String? = nil) -> Reported {
        diagnostics.append(Diagnostic(message, at: span, label: label))
        return Reported()
    }

    private mutating func declare(_ name: Name, as kind: String) throws {
        if let previous = declaredAt[name.text] {
            let (line, column) = file.location(of: previous.start)
            throw error("\(name.quoted) is already declared (at line \(line), column \(column)); every name is bound once", at: name.span)
        }
        if builtinNames.contains(name.text) && kind != "function" {
            throw error("\(name.quoted) is a built-in function and cannot be rebound", at: name.span)
        }
        declaredAt[name.text] = name.span
    }

    private mutating func elaborate(_ statement: Statement) throws {
        switch statement {
        case let .dim(name, value):
            try declare(name, as: "dim")
            if let function = functions.filter({ $0.value.parameters.contains { $0.text == name.text } }).keys.min() {
                throw error("dim \(name.quoted) has the name of a parameter of '\(function)', defined before it; give one of them another name", at: name.span)
            }
            failedDims.insert(name.text)
            var n = try staticInteger(value)
            if let override = overrides[name.text] { n = override }
            guard n >= 0, n <= NablaProgram.maximumElements else {
                throw error("dim \(name.quoted) must be between 0 and \(NablaProgram.maximumElements), got \(n)", at: value.span)
            }
            dims[name.text] = n
            dimOrder.append(name.text)
            failedDims.remove(name.text)

        case let .input(name, shapeExpressions):
            try declare(name, as: "input")
            values[name.text] = .some(nil)
            var dimsOfShape: [Int] = []
            for expression in shapeExpressions ?? [] {
                let n = try staticInteger(expression)
                guard n >= 0 else { throw error("a shape's extent cannot be negative, got \(n)", at: expression.span) }
                dimsOfShape.append(n)
            }
            let shape = Shape(dimsOfShape)
            try checkSize(shape, at: name.span)
            do {
                values[name.text] = try builder.input(name.text, shape: shape)
            } catch let failure as NablaError {
                throw error(failure.description, at: name.span)
            }
            isInput.insert(name.text)
            inputSpans[name.text] = name.span

        case let .binding(name, expression, isOutput):
            try declare(name, as: "binding")
            // Not bound while its own expression is read: a use of it there is an error.
            beingDefined = name.text
            defer { beingDefined = nil }
            let tensor: Tensor
            do {
                tensor = try lower(expression, scope: [:])
            } catch {
                values[name.text] = .some(nil)
                throw error
            }
            values[name.text] = tensor
            bindingNodes.append((name.text, tensor.id))
            if isOutput { try addOutput(name.text, tensor, at: name.span, derivative: false) }

        case let .export(name):
            guard let bound = values[name.text] else {
                throw unknownName(name)
            }
            guard let tensor = bound else { throw Reported() }
            try addOutput(name.text, tensor, at: name.span, derivative: false)

        case let .function(name, parameters, body):
            diagnostics += recursionErrors.removeValue(forKey: name.text) ?? []
            try declare(name, as: "function")
            guard !builtinNames.contains(name.text) else {
                throw error("\(name.quoted) is a built-in function and cannot be redefined", at: name.span)
            }
            var seen = Set<String>()
            for parameter in parameters where !seen.insert(parameter.text).inserted {
                throw error("parameter \(parameter.quoted) appears twice", at: parameter.span)
            }
            // Where a whole number is read (shapes, indices, steps) a dim's name means the dim,
            // so a parameter of that name would be silently ignored there.
            for parameter in parameters where dims[parameter.text] != nil || failedDims.contains(parameter.text) {
                throw error("parameter \(parameter.quoted) has the name of a dim; give it another name", at: parameter.span)
            }
            functions[name.text] = (parameters, body)

        case let .derivative(kind, of, wrt, along, span):
            try elaborateDerivative(kind, of: of, wrt: wrt, along: along, span: span)

        case let .taylor(of, wrt, point, order, span):
            do {
                try elaborateTaylor(of: of, wrt: wrt, at: point, order: order, span: span)
            } catch let failure as NablaError {
                throw error(failure.description, at: span)
            }
        }
    }

    private mutating func addOutput(_ name: String, _ tensor: Tensor, at span: SourceSpan, derivative: Bool) throws {
        guard outputNames.insert(name).inserted else {
            throw error("output \(quoted(name)) is produced twice", at: span)
        }
        if derivative { derivativeOutputs.append((name, tensor)) } else { forwardOutputs.append((name, tensor)) }
    }

    private mutating func boundTensor(_ name: Name) throws -> Tensor {
        guard let bound = values[name.text] else { throw unknownName(name) }
        guard let tensor = bound else { throw Reported() }
        return tensor
    }

    private mutating func elaborateDerivative(_ kind: DerivativeKind, of: Name, wrt: [Name], along: Name?, span: SourceSpan) throws {
        let y = try boundTensor(of)
        let variables = try wrt.map { try boundTensor($0) }
        do {
            switch kind {
            case .grad:
                guard y.shape.isScalar else {
                    throw error("'grad' needs a scalar, but \(of.quoted) has shape \(y.shape); use 'jacobian' or 'jvp' for tensors", at: of.span)
                }
                let gradients = try gradient(of: y, wrt: variables)
                for ((name, g), x) in zip(zip(wrt, gradients), variables) {
                    let output = "d\(of.text)/d\(name.text)"
                    try addOutput(output, g, at: name.span, derivative: true)
                    derivativeSources.append(DerivativeSource(output: output, kind: kind, of: of.text, function: y, wrt: name.text, variable: x, along: nil, layout: .numerator, result: g))
                }
            case .hvp, .hessian:
                guard y.shape.isScalar else {
                    throw error("'\(kind.rawValue)' needs a scalar, but \(of.quoted) has shape \(y.shape)", at: of.span)
                }
                for (name, x) in zip(wrt, variables) {
                    let g = try gradient(of: y, wrt: x)
                    if kind == .hessian {
                        let output = "d2\(of.text)/d\(name.text)2"
                        try checkDerivativeSize(of: g, wrt: x, kind, at: name.span)
                        let h = try jacobian(of: g, wrt: x, mode: .forward)
                        try addOutput(output, h, at: name.span, derivative: true)
                        derivativeSources.append(DerivativeSource(output: output, kind: kind, of: of.text, function: g, wrt: name.text, variable: x, along: nil, layout: .numerator, result: h))
                    } else {
                        let (along, v) = try direction(along!, for: name, x)
                        let output = "d2\(of.text)/d\(name.text)2.\(along.text)"
                        let hv = try jvp(of: g, wrt: x, tangent: v)
                        try addOutput(output, hv, at: name.span, derivative: true)
                        derivativeSources.append(DerivativeSource(output: output, kind: kind, of: of.text, function: g, wrt: name.text, variable: x, along: along.text, layout: .numerator, result: hv))
                    }
                }
            case .jacobian, .jvp:
                for (name, x) in zip(wrt, variables) {
                    if kind == .jacobian {
                        let output = "d\(of.text)/d\(name.text)"
                        try checkDerivativeSize(of: y, wrt: x, kind, at: name.span)
                        let j = try jacobian(of: y, wrt: x, layout: jacobianLayout)
                        try addOutput(output, j, at: name.span, derivative: true)
                        derivativeSources.append(DerivativeSource(output: output, kind: kind, of: of.text, function: y, wrt: name.text, variable: x, along: nil, layout: jacobianLayout, result: j))
                    } else {
                        let (along, v) = try direction(along!, for: name, x)
                        let output = "d\(of.text)/d\(name.text).\(along.text)"
                        let jv = try jvp(of: y, wrt: x, tangent: v)
                        try addOutput(output, jv, at: name.span, derivative: true)
                        derivativeSources.append(DerivativeSource(output: output, kind: kind, of: of.text, function: y, wrt: name.text, variable: x, along: along.text, layout: .numerator, result: jv))
                    }
                }
            }
        } catch let failure as NablaError {
            throw error(failure.description, at: span)
        }
    }

    /// A Jacobian or Hessian has shape(y) + shape(x): refused before it is built when that is
    /// more than one tensor may hold (building it first would take the memory it would need).
    private mutating func checkDerivativeSize(of y: Tensor, wrt x: Tensor, _ kind: DerivativeKind, at span: SourceSpan) throws {
        let (count, overflow) = y.shape.count.multipliedReportingOverflow(by: x.shape.count)
        guard overflow || count > NablaProgram.maximumElements else { return }
        throw error("the \(kind.rawValue) would have shape \(Shape(y.shape.dims + x.shape.dims)), more than \(NablaProgram.maximumElements) elements", at: span)
    }

    /// The direction of a jvp or hvp, which must have its variable's shape.
    private mutating func direction(_ along: Name, for name: Name, _ x: Tensor) throws -> (Name, Tensor) {
        let v = try boundTensor(along)
        guard v.shape == x.shape else {
            throw error("direction \(along.quoted) has shape \(v.shape), but \(name.quoted) has shape \(x.shape)", at: along.span)
        }
        return (along, v)
    }

    private mutating func elaborateTaylor(of: Name, wrt: Name, at point: Expression?, order: Expression, span: SourceSpan) throws {
        let y = try boundTensor(of)
        let x = try boundTensor(wrt)
        guard y.shape.isScalar, x.shape.isScalar else {
            throw error("'taylor' expands a scalar in a scalar, but \(of.quoted) has shape \(y.shape) and \(wrt.quoted) has shape \(x.shape)", at: span)
        }
        let n = try staticInteger(order)
        guard (0...32).contains(n) else { throw error("the order of a Taylor expansion must be between 0 and 32, got \(n)", at: order.span) }
        var coefficients = try taylorCoefficients(of: y, wrt: x, order: n)
        if let point {
            let x0 = try lower(point, scope: [:])
            guard x0.shape.isScalar else { throw error("the expansion point must be a scalar, got shape \(x0.shape)", at: point.span) }
            coefficients = try builder.substituting(x0, for: x, in: coefficients)
        }
        try addOutput("taylor(\(of.text)/\(wrt.text))", coefficients, at: span, derivative: true)
    }

    // MARK: - Sizes

    mutating func checkSize(_ shape: Shape, at span: SourceSpan) throws {
        var count = 1
        for d in shape.dims {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= NablaProgram.maximumElements else {
                throw error("shape \(shape) has more than \(NablaProgram.maximumElements) elements", at: span)
            }
            count = product
        }
    }

    /// Reports `message` at `span` unless `condition` holds.
    mutating func require(_ condition: Bool, _ message: @autoclosure () -> String, at span: SourceSpan) throws {
        if !condition { throw error(message(), at: span) }
    }

    // MARK: - Names

    /// The names an unknown one is compared with for a suggestion.
    enum NameCandidates {
        /// Parameters in scope, bindings, inputs and dims.
        case values(in: Scope)
        case dims
    }

    /// An unknown name, with the nearest candidate as a suggestion.
    mutating func unknownName(_ name: Name, among candidates: NameCandidates = .values(in: [:])) -> Reported {
        if name.text == beingDefined {
            return error("\(name.quoted) is used in its own definition; a binding can only use names bound before it", at: name.span)
        }
        var near: String?
        if maySuggest(for: name.text) {
            switch candidates {
            case let .values(scope): near = suggestion(for: name.text, among: Array(scope.keys) + Array(values.keys) + Array(dims.keys))
            case .dims: near = suggestion(for: name.text, among: Array(dims.keys))
            }
        }
        return error("unknown name \(name.quoted)", at: name.span, label: near.map { "did you mean '\($0)'?" })
    }

    /// Unknown names past this many get no "did you mean": the search is quadratic in the
    /// name's length and linear in the names known, too slow for a file of thousands of errors.
    static let maximumSuggestions = 20
    /// Longest name a suggestion is looked for.
    static let maximumSuggestedNameLength = 64

    /// Whether a suggestion is looked for this unknown name (counting it if so).
    mutating func maySuggest(for name: String) -> Bool {
        guard suggestionsMade < Self.maximumSuggestions, name.utf8.count <= Self.maximumSuggestedNameLength else { return false }
        suggestionsMade += 1
        return true
    }

    /// The candidate nearest to an unknown name, as a likely typo.
    func suggestion(for name: String, among candidates: [String]) -> String? {
        nearestName(to: name, in: candidates.filter { $0.utf8.count <= 2 * Self.maximumSuggestedNameLength })
    }

    // MARK: - Expressions

    /// Runs a builder operation, turning a thrown `NablaError` into a diagnostic at `span`.
    mutating func apply(
        at span: SourceSpan, label: String? = nil, _ body: () throws -> Tensor,
        describe: () -> String
    ) throws -> Tensor {
        do {
            return try body()
        } catch let failure as NablaError {
            switch failure {
            case let .shapeMismatch(_, _, reason):
                throw error("\(describe()): \(reason)", at: span, label: label)
            case let .invalidArgument(_, reason):
                throw error(reason, at: span, label: label)
            default:
                throw error(failure.description, at: span, label: label)
            }
        }
    }
}
