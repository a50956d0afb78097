/// Options for C emission.
public struct CEmitOptions: Sendable {
    /// Name of the kernel function; mangled into a C identifier.
    public var functionName: String
    /// Call Nabla's optimised runtime (`nabla_matmul`) for heavy products instead of inlining
    /// loops. JIT kernels do; standalone C does not, so it needs nothing but libm.
    public var useRuntime: Bool

    /// How generated C reaches runtime functions when `useRuntime` is set: by name (TinyCC
    /// links them), or through pointer variables the C defines and the loader fills after
    /// `dlopen` (shared libraries built by the system compiler).
    public var runtimeThroughPointers = false
    /// Simplify the graph first (constant folding, IEEE-safe algebraic rewrites, common
    /// subexpressions, dead code). Results are unchanged bit for bit.
    public var simplify: Bool
    /// Options for the simplifier (fast-math rewrites are off by default).
    public var simplifyOptions: SimplifyOptions
    /// At most this many copies of a fused loop's body per iteration (1: loops stay rolled).
    /// For compilers that do not unroll or keep values in registers across statements, such
    /// as TinyCC; results are the same bit for bit either way.
    public var unroll: Int = 1

    public init(functionName: String = "nabla_kernel", useRuntime: Bool = false, simplify: Bool = true, simplifyOptions: SimplifyOptions = SimplifyOptions()) {
        self.functionName = functionName
        self.useRuntime = useRuntime
        self.simplify = simplify
        self.simplifyOptions = simplifyOptions
    }

    /// Self-contained C99 that needs only libm.
    public static let standalone = CEmitOptions()
}

/// Generated C for one graph, and what a caller needs to know to call it.
public struct CKernelSource: Sendable {
    /// The C translation unit.
    public let code: String
    /// The mangled name of the entry point
    /// `int NAME(const double *const *inputs, double *const *outputs, void *workspace)`.
    public let functionName: String
    /// Bytes of scratch memory the entry point needs at `workspace` (0: it may be NULL).
    public let workspaceBytes: Int
    /// Shapes of the inputs, in the order the entry point takes them.
    public let inputShapes: [Shape]
    /// Shapes of the outputs, in the order the entry point writes them.
    public let outputShapes: [Shape]
}

