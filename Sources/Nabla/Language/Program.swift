/// A graph file compiled to a graph: the front end's result.
///
/// ```swift
/// let program = try NablaProgram(source: text, fileName: "model.nabla", dims: ["N": 1000])
/// let kernel = try Kernel(program.graph)
/// ```
public struct NablaProgram: Sendable {
    /// The source the program came from.
    public let file: SourceFile
    /// The graph: inputs in declaration order; outputs in the order the file produces them,
    /// derivative outputs after the others in directive order.
    public let graph: Graph
    /// Every dim with its final value (overrides applied), in declaration order.
    public let dims: [(name: String, value: Int)]
    /// Source span of each graph input's declaration, by input name.
    public let inputSpans: [String: SourceSpan]
    /// What each derivative output is the derivative of, for checking against finite
    /// differences; in output order.
    public let derivatives: [DerivativeOutput]
    /// The graph of the outputs that are not derivatives.
    public var forwardGraph: Graph {
        let derived = Set(derivatives.map(\.name))
        var copy = graph
        copy.outputs = graph.outputs.filter { !derived.contains($0.name) }
        return copy.pruned()
    }

    /// Largest element count one tensor may have (2^28, 2 GiB of doubles), so no file can make Nabla allocate
    /// without bound.
    public static let maximumElements = 1 << 28

    /// Parses and elaborates a graph file.
    /// - Parameters:
    ///   - dims: values overriding the file's `dim` declarations by name.
    /// - Throws: `SourceErrors` with every diagnostic found (syntax errors, unknown names,
    ///   shape errors, ...), or `NablaError.unknownName` for an override naming no dim.
    ///   - jacobianLayout: layout of `jacobian` outputs: numerator (shape(e) + shape(x), the
    ///     default) or denominator (the transpose).
    public init(source: String, fileName: String, dims overrides: [String: Int] = [:], jacobianLayout: JacobianLayout = .numerator) throws {
        let file = SourceFile(name: fileName, text: source)
        var lexer = Lexer(file: file)
        let tokens = lexer.tokenize()
        var parser = Parser(tokens: tokens)
        let statements = parser.parseProgram()
        var elaborator = Elaborator(file: file, overrides: overrides, jacobianLayout: jacobianLayout)
        elaborator.diagnostics = (lexer.diagnostics + parser.diagnostics).sorted { $0.span.start < $1.span.start }
        elaborator.poison(parser.failedNames)
        elaborator.run(statements)
        let declared = elaborator.dimOrder
        for name in overrides.keys.sorted() where !declared.contains(name) {
            throw NablaError.unknownName(kind: "dim", name: name, known: declared)
        }
        guard !elaborator.diagnostics.contains(where: { $0.severity == .error }) else {
            throw SourceErrors(file: file, diagnostics: elaborator.diagnostics)
        }
        do {
            graph = try elaborator.builder.graph(outputs: elaborator.outputs.map { ($0.name, $0.tensor) })
        } catch {
            throw SourceErrors(file: file, diagnostics: [Diagnostic("\(error)", at: SourceSpan(start: 0, end: 0))])
        }
        derivatives = try elaborator.derivativeSources.map { source in
            DerivativeOutput(
                name: source.output, function: try elaborator.builder.graph(outputs: [("f", source.function)]),
                variable: source.wrt, direction: source.along, layout: source.layout)
        }
        self.file = file
        self.dims = declared.map { ($0, elaborator.dims[$0]!) }
        self.inputSpans = elaborator.inputSpans
    }

    /// Reads and compiles a graph file from disk.
    public init(contentsOfFile path: String, dims overrides: [String: Int] = [:], jacobianLayout: JacobianLayout = .numerator) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw NablaError.invalidArgument(op: "read", reason: "cannot read '\(path)' as UTF-8 text")
        }
        try self.init(source: text, fileName: path, dims: overrides, jacobianLayout: jacobianLayout)
    }
}

import Foundation

/// A derivative output of a program and what it is the derivative of.
///
/// Without a direction, the output holds the partial derivatives of every element of
/// `function`'s output with respect to every element of `variable` (shape: function's shape +
/// variable's shape). With one, it holds the directional derivative along input `direction`
/// (the function's shape).
public struct DerivativeOutput: Sendable {
    /// Name of the output.
    public let name: String
    /// A graph with the same inputs and one output, the differentiated function.
    public let function: Graph
    /// The input (or binding) differentiated with respect to.
    public let variable: String
    /// The input holding the direction, for jvp and hvp.
    public let direction: String?
    /// For partial derivatives: whether the output is laid out function-major (numerator) or
    /// variable-major (denominator).
    public let layout: JacobianLayout
}
