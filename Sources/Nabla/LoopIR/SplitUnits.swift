extension LoopIR {
    /// A program written as several C translation units, one per part and one for the entry
    /// point, for a compiler that links units in memory (TinyCC compiles one part's unit while
    /// the next part is lowered, so lowering and compiling overlap).
    ///
    /// Part `k` becomes an external function `NAME_part<k>` in a unit of its own that declares
    /// what it calls and defines the helpers and constants it reads; the entry unit declares
    /// the parts and calls them in order. Definitions two units share are guarded
    /// (`#ifndef NABLA_DEFINED_...`), so the units written one after another, parts first, are
    /// also one valid translation unit: the C a kernel keeps as its source.
    ///
    /// Made from the program's skeleton (its parts may be empty): parts are passed one at a time
    /// as they are lowered.
    public struct SplitUnits: Sendable {
        let program: Program
        let runtime: RuntimeLinkage
        private let constants: [Int: ConstantArray]

        /// Units for `program`'s name, buffers and constants.
        /// - Precondition: `runtime` is not `.throughPointers`, whose pointer slots are
        ///   definitions no two units may share.
        public init(_ program: Program, runtime: RuntimeLinkage) {
            precondition(runtime != .throughPointers, "split units declare runtime functions, not pointer slots")
            self.program = program
            self.runtime = runtime
            constants = Dictionary(program.constants.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        }

        /// The unit of part `k`: `function` as `NAME_part<k>`, after what it needs.
        /// - Throws: `RenderError` when standalone C would call a runtime function that has no
        ///   standalone definition.
        public func part(_ k: Int, _ function: Function) throws -> String {
            var out = CText()
            if k == 0 {
                for line in program.summary { out.line("/* \(commentSafe(line)) */") }
                out.line("/* Entry point: int \(program.name)\(signature); */")
                out.line("/* Workspace: \(program.workspaceDoubles * 8) bytes. */")
            }
            out.line("/* Part \(k). */")
            try writeDeclarations(of: functionsCalled(by: function.statements + function.subprogramStatements), runtime: runtime, guarded: true, to: &out)
            writeSubprograms(of: function, guardedConstants: true, to: &out)
            for id in constantsRead(by: function) {
                guard let constant = constants[id] else { continue }
                out.line("#ifndef NABLA_DEFINED_\(name(.constant(id)))")
                out.line("#define NABLA_DEFINED_\(name(.constant(id)))")
                writeConstant(constant, to: &out)
                out.line("#endif")
            }
            writeTasks(in: function.statements, program, to: &out)
            let prototype = partPrototype(program, k)
            writeGuarded("\(program.name)_part\(k)", prototype + ";", to: &out)
            out.line(prototype + " {")
            out.indent += 1
            out.line("(void)inputs; (void)outputs; (void)ws;")
            writeBody(function, program, workspace: nil, to: &out)
            out.indent -= 1
            out.line("}")
            return out.text
        }

        /// The entry point's unit: it calls parts `0..<partCount` in order.
        public func entry(partCount: Int) -> String {
            var out = CText()
            out.line("/* Entry point. */")
            for k in 0..<partCount { writeGuarded("\(program.name)_part\(k)", partPrototype(program, k) + ";", to: &out) }
            let entry = "int \(program.name)\(signature)"
            out.line(entry + ";")
            out.line(entry + " {")
            out.indent += 1
            out.line("double *const ws = (double *)workspace;")
            out.line("(void)ws;")
            for k in 0..<partCount { out.line("\(program.name)_part\(k)(inputs, outputs, ws);") }
            out.line("return 0;")
            out.indent -= 1
            out.line("}")
            return out.text
        }

        private func constantsRead(by function: Function) -> [Int] {
            var ids = Set<Int>()
            visit(function.statements) { item in
                if case let .buffer(.constant(id)) = item { ids.insert(id) }
            }
            return ids.sorted()
        }
    }
}