/// Writes one C99 function computing every output of `graph`.
///
/// The entry point is `int NAME(const double *const *inputs, double *const *outputs,
/// void *workspace)`: `inputs[i]` points at input `i`'s elements (row-major) in declaration
/// order, `outputs[j]` at room for output `j`'s, and `workspace` at `workspaceBytes` bytes of
/// scratch aligned to 8 bytes, which only one call may use at a time. Output buffers must not
/// overlap inputs or each other. It returns 0. The function keeps no state of its own, so
/// calls with separate workspaces may run concurrently.
///
/// No text from the graph's names reaches the C: identifiers are derived from node indices.
public func emitC(_ graph: Graph, options: CEmitOptions = .standalone) throws -> CKernelSource {
    try checkFunctionName(options.functionName)
    let graph = (options.simplify ? try simplify(graph, options: options.simplifyOptions) : graph).scheduledLate()
    let nodes = graph.nodes
    let count = nodes.count
    let storage = StoragePlan(graph: graph, carryPads: options.unroll > 1)
    let fusion = storage.fusion, outputNode = storage.outputNode, inputIndex = storage.inputIndex, plan = storage.memory
    // Inputs nothing reads get no local pointer, so strict compilers see no unused variable.
    var isRead = [Bool](repeating: false, count: count)
    for (i, node) in nodes.enumerated() {
        for operand in node.inputs { isRead[operand] = true }
        if let base = fusion.access[i]?.base, base != i { isRead[base] = true }
    }
    for port in graph.outputs { isRead[port.node] = true }

    let constants = CWriter()
    let declarations = CWriter()
    declarations.indent = 1
    var values: [CValue] = []
    values.reserveCapacity(count)
    for (i, node) in nodes.enumerated() {
        let shape = node.shape
        if let k = inputIndex[i] {
            let name = "in\(k)"
            if isRead[i] { declarations.line("const double *const \(name) = inputs[\(k)];") }
            values.append(CValue(shape: shape, storage: shape.rank == 0 ? .local("\(name)[0]") : .pointer(name)))
        } else if let constant = node.operation as? Constant {
            if shape.rank == 0 {
                values.append(CValue(shape: shape, storage: .literal(cLiteral(constant.value.scalar))))
            } else {
                let name = "c\(i)"
                let scalars = constant.value.scalars
                let nonzero = scalars.indices.filter { scalars[$0].bitPattern != 0 }
                // Mostly +0.0 (an identity matrix, say): only the other elements are written,
                // with designated initialisers (the rest of a static array is +0.0), so the C
                // and its compile time grow with them, not with the whole tensor.
                let sparse = scalars.count > 64 && nonzero.count * 4 < scalars.count
                let elements = sparse ? nonzero.map { "[\($0)] = \(cLiteral(scalars[$0]))" } : scalars.map(cLiteral)
                let body = stride(from: 0, to: elements.count, by: 8)
                    .map { "    " + elements[$0..<min($0 + 8, elements.count)].joined(separator: ", ") }
                    .joined(separator: ",\n")
                constants.line("static const double \(name)[\(max(scalars.count, 1))] = {\n\(elements.isEmpty ? "    0.0" : body)\n};")
                values.append(CValue(shape: shape, storage: .pointer(name)))
            }
        } else if let k = outputNode[i] {
            values.append(CValue(shape: shape, storage: .pointer("out\(k)")))
        } else if let offset = plan.offsets[i] {
            let name = "b\(i)"
            declarations.line("double *const \(name) = ws + \(offset);")
            values.append(CValue(shape: shape, storage: .pointer(name)))
        } else if fusion.materialized[i] {
            let name = "s\(i)"
            declarations.line("double \(name);")
            values.append(CValue(shape: shape, storage: .local(name)))
        } else {
            // Never stored: read through its access, or computed inside its group's loop.
            values.append(CValue(shape: shape, storage: .pointer("/* %\(i) is not stored */")))
        }
    }

    let body = CWriter()
    body.indent = 1
    let emitter = FusedEmitter(graph: graph, fusion: fusion, values: values, writer: body, unroll: options.unroll)
    for (i, node) in nodes.enumerated() where inputIndex[i] == nil && !(node.operation is Constant) {
        if let g = fusion.group[i] {
            if fusion.groups[g].point == i { emitter.emitGroup(g) }
            continue
        }
        if node.operation is any StridedView {
            if fusion.materialized[i] { emitter.emitViewCopy(i) }
            continue
        }
        body.line("/* %\(i) = \(node.operation.name)(\(node.inputs.map { "%\($0)" }.joined(separator: ", "))) \(node.shape) */")
        for operand in node.inputs where !fusion.materialized[operand] {
            throw NablaError.compilation(message: "operand %\(operand) of %\(i) was not stored (a Nabla bug)", line: nil, sourceLine: nil)
        }
        let cnode = CNode(
            output: values[i], inputs: node.inputs.map { values[$0] }, useRuntime: options.useRuntime, writer: body)
        if node.shape.count <= 1 {
            try node.operation.emitC(cnode)
        } else {
            // A block per node keeps loop variables and temporaries local to it.
            try body.block("") { try node.operation.emitC(cnode) }
        }
    }
    for (k, port) in graph.outputs.enumerated() where outputNode[port.node] != k {
        let source = values[port.node]
        let target = CValue(shape: source.shape, storage: .pointer("out\(k)"))
        body.line("/* output \(k) = %\(port.node) */")
        let copy = CNode(output: target, inputs: [source], useRuntime: false, writer: body)
        copy.gather(offset: 0, strides: source.shape.strides)
    }

    let function = cIdentifier(options.functionName)
    var lines: [String] = []
    lines.append("/* Generated by Nabla: \(graph.inputs.count) inputs, \(graph.outputs.count) outputs, \(count) nodes. */")
    lines.append("/* Entry point: int \(function)(const double *const *inputs, double *const *outputs, void *workspace); */")
    lines.append("/* Workspace: \(plan.size * 8) bytes. */")
    lines.append("")
    let bodyText = body.text
    let libm = ["sqrt", "exp", "log", "log1p", "sin", "cos", "tan", "tanh", "pow", "fabs"]
    // Helpers may call other helpers and libm: take what the body uses, then what those use,
    // until nothing is added. They are written in `CHelper.all` order, callees first.
    // One scan of the body for the functions it calls: large graphs write megabytes of C.
    let bodyCalls = calledFunctions(in: bodyText)
    var usedHelpers: [CHelper] = []
    var called = bodyCalls
    while true {
        let next = CHelper.all.filter { $0.isUsed(by: called) }
        if next.count == usedHelpers.count { break }
        usedHelpers = next
        called = usedHelpers.reduce(into: bodyCalls) { $0.formUnion(calledFunctions(in: $1.code)) }
    }
    var runtimeDeclarations: [String] = []
    if options.useRuntime && bodyCalls.contains("nabla_matmul") {
        runtimeDeclarations.append("void nabla_matmul(long m, long k, long n, const double *A, const double *B, double *C);")
    }
    for fn in libm where called.contains(fn) {
        lines.append(fn == "pow" ? "double pow(double, double);" : "double \(fn)(double);")
    }
    var helperDefinitions: [String] = []
    for helper in usedHelpers {
        if options.useRuntime, let prototypes = helper.runtimePrototypes {
            runtimeDeclarations.append(prototypes)
        } else {
            helperDefinitions.append(helper.code)
        }
    }
    for declaration in runtimeDeclarations {
        let prototypes = declaration.split(separator: "\n").map(String.init)
        lines.append(contentsOf: options.runtimeThroughPointers ? prototypes.map(runtimePointerSlot) : prototypes)
    }
    lines.append(contentsOf: helperDefinitions)
    if !constants.lines.isEmpty { lines.append(contentsOf: constants.lines) }
    lines.append("")
    // A prototype before the definition keeps -Wmissing-prototypes quiet when this file is
    // compiled on its own.
    lines.append("int \(function)(const double *const *inputs, double *const *outputs, void *workspace);")
    lines.append("int \(function)(const double *const *inputs, double *const *outputs, void *workspace) {")
    lines.append("    (void)inputs; (void)outputs; (void)workspace;")
    if plan.offsets.contains(where: { $0 != nil }) { lines.append("    double *const ws = (double *)workspace;") }
    for (k, _) in graph.outputs.enumerated() { lines.append("    double *const out\(k) = outputs[\(k)];") }
    lines.append(contentsOf: declarations.lines)
    lines.append(bodyText)
    lines.append("    return 0;")
    lines.append("}")
    lines.append("")
    return CKernelSource(
        code: lines.joined(separator: "\n"), functionName: function, workspaceBytes: plan.size * 8,
        inputShapes: graph.inputShapes, outputShapes: graph.outputShapes)
}

