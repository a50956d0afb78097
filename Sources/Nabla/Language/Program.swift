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

    /// Layout of the file's `jacobian` outputs.
    public let jacobianLayout: JacobianLayout
    /// Each top-level binding's node in the builder (`DerivativeOutput`'s nodes), for formulas.
    let bindingNodes: [(name: String, node: Int)]
    /// The names of the file's top-level bindings (outputs defined with `output f = ...`
    /// included), in the order they are defined: what formulas may write by name.
    public var bindingNames: [String] { bindingNodes.map(\.name) }
    /// Every node built, when no derivative output holds them already.
    let builtGraph: Graph?

    /// Largest element count one tensor may have (2^28, 2 GiB of doubles), so no file can make Nabla allocate
    /// without bound.
    public static let maximumElements = 1 << 28

    /// Longest graph file read (256 MiB), so reading an endless file ends.
    public static let maximumFileSize = 1 << 28

    /// Parses and elaborates a graph file.
    /// - Parameters:
    ///   - source: the file's text.
    ///   - fileName: the name diagnostics give the file.
    ///   - overrides: values overriding the file's `dim` declarations by name.
    ///   - jacobianLayout: layout of `jacobian` outputs: numerator (shape(e) + shape(x), the
    ///     default) or denominator (the transpose).
    /// - Throws: `SourceErrors` with every diagnostic found (syntax errors, unknown names,
    ///   shape errors, ...), or `NablaError.unknownName` for an override naming no dim.
    public init(source: String, fileName: String, dims overrides: [String: Int] = [:], jacobianLayout: JacobianLayout = .numerator) throws {
        try self.init(file: SourceFile(name: fileName, text: source), dims: overrides, jacobianLayout: jacobianLayout)
    }

    /// Parses and elaborates a graph file given as its bytes, which must be UTF-8 text.
    /// - Throws: as `init(source:fileName:dims:jacobianLayout:)`; `SourceErrors` with the line
    ///   and column of the first byte that is not UTF-8, if there is one.
    public init(bytes: [UInt8], fileName: String, dims overrides: [String: Int] = [:], jacobianLayout: JacobianLayout = .numerator) throws {
        let (file, invalid) = SourceFile.decoding(bytes, name: fileName)
        if let invalid { throw SourceErrors(file: file, diagnostics: [invalid]) }
        try self.init(file: file, dims: overrides, jacobianLayout: jacobianLayout)
    }

    /// Reads and compiles a graph file. The path may name a pipe or a device (`/dev/stdin`): it
    /// is read to its end.
    /// - Throws: `SourceErrors` whose `readFailure` says why the file could not be read;
    ///   otherwise as `init(bytes:fileName:dims:jacobianLayout:)`.
    public init(contentsOfFile path: String, dims overrides: [String: Int] = [:], jacobianLayout: JacobianLayout = .numerator) throws {
        let bytes: [UInt8]
        do {
            bytes = try TensorText.readFile(atPath: path, byteLimit: NablaProgram.maximumFileSize)
        } catch let failure as FileReadError {
            throw SourceErrors(unreadable: path, reason: failure.reason)
        }
        try self.init(bytes: bytes, fileName: path, dims: overrides, jacobianLayout: jacobianLayout)
    }

    private init(file: SourceFile, dims overrides: [String: Int], jacobianLayout: JacobianLayout) throws {
        let parsed = Parser.parseFile(file)
        var elaborator = Elaborator(file: file, overrides: overrides, jacobianLayout: jacobianLayout)
        elaborator.diagnostics = parsed.diagnostics
        elaborator.poison(parsed.failedNames)
        elaborator.run(parsed.statements)
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
        // Every node built, shared by the derivatives' functions, which are pruned only when
        // asked for (by `nabla check`): a million-node file is not pruned once per directive.
        let built = Graph(nodes: elaborator.builder.nodes, inputs: elaborator.builder.inputPorts, outputs: [], isHashConsed: true)
        derivatives = elaborator.derivativeSources.map { source in
            DerivativeOutput(
                name: source.output, built: built, functionNode: source.function.id,
                variable: source.wrt, direction: source.along, layout: source.layout,
                kind: source.kind, functionName: source.of, variableNode: source.variable.id, resultNode: source.result.id)
        }
        bindingNodes = elaborator.bindingNodes
        builtGraph = derivatives.isEmpty ? built : nil
        self.jacobianLayout = jacobianLayout
        self.file = file
        self.dims = declared.map { ($0, elaborator.dims[$0]!) }
        self.inputSpans = elaborator.inputSpans
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
    /// Every node of the program's builder, and which of them is the differentiated function.
    let built: Graph
    let functionNode: Int
    /// Which directive made the output.
    public let kind: DerivativeKind
    /// The name of the differentiated binding (for Hessians and HVPs: of the scalar, whose
    /// gradient `function` is).
    public let functionName: String
    /// The nodes of the variable and of the output itself in `built`.
    let variableNode: Int
    let resultNode: Int

    /// A graph with the same inputs and one output `f`, the differentiated function.
    public var function: Graph {
        Graph(nodes: built.nodes, inputs: built.inputs, outputs: [Graph.Port(name: "f", node: functionNode)], isHashConsed: built.isHashConsed).pruned()
    }
    /// The input (or binding) differentiated with respect to.
    public let variable: String
    /// The input holding the direction, for jvp and hvp.
    public let direction: String?
    /// For partial derivatives: whether the output is laid out function-major (numerator) or
    /// variable-major (denominator).
    public let layout: JacobianLayout

    init(name: String, built: Graph, functionNode: Int, variable: String, direction: String?, layout: JacobianLayout,
         kind: DerivativeKind, functionName: String, variableNode: Int, resultNode: Int) {
        self.kind = kind
        self.functionName = functionName
        self.variableNode = variableNode
        self.resultNode = resultNode
        self.name = name
        self.built = built
        self.functionNode = functionNode
        self.variable = variable
        self.direction = direction
        self.layout = layout
    }
}
