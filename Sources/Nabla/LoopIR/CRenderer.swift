extension LoopIR {
    /// How generated C reaches Nabla's runtime functions.
    public enum RuntimeLinkage: Sendable {
        /// It does not: runtime functions it calls are defined in the C as static functions
        /// (standalone C, which needs nothing but libm).
        case standalone
        /// By name, linked by the loader (TinyCC's `tcc_add_symbol`).
        case byName
        /// Through pointer variables the C defines and the loader fills after `dlopen`
        /// (shared libraries built by the system compiler).
        case throughPointers
    }

    /// Why a program cannot be rendered.
    public enum RenderError: Error, Equatable, CustomStringConvertible {
        /// Standalone C would call this runtime function, which has no standalone definition.
        case noStandaloneForm(String)

        public var description: String {
            switch self {
            case let .noStandaloneForm(name): return "standalone C calls runtime function \(name), which has no standalone form"
            }
        }
    }

    /// The C99 translation unit for `program`: declarations of what it calls, its constants,
    /// its parts and its entry point.
    /// - Throws: `RenderError` when standalone C would call a runtime function that has no
    ///   standalone definition.
    public static func renderC(_ program: Program, runtime: RuntimeLinkage) throws -> String {
        var out = CText()
        for line in program.summary { out.line("/* \(commentSafe(line)) */") }
        out.line("/* Entry point: int \(program.name)(const double *const *inputs, double *const *outputs, void *workspace); */")
        out.line("/* Workspace: \(program.workspaceDoubles * 8) bytes. */")
        out.line("")
        let functions = functionsCalled(by: program.parts.flatMap(\.statements) + program.parts.flatMap(\.subprogramStatements))
        try writeDeclarations(of: functions, runtime: runtime, to: &out)
        for constant in program.constants { writeConstant(constant, to: &out) }
        out.line("")
        for part in program.parts { writeSubprograms(of: part, guardedConstants: false, to: &out) }
        writeParts(program, to: &out)
        return out.text
    }

    /// The subprograms `function` invokes, each a static function (with its constants) before
    /// the ones invoking it. `guardedConstants`: each constant inside `#ifndef`, for units.
    static func writeSubprograms(of function: Function, guardedConstants: Bool, to out: inout CText) {
        for sub in function.subprograms {
            out.line("/* Loop body \(sub.name): \(sub.inputCount) inputs, \(sub.outputCount) outputs, workspace \(sub.workspaceDoubles * 8) bytes. */")
            for constant in sub.constants {
                if guardedConstants {
                    out.line("#ifndef NABLA_DEFINED_\(name(.constant(constant.id)))")
                    out.line("#define NABLA_DEFINED_\(name(.constant(constant.id)))")
                }
                writeConstant(constant, to: &out)
                if guardedConstants { out.line("#endif") }
            }
            writeParts(sub, isStatic: true, to: &out)
        }
    }

    /// Prototypes of libm's and the runtime's functions (or the runtime's standalone forms) and
    /// the helpers' definitions. `guarded`: each inside `#ifndef`, so that several units that
    /// each carry it still make one valid file together, with nothing declared twice.
    static func writeDeclarations(of functions: [CFunction], runtime: RuntimeLinkage, guarded: Bool = false, to out: inout CText) throws {
        func write(_ f: CFunction, _ text: String) {
            if guarded { writeGuarded(f.name, text, to: &out) } else { out.line(text) }
        }
        for f in functions where f.origin == .libm { write(f, f.prototype) }
        for f in functions {
            guard case let .runtime(standalone) = f.origin else { continue }
            switch runtime {
            case .byName: write(f, f.prototype)
            case .throughPointers: write(f, f.pointerSlot)
            case .standalone:
                guard let definition = standalone else {
                    throw RenderError.noStandaloneForm(f.name)
                }
                write(f, definition)
            }
        }
        for f in functions { if case let .helper(definition) = f.origin { write(f, definition) } }
    }

    /// `text` unless an earlier part of the file wrote it under the same name.
    static func writeGuarded(_ name: String, _ text: String, to out: inout CText) {
        out.line("#ifndef NABLA_DEFINED_\(name)")
        out.line("#define NABLA_DEFINED_\(name)")
        out.line(text)
        out.line("#endif")
    }

    /// `static const double nabla_c<n>[count] = {...};`. Mostly +0.0 (an identity matrix, say): only
    /// the other elements are written, with designated initialisers (the rest of a static array
    /// is +0.0), so the C and its compile time grow with them, not with the whole tensor.
    static func writeConstant(_ constant: ConstantArray, to out: inout CText) {
        let scalars = constant.scalars
        let nonzero = scalars.indices.filter { scalars[$0].bitPattern != 0 }
        let sparse = scalars.count > 64 && nonzero.count * 4 < scalars.count
        let elements = sparse ? nonzero.map { "[\($0)] = \(cLiteral(scalars[$0]))" } : scalars.map(cLiteral)
        let body = stride(from: 0, to: elements.count, by: 8)
            .map { "    " + elements[$0..<min($0 + 8, elements.count)].joined(separator: ", ") }
            .joined(separator: ",\n")
        out.line("static const double nabla_c\(constant.id)[\(max(scalars.count, 1))] = {\n\(elements.isEmpty ? "    0.0" : body)\n};")
    }

    static func partPrototype(_ program: Program, _ k: Int) -> String {
        "void \(program.name)_part\(k)(const double *const *inputs, double *const *outputs, double *const ws)"
    }

    static let signature = "(const double *const *inputs, double *const *outputs, void *workspace)"

    private static func writeParts(_ program: Program, isStatic: Bool = false, to out: inout CText) {
        let entry = (isStatic ? "static int " : "int ") + "\(program.name)\(signature)"
        // A prototype before the definition keeps -Wmissing-prototypes quiet when this file is
        // compiled on its own.
        if program.parts.count == 1 {
            writeTasks(in: program.parts[0].statements, program, to: &out)
            out.line(entry + ";")
            out.line(entry + " {")
            out.indent += 1
            out.line("(void)inputs; (void)outputs; (void)workspace;")
            writeBody(program.parts[0], program, workspace: "(double *)workspace", to: &out)
            out.line("return 0;")
            out.indent -= 1
            out.line("}")
            out.line("")
            return
        }
        for (k, part) in program.parts.enumerated() {
            writeTasks(in: part.statements, program, to: &out)
            out.line("static void \(program.name)_part\(k)(const double *const *inputs, double *const *outputs, double *const ws) {")
            out.indent += 1
            out.line("(void)inputs; (void)outputs; (void)ws;")
            writeBody(part, program, workspace: nil, to: &out)
            out.indent -= 1
            out.line("}")
        }
        out.line(entry + ";")
        out.line(entry + " {")
        out.indent += 1
        out.line("double *const ws = (double *)workspace;")
        out.line("(void)ws;")
        for k in program.parts.indices { out.line("\(program.name)_part\(k)(inputs, outputs, ws);") }
        out.line("return 0;")
        out.indent -= 1
        out.line("}")
        out.line("")
    }

    /// The declarations of what a function uses, then its statements. `workspace` is the
    /// expression for `ws` when the function must define it itself.
    static func writeBody(_ function: Function, _ program: Program, workspace: String?, to out: inout CText) {
        writeBufferDeclarations(for: function.statements, program, workspace: workspace, to: &out)
        for v in function.scalars { out.line("double \(name(v));") }
        out.tasks = program.name
        for statement in function.statements { write(statement, to: &out) }
    }

    /// The pointers to the buffers `statements` use (outside the bodies of their parallel
    /// loops, which declare their own). `workspace` is the expression for `ws` when it must be
    /// defined here.
    private static func writeBufferDeclarations(for statements: [Statement], _ program: Program, workspace: String?, to out: inout CText) {
        var inputs = Set<Int>(), outputs = Set<Int>(), scratch = Set<Int>(), usesWorkspace = false, tasks = false
        func collect(_ statements: [Statement]) {
            visit(statements) { item in
                if case .statement(.parallel) = item { tasks = true }
                guard case let .buffer(buffer) = item else { return }
                switch buffer {
                case let .input(k): inputs.insert(k)
                case let .output(k): outputs.insert(k)
                case let .scratch(n): scratch.insert(n)
                case .workspace: usesWorkspace = true
                case .constant, .pointer, .partials: break
                }
            }
        }
        collect(statements)
        if tasks {
            // What only tasks use, they declare: a pointer declared here and not used would
            // be a warning (an error with -Werror).
            inputs = []; outputs = []; scratch = []
            collect(mapStatements(statements) { statement in
                guard case var .parallel(p) = statement else { return nil }
                p.body = []
                return .parallel(p)
            })
        }
        if let workspace, usesWorkspace || !scratch.isEmpty { out.line("double *const ws = \(workspace);") }
        for k in outputs.sorted() { out.line("double *const out\(k) = outputs[\(k)];") }
        for k in inputs.sorted() { out.line("const double *const in\(k) = inputs[\(k)];") }
        for n in scratch.sorted() { out.line("double *const b\(n) = ws + \(program.scratchOffsets[n] ?? 0);") }
    }

    // MARK: - Parallel loops

    /// The task function of every parallel loop in `statements`, with its context's type.
    static func writeTasks(in statements: [Statement], _ program: Program, to out: inout CText) {
        forEachParallelLoop(in: statements) { writeTask($0, program, to: &out) }
    }

    /// Calls `body` for every parallel loop in `statements`. Only statements are walked (no
    /// expressions), so the search costs little in kernels of a million statements.
    static func forEachParallelLoop(in statements: [Statement], _ body: (ParallelLoop) -> Void) {
        for statement in statements {
            switch statement {
            case let .parallel(p): body(p)
            case let .loop(loop): forEachParallelLoop(in: loop.body, body)
            case let .block(inner): forEachParallelLoop(in: inner, body)
            case let .ifElse(_, a, b):
                forEachParallelLoop(in: a, body)
                forEachParallelLoop(in: b, body)
            default: continue
            }
        }
    }

    /// `struct NAME_task<id>`, the context a parallel loop hands its blocks (the kernel's
    /// buffers, the values its body reads, the partial sums), and `NAME_task<id>(context, g)`,
    /// which runs block `g`.
    private static func writeTask(_ p: ParallelLoop, _ program: Program, to out: inout CText) {
        let task = "\(program.name)_task\(p.id)"
        let values = freeVariables(of: p)
        out.line("struct \(task) {")
        out.indent += 1
        out.line("const double *const *inputs;")
        out.line("double *const *outputs;")
        out.line("double *ws;")
        if !values.isEmpty { out.line("double values[\(values.count)];") }
        if p.partialCount > 0 { out.line("double partials[\(p.blocks * p.partialCount)];") }
        out.indent -= 1
        out.line("};")
        out.line("static void \(task)(void *context, long g) {")
        out.indent += 1
        out.line("struct \(task) *const nabla_x = (struct \(task) *)context;")
        out.line("const double *const *const inputs = nabla_x->inputs;")
        out.line("double *const *const outputs = nabla_x->outputs;")
        out.line("double *const ws = nabla_x->ws;")
        out.line("(void)inputs; (void)outputs; (void)ws;")
        if p.partialCount > 0 { out.line("double *const nabla_p = nabla_x->partials;") }
        writeBufferDeclarations(for: p.body, program, workspace: nil, to: &out)
        for (k, v) in values.enumerated() { out.line("const double \(name(v)) = nabla_x->values[\(k)];") }
        out.tasks = program.name
        for statement in p.body { write(statement, to: &out) }
        out.indent -= 1
        out.line("}")
    }

    /// The variables a parallel loop's body reads but does not declare, in order of first use:
    /// its task reads them from its context.
    static func freeVariables(of p: ParallelLoop) -> [Variable] {
        var declared = Set<Variable>(), seen = Set<Variable>(), result: [Variable] = []
        visit(p.body) { item in
            switch item {
            case let .statement(.declare(v, _, _)): declared.insert(v)
            case let .expression(.variable(v)), let .argument(.addressOf(v)), let .place(.variable(v)):
                if case .counter = v { return }
                if case .partial = v { return }
                if !declared.contains(v), seen.insert(v).inserted { result.append(v) }
            default: break
            }
        }
        return result
    }

    /// A parallel loop where it runs: its context filled, the blocks run, then `after`.
    private static func writeParallel(_ p: ParallelLoop, to out: inout CText) {
        let task = "\(out.tasks)_task\(p.id)"
        out.line("{")
        out.indent += 1
        out.line("struct \(task) nabla_x;")
        out.line("nabla_x.inputs = inputs;")
        out.line("nabla_x.outputs = outputs;")
        out.line("nabla_x.ws = ws;")
        for (k, v) in freeVariables(of: p).enumerated() { out.line("nabla_x.values[\(k)] = \(name(v));") }
        out.line("\(CFunction.parallel.name)(\(p.blocks), \(task), &nabla_x);")
        if !p.after.isEmpty {
            out.line("{")
            out.indent += 1
            if p.partialCount > 0 { out.line("const double *const nabla_p = nabla_x.partials;") }
            for statement in p.after { write(statement, to: &out) }
            out.indent -= 1
            out.line("}")
        }
        out.indent -= 1
        out.line("}")
    }

    // MARK: - Statements

    static func write(_ statement: Statement, to out: inout CText) {
        switch statement {
        case let .comment(text):
            out.line("/* \(commentSafe(text)) */")
        case let .declare(v, e, mutable):
            out.begin()
            out.append(mutable ? "double " : "const double ")
            out.append(name(v))
            out.append(" = ")
            write(e, to: &out)
            out.end(";")
        case let .assign(place, e), let .accumulate(place, e):
            out.begin()
            write(place, to: &out)
            if case .accumulate = statement { out.append(" += ") } else { out.append(" = ") }
            write(e, to: &out)
            out.end(";")
        case let .loop(loop):
            out.line(header(loop) + " {")
            writeIndented(loop.body, to: &out)
            out.line("}")
        case let .block(inner):
            out.line("{")
            writeIndented(inner, to: &out)
            out.line("}")
        case let .call(function, arguments):
            out.begin()
            writeCall(function, arguments, to: &out)
            out.end(";")
        case let .ifElse(condition, then, otherwise):
            out.begin()
            out.append("if (")
            write(condition, to: &out)
            out.end(") {")
            writeIndented(then, to: &out)
            if otherwise.isEmpty {
                out.line("}")
            } else {
                out.line("} else {")
                writeIndented(otherwise, to: &out)
                out.line("}")
            }
        case let .pointer(n, buffer, index, writable):
            out.line("\(writable ? "" : "const ")double *const p\(n) = \(address(buffer, index));")
        case let .counter(counter, start):
            out.line("long \(name(counter)) = \(start);")
        case let .invoke(invocation):
            out.line("{")
            out.indent += 1
            out.line("const double *nabla_in[\(max(invocation.inputs.count, 1))] = {\(invocation.inputs.isEmpty ? "0" : invocation.inputs.map(argumentText).joined(separator: ", "))};")
            out.line("double *nabla_out[\(max(invocation.outputs.count, 1))] = {\(invocation.outputs.isEmpty ? "0" : invocation.outputs.map(argumentText).joined(separator: ", "))};")
            out.line("\(invocation.function)(nabla_in, nabla_out, \(argumentText(invocation.workspace)));")
            out.indent -= 1
            out.line("}")
        case let .parallel(p):
            writeParallel(p, to: &out)
        }
    }

    private static func writeIndented(_ statements: [Statement], to out: inout CText) {
        out.indent += 1
        for statement in statements { write(statement, to: &out) }
        out.indent -= 1
    }

    private static func header(_ loop: Loop) -> String {
        let c = name(loop.counter)
        let condition = loop.width == 1 ? "\(c) < \(loop.end)" : "\(c) + \(loop.width) <= \(loop.end)"
        let increment = loop.step == 1 ? "\(c)++" : "\(c) += \(loop.step)"
        let initial = loop.start.map { "long \(c) = \($0)" } ?? ""
        return "for (\(initial); \(condition); \(increment))"
    }

    // MARK: - Expressions

    static func write(_ e: Expression, to out: inout CText) {
        switch e {
        case let .literal(value):
            out.append(literal: value)
        case let .variable(.counter(c)):
            // A counter (a C long) as a double: exact below 2^53, which no extent reaches.
            out.append("((double)" + name(c) + ")")
        case let .variable(v):
            write(v, to: &out)
        case let .load(buffer, index):
            write(buffer, to: &out)
            out.append("[")
            write(index, to: &out)
            out.append("]")
        case let .negate(a):
            out.append("(-")
            write(a, to: &out)
            out.append(")")
        case let .binary(op, a, b):
            out.append("(")
            write(a, to: &out)
            switch op {
            case .add: out.append(" + ")
            case .subtract: out.append(" - ")
            case .multiply: out.append(" * ")
            case .divide: out.append(" / ")
            }
            write(b, to: &out)
            out.append(")")
        case let .call(function, arguments):
            writeCall(function, arguments, to: &out)
        case let .select(condition, a, b):
            out.append("(")
            write(condition, to: &out)
            out.append(" ? ")
            write(a, to: &out)
            out.append(" : ")
            write(b, to: &out)
            out.append(")")
        }
    }

    private static func write(_ condition: Condition, to out: inout CText) {
        switch condition {
        case let .compare(op, a, b):
            write(a, to: &out)
            out.append(" \(op.rawValue) ")
            write(b, to: &out)
        case let .or(a, b), let .and(a, b):
            out.append("(")
            write(a, to: &out)
            if case .or = condition { out.append(" || ") } else { out.append(" && ") }
            write(b, to: &out)
            out.append(")")
        case let .not(a):
            out.append("!(")
            write(a, to: &out)
            out.append(")")
        }
    }

    private static func write(_ place: Place, to out: inout CText) {
        switch place {
        case let .variable(v): write(v, to: &out)
        case let .element(buffer, index): write(.load(buffer, index), to: &out)
        }
    }

    private static func writeCall(_ function: CFunction, _ arguments: [Argument], to out: inout CText) {
        out.append(function.name)
        out.append("(")
        for (k, argument) in arguments.enumerated() {
            if k > 0 { out.append(", ") }
            write(argument, to: &out)
        }
        out.append(")")
    }

    private static func write(_ argument: Argument, to out: inout CText) {
        switch argument {
        case let .value(e): write(e, to: &out)
        case let .integer(n): out.append(String(n))
        case let .address(buffer, index): out.append(address(buffer, index))
        case let .addressOf(v): out.append("&" + name(v))
        }
    }

    /// An argument's C text.
    private static func argumentText(_ argument: Argument) -> String {
        var out = CText()
        write(argument, to: &out)
        return out.text
    }

    // MARK: - Names

    private static func write(_ v: Variable, to out: inout CText) {
        switch v {
        case let .value(n, lane):
            out.append("v")
            out.append(n)
            if let lane {
                out.append("_")
                out.append(lane)
            }
        case let .scalar(n):
            out.append("s")
            out.append(n)
        case let .cached(n):
            out.append("a")
            out.append(n)
        default:
            out.append(name(v))
        }
    }

    private static func write(_ b: Buffer, to out: inout CText) {
        switch b {
        case let .input(k): out.append("in"); out.append(k)
        case let .output(k): out.append("out"); out.append(k)
        case let .scratch(n): out.append("b"); out.append(n)
        case .workspace: out.append("ws")
        case let .constant(n): out.append("nabla_c"); out.append(n)
        case let .pointer(n): out.append("p"); out.append(n)
        case .partials: out.append("nabla_p")
        }
    }

    /// `offset + i0 * s0 + i1 ...`, offset first and left out when zero.
    private static func write(_ index: Index, to out: inout CText) {
        var first = true
        if index.offset != 0 || index.terms.isEmpty {
            out.append(index.offset)
            first = false
        }
        for term in index.terms {
            if !first { out.append(" + ") }
            first = false
            out.append(name(term.counter))
            if term.stride != 1 {
                out.append(" * ")
                out.append(term.stride)
            }
        }
    }

    static func name(_ v: Variable) -> String {
        switch v {
        case let .value(n, lane): return lane.map { "v\(n)_\($0)" } ?? "v\(n)"
        case let .scalar(n): return "s\(n)"
        case let .carry(n, j): return "k\(n)_\(j)"
        case let .hoisted(n): return "h\(n)"
        case let .cached(n): return "a\(n)"
        case let .temporary(n): return "t\(n)"
        case let .partial(n): return "u\(n)"
        case let .counter(c): return name(c)
        }
    }

    static func name(_ c: Counter) -> String {
        switch c {
        case .flat: return "i"
        case let .axis(k): return "i\(k)"
        case .tail: return "q"
        case let .kept(k): return "o\(k)"
        case let .reduced(k): return "r\(k)"
        case .column: return "j"
        case .inner: return "p"
        case .step: return "k"
        case .block: return "g"
        }
    }

    static func name(_ b: Buffer) -> String {
        switch b {
        case let .input(k): return "in\(k)"
        case let .output(k): return "out\(k)"
        case let .scratch(n): return "b\(n)"
        case .workspace: return "ws"
        case let .constant(n): return "nabla_c\(n)"
        case let .pointer(n): return "p\(n)"
        case .partials: return "nabla_p"
        }
    }

    /// `offset + i0 * s0 + i1 ...`, offset first and left out when zero.
    static func render(_ index: Index) -> String {
        var parts: [String] = index.offset == 0 && !index.terms.isEmpty ? [] : [String(index.offset)]
        for term in index.terms {
            parts.append(term.stride == 1 ? name(term.counter) : "\(name(term.counter)) * \(term.stride)")
        }
        return parts.joined(separator: " + ")
    }

    static func address(_ buffer: Buffer, _ index: Index) -> String {
        index.offset == 0 && index.terms.isEmpty ? name(buffer) : "\(name(buffer)) + \(render(index))"
    }

    /// Comment text that cannot end the comment early.
    static func commentSafe(_ text: String) -> String {
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if previous == UInt8(ascii: "*") && byte == UInt8(ascii: "/") { return text.replacingOccurrences(of: "*/", with: "* /") }
            previous = byte
        }
        return text
    }
}

