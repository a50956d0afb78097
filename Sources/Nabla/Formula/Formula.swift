/// A tensor written as a formula in matrix notation: what `nabla derive` prints.
///
/// A formula is its result (an expression over the graph's inputs) and the named definitions
/// the result refers to: the file's bindings (unless expanded) and intermediates named because
/// they are large, deep or used more than once. Render it as readable Unicode, as LaTeX, or as
/// NumPy code that computes the same array:
///
/// ```swift
/// let program = try NablaProgram(source: text, fileName: "fit.nabla")
/// for formula in try program.derivativeFormulas() {
///     print(formula.rendered(.text))    // dL/dtheta = -eᵀΦ    [3]
/// }
/// ```
public struct Formula: Sendable {
    /// The ways a formula is printed.
    public enum Format: String, CaseIterable, Sendable {
        /// Unicode matrix notation: Xᵀ, X⁻¹, ⊙, 𝟙, tr, det, with the result's shape.
        case text
        /// LaTeX for a document.
        case latex
        /// Python lines with NumPy (`import numpy as np`) that bind the result to a variable
        /// named like the output (characters other than letters, digits and `_` become `_`),
        /// given arrays bound to the inputs' names.
        case numpy
    }

    /// What the formula's left-hand side says.
    public enum Subject: Sendable {
        /// A tensor of that name.
        case named(String)
        /// A derivative output of a program.
        case derivative(name: String, kind: DerivativeKind, of: String, wrt: String, along: String?)
    }

    /// The output's name.
    public var name: String {
        switch subject {
        case let .named(n), let .derivative(n, _, _, _, _): return n
        }
    }
    /// What the formula is of.
    public let subject: Subject
    /// The Python variable the NumPy form binds the result to: the name with characters other
    /// than letters, digits and `_` replaced by `_`, and `_` appended while that is taken by
    /// an input, a binding or an earlier output of the program.
    public var numpyName: String { numpyTarget ?? Formula.pythonIdentifier(name) }
    var numpyTarget: String?
    /// The result's shape.
    public var shape: Shape { result.shape }

    let result: Term
    /// Named terms the result refers to, each before its first use.
    let definitions: [Definition]
    /// For a Jacobian with no matrix formula: the formula is J applied to this direction
    /// (a symbol shaped like the variable), and the layout to stack the columns in.
    let directional: (direction: String, variable: Shape, layout: JacobianLayout)?

    init(subject: Subject, result: Term, definitions: [Definition], directional: (String, Shape, JacobianLayout)? = nil) {
        self.subject = subject
        self.result = result
        self.directional = directional
        self.definitions = Formula.used(definitions, by: result)
    }

    /// The formula of a tensor of a builder, in terms of the builder's inputs.
    /// - Parameters:
    ///   - tensor: the tensor.
    ///   - name: the name its line gives it.
    ///   - bindings: tensors written by name where they occur (as a file's bindings are).
    /// - Throws: `NablaError.invalidArgument` for an operation with no formula.
    public init(_ tensor: Tensor, name: String, bindings: [String: Tensor] = [:]) throws {
        let builder = tensor.builder
        var terms = GraphTerms(
            nodes: builder.nodes, inputNames: GraphTerms.names(of: builder.inputPorts),
            bindingNames: Dictionary(bindings.map { ($0.value.id, $0.key) }, uniquingKeysWith: { a, _ in a }))
        let result = try terms.term(of: tensor.id)
        self.init(subject: .named(name), result: Algebra.oriented(result, row: false), definitions: terms.definitions)
    }

    /// The definitions the result needs, directly or through other definitions.
    private static func used(_ definitions: [Definition], by result: Term) -> [Definition] {
        var needed = Set<String>()
        result.collectSymbols(into: &needed)
        var kept: [Definition] = []
        for definition in definitions.reversed() where needed.contains(definition.name) {
            kept.append(definition)
            definition.term.collectSymbols(into: &needed)
        }
        return kept.reversed()
    }

    /// The formula printed in `format`: one line per definition and one for the result.
    public func rendered(_ format: Format) -> String {
        switch format {
        case .text: return renderedNotation(NotationRenderer(latex: false))
        case .latex: return renderedNotation(NotationRenderer(latex: true))
        case .numpy: return renderedNumPy()
        }
    }
}