/// Names of the functions C text calls: every identifier followed (after optional spaces) by
/// an opening parenthesis, found in one pass over the bytes.
func calledFunctions(in text: String) -> Set<String> {
    var names = Set<String>()
    var utf8 = Array(text.utf8)
    utf8.append(0)
    var i = 0
    func isIdentifier(_ c: UInt8, first: Bool) -> Bool {
        (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 || (!first && c >= 48 && c <= 57)
    }
    while i < utf8.count - 1 {
        guard isIdentifier(utf8[i], first: true), i == 0 || !isIdentifier(utf8[i - 1], first: false) else {
            i += 1
            continue
        }
        let start = i
        while isIdentifier(utf8[i], first: false) { i += 1 }
        var j = i
        while utf8[j] == 32 { j += 1 }
        if utf8[j] == 40 { names.insert(String(decoding: utf8[start..<i], as: UTF8.self)) }
    }
    return names
}

/// Prefix of the pointer variable that stands for runtime function `name` in C reaching the
/// runtime through pointers. A name of its own, so the host's exported runtime symbol never
/// interposes on it.
let runtimeSlotPrefix = "nabla_slot_"

/// `T name(args);` as a pointer variable `T (*nabla_slot_name)(args) = 0;` and a macro that
/// keeps calls' syntax; the loader stores the runtime function's address in the variable.
func runtimePointerSlot(_ prototype: String) -> String {
    guard let open = prototype.firstIndex(of: "(") else { return prototype }
    let head = prototype[..<open]
    guard let space = head.lastIndex(of: " ") else { return prototype }
    let name = head[head.index(after: space)...]
    var rest = String(prototype[open...]).trimmingCharacters(in: .whitespaces)
    if rest.hasSuffix(";") { rest.removeLast() }
    return "\(head[..<space]) (*\(runtimeSlotPrefix)\(name))\(rest) = 0;\n#define \(name) \(runtimeSlotPrefix)\(name)"
}

/// Where every node of a graph lives in the generated C: fused or stored, in an output, an
/// input, or the workspace.
struct StoragePlan {
    let fusion: FusionPlan
    /// Which output each node is computed into, if any.
    let outputNode: [Int?]
    /// Which input each node is, if any.
    let inputIndex: [Int?]
    let memory: MemoryPlan

    init(graph: Graph, carryPads: Bool) {
        let nodes = graph.nodes
        let count = nodes.count
        let fusion = FusionPlan(graph: graph, carryPads: carryPads)
        self.fusion = fusion
        var outputNode = [Int?](repeating: nil, count: count)
        var inputIndex = [Int?](repeating: nil, count: count)
        for (k, port) in graph.inputs.enumerated() { inputIndex[port.node] = k }
        for (k, port) in graph.outputs.enumerated() {
            let node = nodes[port.node]
            if node.shape.rank > 0, outputNode[port.node] == nil, !(node.operation is Input), !(node.operation is Constant) {
                outputNode[port.node] = k
            }
        }
        let needsBuffer = (0..<count).map { i in
            fusion.materialized[i] && nodes[i].shape.rank > 0 && outputNode[i] == nil && inputIndex[i] == nil
                && !(nodes[i].operation is Constant)
        }
        memory = MemoryPlan(graph: graph, needsBuffer: needsBuffer, point: fusion.point, lastUse: fusion.lastUse)
        self.outputNode = outputNode
        self.inputIndex = inputIndex
    }
}

/// Small static functions the generated C defines when it uses them. Each mirrors the
/// interpreter's Swift definition operation for operation, so both round the same way.
///
/// A helper may call helpers listed before it in `all` (they are defined in that order).
/// Operations keep their own helpers next to their Swift definition (`linearAlgebra`).
struct CHelper {
    /// The functions it defines; it is included when the C calls any of them.
    let names: [String]
    let code: String
    /// For functions Nabla's runtime also provides (compiled with optimisation): their
    /// prototypes, written instead of `code` in JIT kernels, which call the runtime.
    var runtimePrototypes: String?

    init(name: String, code: String) {
        names = [name]
        self.code = code
    }

    init(names: [String], code: String, runtimePrototypes: String?) {
        self.names = names
        self.code = code
        self.runtimePrototypes = runtimePrototypes
    }

    /// True when one of its functions is in `calls` (names of called functions).
    func isUsed(by calls: Set<String>) -> Bool { names.contains { calls.contains($0) } }

    static let all = elementwise + linearAlgebra

    static let elementwise = [
        CHelper(name: "nabla_sigmoid", code: """
            static double nabla_sigmoid(double x) {
                double e;
                if (x >= 0) return 1.0 / (1.0 + exp(-x));
                e = exp(x);
                return e / (1.0 + e);
            }
            """),
        CHelper(name: "nabla_relu", code: "static double nabla_relu(double x) { return x < 0 ? 0.0 : x; }"),
        CHelper(name: "nabla_softplus", code: """
            static double nabla_softplus(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }
            """),
        CHelper(name: "nabla_step", code: "static double nabla_step(double x) { return x > 0 ? 1.0 : (x != x ? x : 0.0); }"),
        CHelper(name: "nabla_sign", code: """
            static double nabla_sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : (x != x ? x : 0.0)); }
            """),
    ]
}
