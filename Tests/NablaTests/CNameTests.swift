import Foundation
import Testing
@testable import Nabla

/// Function names of emitted C, and the macro prefixes of their headers.
@Suite("C function names")
struct CNameTests {
    private func seedGraph() throws -> Graph {
        let g = GraphBuilder()
        let x = try g.input("x")
        return try g.graph(outputs: ["y": exp(x) * 2])
    }

    @Test func emitCRefusesNamesThatGiveBrokenC() throws {
        let graph = try seedGraph()
        for name in ["int", "return", "main", "exp", "sqrt", "printf", "typeof", "class", "linux", "_x", "3d", ""] {
            #expect(throws: NablaError.self, "name '\(name)'") { try emitC(graph, options: CEmitOptions(functionName: name)) }
        }
        for name in ["nabla_kernel", "seed", "Exp", "INT", "mainLoop", "c", "cx", "c1", "c1x", "nablaCCKernel12", "my-model"] {
            #expect(throws: Never.self, "name '\(name)'") { try emitC(graph, options: CEmitOptions(functionName: name)) }
        }
    }

    @Test func messagesSayWhatTheNameCollidesWith() {
        func reason(_ name: String) -> String? {
            do {
                try checkFunctionName(name)
                return nil
            } catch let NablaError.invalidArgument(_, reason) {
                return reason
            } catch {
                return "\(error)"
            }
        }
        #expect(reason("int") == "'int' is a C keyword")
        #expect(reason("main") == "'main' is the entry point of a C program")
        #expect(reason("exp")?.contains("C standard library or libm") == true)
        #expect(reason("_STDC_")?.contains("C identifier '__STDC__'") == true)
        // Constant tensors are `nabla_c12`: `c12` names a function as well as any other.
        #expect(reason("c12") == nil)
        #expect(reason("seed") == nil)
    }

    /// The argument in CNames.swift: every file-scope name of emitted C either cannot be the
    /// result of `cIdentifier` or is refused as a function name. New emitter names that break
    /// it show up here.
    @Test func fileScopeNamesOfEmittedCCannotBeFunctionNames() throws {
        var names = Set<String>()
        for path in exampleFiles() {
            let program = try NablaProgram(contentsOfFile: path)
            for options in [CEmitOptions.standalone, CEmitOptions(useRuntime: true)] {
                names.formUnion(fileScopeNames(in: try emitC(program.graph, options: options).code))
            }
            let header = emitCHeader(program.graph, source: try emitC(program.graph))
            names.formUnion(fileScopeNames(in: header))
        }
        names.remove("nabla__kernel")  // the function itself
        #expect(names.contains("sqrt") && names.contains { $0.hasPrefix("nabla_c") && Int($0.dropFirst(7)) != nil })
        for name in names where isCIdentifierOutput(name) {
            #expect(throws: NablaError.self, "'\(name)' is declared by emitted C but accepted as a function name") {
                try checkFunctionName(name)
            }
        }
    }

    @Test func macroPrefixesAreUpperCaseAndDistinctForNamesDifferingInCase() {
        #expect(cMacroPrefix(cIdentifier("nabla_kernel")) == "NABLA__KERNEL")
        #expect(cMacroPrefix(cIdentifier("nabla_seed-function")) == "NABLA__SEED_2DFUNCTION")
        #expect(cMacroPrefix(cIdentifier("3d")) == "_33D")
        #expect(cMacroPrefix("a") == "A")
        #expect(cMacroPrefix("A") == "A_U")
        #expect(cMacroPrefix("seedFn") == "SEEDF_UN")
        // Every spelling of a few names in upper and lower case, with escapes around.
        var identifiers = Set<String>()
        for base in ["ab", "a_b", "a-B", "x_1F", "é", "_u", "a_u", "A_U", "au", "f2D"] {
            for variant in caseVariants(base) { identifiers.insert(cIdentifier(variant)) }
        }
        let prefixes = identifiers.map(cMacroPrefix)
        #expect(Set(prefixes).count == identifiers.count, "two identifiers share a macro prefix")
        #expect(prefixes.allSatisfy { !$0.contains { $0.isLowercase } })
    }

    /// Names declared at file scope: the first identifier before `(` or `[` on a line that
    /// starts in column 0, function-pointer names `(*name)`, and macro names.
    private func fileScopeNames(in code: String) -> Set<String> {
        var names = Set<String>()
        for line in code.split(separator: "\n") {
            guard let first = line.first, first.isLetter || first == "#" else { continue }
            if line.hasPrefix("#define ") {
                names.insert(String(line.dropFirst(8).prefix { $0.isLetter || $0.isNumber || $0 == "_" }))
                continue
            }
            if let star = line.range(of: "(*") {
                names.insert(String(line[star.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }))
                continue
            }
            guard let open = line.firstIndex(where: { $0 == "(" || $0 == "[" }) else { continue }
            let head = line[..<open]
            let name = head.reversed().prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !name.isEmpty { names.insert(String(name.reversed())) }
        }
        return names
    }

    /// True when `name` has the form `cIdentifier` gives: letters, digits, `__` and `_XX`
    /// (two upper-case hex digits), not starting with a digit.
    private func isCIdentifierOutput(_ name: String) -> Bool {
        let characters = Array(name)
        guard let first = characters.first, !first.isNumber else { return false }
        var k = 0
        while k < characters.count {
            if characters[k] != "_" {
                guard characters[k].isASCII, characters[k].isLetter || characters[k].isNumber else { return false }
                k += 1
            } else if k + 1 < characters.count, characters[k + 1] == "_" {
                k += 2
            } else {
                let hex = "0123456789ABCDEF"
                guard k + 2 < characters.count, hex.contains(characters[k + 1]), hex.contains(characters[k + 2]) else { return false }
                k += 3
            }
        }
        return true
    }

    private func caseVariants(_ text: String) -> [String] {
        var variants = [""]
        for character in text {
            let forms = Set([String(character).lowercased(), String(character).uppercased()])
            variants = variants.flatMap { prefix in forms.map { prefix + $0 } }
        }
        return variants
    }
}