/// C text with indentation, built as bytes (kernels of large graphs write megabytes).
struct CText {
    private var bytes: [UInt8] = []
    var indent = 0
    /// The program whose statements are being written: its parallel loops' tasks are named
    /// after it.
    var tasks = ""
    /// C literals already written, by bit pattern (kernels repeat few constants many times).
    private var literals: [UInt64: [UInt8]] = [:]

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Appends a whole line at the current indentation.
    mutating func line(_ content: String) {
        begin()
        append(content)
        bytes.append(10)
    }

    /// Starts a line at the current indentation, to be continued with `append` and ended with
    /// `end`.
    mutating func begin() {
        for _ in 0..<indent { bytes.append(contentsOf: [32, 32, 32, 32]) }
    }

    mutating func append(_ content: String) { bytes.append(contentsOf: content.utf8) }

    mutating func end(_ content: String) {
        append(content)
        bytes.append(10)
    }

    /// A decimal integer.
    mutating func append(_ n: Int) {
        if n < 0 { bytes.append(45) }
        var magnitude = n.magnitude
        if magnitude < 10 { bytes.append(48 + UInt8(magnitude)); return }
        let start = bytes.count
        while magnitude > 0 {
            bytes.append(48 + UInt8(magnitude % 10))
            magnitude /= 10
        }
        bytes[start...].reverse()
    }

    mutating func append(literal value: Double) {
        if let known = literals[value.bitPattern] { bytes.append(contentsOf: known); return }
        let text = Array(cLiteral(value).utf8)
        literals[value.bitPattern] = text
        bytes.append(contentsOf: text)
    }
}

/// A C literal that reads back as exactly `value`.
///
/// Swift prints the shortest decimal that round-trips, which a C compiler parses to the same
/// double; negative values are parenthesised so they compose, non-finite ones are spelt as
/// constant expressions.
public func cLiteral(_ value: Double) -> String {
    if value.isNaN { return "(0.0 / 0.0)" }
    if value.isInfinite { return value > 0 ? "(1.0 / 0.0)" : "(-1.0 / 0.0)" }
    var text = value.magnitude.description
    if !text.contains(".") && !text.contains("e") { text += ".0" }
    return value.sign == .minus ? "(-\(text))" : text
}
