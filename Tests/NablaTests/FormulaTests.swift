import Foundation
import Testing
@testable import Nabla

// `nabla derive`'s formulas: the identities of the lecture notes print as the notes write them,
// equal their closed forms and are no larger than twice them, and the NumPy form of every
// derivative of every example computes the kernel's values.

/// A Python 3 that imports NumPy: $NABLA_PYTHON, else python3 on PATH, else /usr/bin/python3.
/// `scripts/ensure-deps` installs one when none is found.
func pythonWithNumPy() -> String? {
    var candidates: [String] = []
    if let chosen = ProcessInfo.processInfo.environment["NABLA_PYTHON"], !chosen.isEmpty { candidates.append(chosen) }
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
        candidates.append("\(directory)/python3")
    }
    candidates.append("/usr/bin/python3")
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
        if (try? runPython(candidate, "import numpy\nprint('ok')\n"))?.output.contains("ok") == true { return candidate }
    }
    return nil
}

/// Runs a Python program; its standard output and exit status.
func runPython(_ python: String, _ program: String) throws -> (output: String, errors: String, status: Int32) {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("nabla-formula-\(UUID().uuidString).py")
    try program.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [file.path]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (output, errors, process.terminationStatus)
}

/// A Python literal for a tensor.
func pythonArray(_ t: TensorData) -> String {
    let r = NumPyRenderer()
    return "np.array([\(t.scalars.map(r.number).joined(separator: ", "))], dtype=float).reshape(\(r.tuple(t.shape)))"
}

/// Runs the NumPy form of each formula with `inputs` bound and returns, per output, the largest
/// difference from `expected` relative to the largest expected magnitude.
func numpyErrors(_ formulas: [Formula], inputs: [String: TensorData], expected: [String: TensorData]) throws -> [String: Double] {
    guard let python = pythonWithNumPy() else {
        Issue.record("no Python 3 with NumPy found: run scripts/ensure-deps or set NABLA_PYTHON")
        return [:]
    }
    let r = NumPyRenderer()
    var lines = ["import numpy as np", "import json", "np.seterr(all='ignore')"]
    for (name, value) in inputs.sorted(by: { $0.key < $1.key }) { lines.append("\(r.pythonName(name)) = \(pythonArray(value))") }
    for formula in formulas { lines.append(formula.rendered(.numpy)) }
    lines.append("errors = {}")
    for formula in formulas {
        let id = formula.numpyName
        lines.append("_e = \(pythonArray(expected[formula.name]!))")
        lines.append("errors[\(pythonString(formula.name))] = float(np.max(np.abs(np.asarray(\(id), dtype=float) - _e), initial=0) / max(float(np.max(np.abs(_e), initial=0)), 1e-300)) if np.shape(\(id)) == _e.shape else float('inf')")
    }
    lines.append("print(json.dumps(errors))")
    let (output, errors, status) = try runPython(python, lines.joined(separator: "\n") + "\n")
    guard status == 0, let data = output.split(separator: "\n").last.map({ Data($0.utf8) }),
          let table = try JSONSerialization.jsonObject(with: data) as? [String: Double] else {
        Issue.record("the NumPy forms failed (status \(status)):\n\(errors.suffix(2000))")
        return [:]
    }
    return table
}

func pythonString(_ s: String) -> String {
    "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

/// One identity of the notes: a function, what it is differentiated by, the closed form as a
/// Nabla expression and the formula `nabla derive` prints.
struct Identity: CustomTestStringConvertible, Sendable {
    let declarations: String
    let function: String
    let directive: String
    let closedForm: String
    let printed: String
    var testDescription: String { printed }
}

/// The identities of ../shared/SEED-MATH.md (docs: DerivativeFormulas.md shows the same table).
let notesIdentities: [Identity] = [
    Identity(declarations: "input a: [3]\ninput x: [3]", function: "dot(a, x)", directive: "grad f wrt x",
             closedForm: "a", printed: "df/dx = aᵀ    [3]"),
    Identity(declarations: "input A: [2, 3]\ninput x: [3]", function: "A @ x", directive: "jacobian f wrt x",
             closedForm: "A", printed: "df/dx = A    [2, 3]"),
    Identity(declarations: "input a: [3]\ninput b: [3]\ninput X: [3, 3]", function: "a @ X @ b", directive: "grad f wrt X",
             closedForm: "outer(a, b)", printed: "df/dX = abᵀ    [3, 3]"),
    Identity(declarations: "input a: [3]\ninput b: [3]\ninput X: [3, 3]", function: "a @ inv(X) @ b", directive: "grad f wrt X",
             closedForm: "-(inv(X)' @ outer(a, b) @ inv(X)')", printed: "df/dX = -X⁻ᵀabᵀX⁻ᵀ    [3, 3]"),
    Identity(declarations: "input a: [3]\ninput x: [3]\ninput M: [3, 3]", function: "x @ M @ x + dot(a, x)", directive: "grad f wrt x",
             closedForm: "M @ x + M' @ x + a", printed: "df/dx = aᵀ + xᵀ(M + Mᵀ)    [3]"),
    Identity(declarations: "input a: [3]\ninput x: [3]\ninput M: [3, 3]", function: "x @ M @ x + dot(a, x)", directive: "hessian f wrt x",
             closedForm: "M + M'", printed: "d2f/dx2 = Mᵀ + M    [3, 3]"),
    Identity(declarations: "input a: [3]\ninput b: [3]\ninput c\ninput W: [3, 3]", function: "(a @ W @ b - c)^2", directive: "grad f wrt W",
             closedForm: "2 * (a @ W @ b - c) * outer(a, b)", printed: "df/dW = 2(aᵀWb - c)abᵀ    [3, 3]"),
    Identity(declarations: "input A: [3, 3]\ninput B: [3, 3]\ninput X: [3, 3]", function: "trace(A @ X @ B)", directive: "grad f wrt X",
             closedForm: "A' @ B'", printed: "df/dX = AᵀBᵀ    [3, 3]"),
    Identity(declarations: "input X: [3, 3]", function: "logdet(X)", directive: "grad f wrt X",
             closedForm: "inv(X)'", printed: "df/dX = X⁻ᵀ    [3, 3]"),
    Identity(declarations: "input X: [3, 3]", function: "det(X)", directive: "grad f wrt X",
             closedForm: "det(X) * inv(X)'", printed: "df/dX = adj(X)ᵀ    [3, 3]"),
    Identity(declarations: "input A: [4, 3]\ninput x: [3]\ninput y: [4]", function: "0.5 * sum((y - A @ x)^2)", directive: "grad f wrt x",
             closedForm: "-((y - A @ x) @ A)", printed: "df/dx = -(yᵀ - xᵀAᵀ)A    [3]"),
    Identity(declarations: "input A: [4, 3]\ninput x: [3]\ninput y: [4]", function: "0.5 * sum((y - A @ sin(x))^2)", directive: "grad f wrt x",
             closedForm: "-(((y - A @ sin(x)) @ A) * cos(x))", printed: "df/dx = -((Aᵀ(y - A sin(x))) ⊙ cos(x))ᵀ    [3]"),
    Identity(declarations: "input Phi: [5, 3]\ninput theta: [3]\ninput y: [5]", function: "0.5 * sum((y - Phi @ theta)^2)", directive: "hessian f wrt theta",
             closedForm: "Phi' @ Phi", printed: "d2f/dtheta2 = ΦᵀΦ    [3, 3]"),
    Identity(declarations: "input a\ninput x: [5]\ninput y: [5]", function: "sum((y - a * x)^2)", directive: "hessian f wrt a",
             closedForm: "2 * sum(x^2)", printed: "d2f/da2 = 2xᵀx    scalar"),
    Identity(declarations: "input t", function: "sin(t)^2 + 2 * cos(t)", directive: "grad f wrt t",
             closedForm: "2 * sin(t) * (cos(t) - 1)", printed: "df/dt = 2sin(t) (cos(t) - 1)    scalar"),
]

/// The size of a formula: its result and the definitions it uses.
func formulaSize(_ f: Formula) -> Int { f.definitions.reduce(f.result.size) { $0 + $1.term.size } }

@Suite("Derivative formulas")
struct FormulaTests {
    @Test(arguments: notesIdentities)
    func anIdentityOfTheNotesPrintsItsClosedForm(_ identity: Identity) throws {
        let source = "\(identity.declarations)\noutput f = \(identity.function)\noutput closed = \(identity.closedForm)\n\(identity.directive)\n"
        let program = try NablaProgram(source: source, fileName: "identity.nabla")
        let formulas = try program.derivativeFormulas(expandingBindings: true)
        #expect(formulas.count == 1)
        let formula = try #require(formulas.first)
        #expect(formula.rendered(.text) == identity.printed)
        // The kernel's derivative equals the closed form, at random inputs.
        let inputs = seededInputs(program.graph, seed: 3)
        let computed = try Kernel(program.graph)(inputs)
        let closed = computed["closed"]!
        let derivative = computed[formula.name]!
        #expect(maxRelativeError(derivative.scalars, closed.scalars) < 1e-10)
        // No bigger than about twice the closed form.
        let closedFormula = try program.formula(of: "closed", expandingBindings: true)
        #expect(formulaSize(formula) <= 2 * formulaSize(closedFormula), "\(formulaSize(formula)) against \(formulaSize(closedFormula))")
        // The NumPy form computes the kernel's value.
        let errors = try numpyErrors([formula], inputs: inputs, expected: [formula.name: derivative])
        #expect((errors[formula.name] ?? .infinity) < 1e-10, "\(formula.rendered(.numpy))")
    }

    /// Every derivative of every example prints in the three formats, and its NumPy form
    /// computes what the kernel computes.
    @Test(arguments: exampleFiles().map { URL(fileURLWithPath: $0).lastPathComponent })
    func everyExamplePrintsFormulasThatComputeItsDerivatives(_ name: String) throws {
        let path = exampleFiles().first { $0.hasSuffix("/" + name) }!
        let program = try NablaProgram(contentsOfFile: path, dims: name == "rosenbrock.nabla" ? ["N": 12] : [:])
        let formulas = try program.derivativeFormulas()
        #expect(formulas.map(\.name) == program.derivatives.map(\.name))
        for formula in formulas {
            let text = formula.rendered(.text), latex = formula.rendered(.latex)
            #expect(text.hasPrefix(formula.name + " = ") || text.hasPrefix(formula.name + "["), "\(text)")
            #expect(latex.contains(" = ") && latex.contains("\\"), "\(latex)")
            #expect(!text.contains("\\"), "text has LaTeX in it: \(text)")
        }
        guard !formulas.isEmpty else { return }
        let inputs = seededInputs(program.graph, seed: 5)
        let computed = try Kernel(program.graph)(inputs)
        let errors = try numpyErrors(formulas, inputs: inputs, expected: computed)
        for formula in formulas {
            #expect((errors[formula.name] ?? .infinity) < 1e-9, "\(formula.name): \(errors[formula.name] ?? .infinity)\n\(formula.rendered(.numpy))")
        }
    }

    @Test func bindingsAreWrittenByNameUnlessExpanded() throws {
        let program = try NablaProgram(contentsOfFile: exampleFiles().first { $0.hasSuffix("/least-squares.nabla") }!)
        #expect(try program.derivativeFormulas()[0].rendered(.text) == "dL/dtheta = -eᵀΦ    [3]\n  where e = y - Φθ    [100]")
        #expect(try program.derivativeFormulas(expandingBindings: true)[0].rendered(.text) == "dL/dtheta = -(yᵀ - θᵀΦᵀ)Φ    [3]")
        let denominator = try NablaProgram(contentsOfFile: exampleFiles().first { $0.hasSuffix("/least-squares.nabla") }!, jacobianLayout: .denominator)
        #expect(try denominator.derivativeFormulas()[0].rendered(.text) == "dL/dtheta = -Φᵀe    [3]\n  where e = y - Φθ    [100]")
        #expect(try program.derivativeFormulas()[0].rendered(.latex) == "\\frac{\\partial L}{\\partial \\theta} = -e^{\\top}\\Phi\n\\text{where } e = y - \\Phi\\theta")
    }

    @Test func jacobiansWithoutAMatrixFormulaAreWrittenAsDirectionalDerivatives() throws {
        let program = try NablaProgram(source: "input A: [2, 3]\ninput X: [3, 2]\noutput Y = A @ X\njacobian Y wrt X\n", fileName: "j.nabla")
        let formula = try #require(try program.derivativeFormulas().first)
        #expect(formula.rendered(.text) == "dY/dX[V] = AV    [2, 2] per direction V of shape [3, 2]")
        var rng = SeededRandom(seed: 9)
        let inputs = ["A": TensorData.random([2, 3], in: -1...1, using: &rng), "X": TensorData.random([3, 2], in: -1...1, using: &rng)]
        let computed = try Kernel(program.graph)(inputs)
        let errors = try numpyErrors([formula], inputs: inputs, expected: computed)
        #expect((errors[formula.name] ?? .infinity) < 1e-12)
    }

    /// A Jacobian by a matrix whose directional derivative names intermediates that read the
    /// direction: the NumPy form computes them inside its function of the direction.
    @Test func directionalFormulasComputeTheirIntermediatesPerDirection() throws {
        let program = try NablaProgram(source: "input X: [2, 2]\noutput Y = sin(X @ X) @ sin(X @ X) + X\njacobian Y wrt X\n", fileName: "j.nabla")
        let formula = try #require(try program.derivativeFormulas().first)
        #expect(formula.definitions.contains { $0.term.mentions("V") })
        var rng = SeededRandom(seed: 4)
        let inputs = ["X": TensorData.random([2, 2], in: -1...1, using: &rng)]
        let computed = try Kernel(program.graph)(inputs)
        let errors = try numpyErrors([formula], inputs: inputs, expected: computed)
        #expect((errors[formula.name] ?? .infinity) < 1e-12, "\(formula.rendered(.numpy))")
    }

    /// The formula of a builder's tensor, with a binding written by name.
    @Test func aTensorOfTheBuilderHasAFormula() throws {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [4, 3]), x = try g.input("x", shape: [3]), y = try g.input("y", shape: [4])
        let r = try y - A.matmul(x)
        let loss = try 0.5 * sum(r * r)
        let dx = try gradient(of: loss, wrt: x)
        let named = try Formula(dx, name: "dL/dx", bindings: ["r": r])
        #expect(named.rendered(.text) == "dL/dx = -Aᵀr    [3]\n  where r = y - Ax    [4]")
        #expect(named.rendered(.numpy) == "r = y - (A @ x)\ndL_dx = -(A.T @ r)")
        let plain = try Formula(dx, name: "g")
        #expect(plain.rendered(.latex) == "g = -A^{\\top}\\left(y - Ax\\right)")
    }

    /// Cases a review found wrong: a scalar product beside a vector, sI times I, a Hessian
    /// through diag, sigmoid inside products and quotients, triangular solves, an input named
    /// like an output variable or the pad helper's parameter.
    @Test(arguments: [
        "input x: [3]\ninput w: [3]\noutput L = (x @ w)^2\ngrad L wrt w\n",
        "input x: [3]\ninput w: [3]\noutput L = sum(x^2) * (x @ w)\ngrad L wrt x\n",
        "input x: [3]\ninput y: [3]\ninput A: [3, 3]\noutput L = sum(x @ y * A' @ y)\ngrad L wrt A\n",
        "input s\ninput t\noutput L = s * sum(t * eye(2) * s)\ngrad L wrt s\n",
        "input s\noutput L = sum(((eye(2) * s) @ eye(2)) * s)\ngrad L wrt s\n",
        "input x: [3]\noutput L = sum(sum(diag(x), 1)^2)\nhessian L wrt x\n",
        "input x: [3]\ninput A: [3, 3]\noutput L = sum(sin(A @ sigmoid(x))) + sum(x / sigmoid(x))\ngrad L wrt x\n",
        "input T: [2, 2]\ninput b: [2]\noutput x = solve_triangular(T, b)\noutput y = solve_triangular(T, b, upper)\njacobian x wrt b\njacobian y wrt b\n",
        "input z: [4]\ninput x: [4]\noutput f = sum(x[:-1] * z[1:]) + sum(z[:-1]^2)\ngrad f wrt x, z\n",
        "input x: [3]\ninput dL_dx: [3]\noutput L = sum(x^2*3)\noutput M = sum(dL_dx*x^3)\ngrad L wrt x\ngrad M wrt x\n",
    ])
    func reviewedCasesComputeTheKernelsValues(_ source: String) throws {
        let program = try NablaProgram(source: source, fileName: "case.nabla")
        let formulas = try program.derivativeFormulas()
        for formula in formulas { #expect(formula.shape == (try program.graph.outputShape(formula.name))) }
        let inputs = seededInputs(program.graph, seed: 2)
        let computed = try Kernel(program.graph)(inputs)
        let errors = try numpyErrors(formulas, inputs: inputs, expected: computed)
        for formula in formulas {
            #expect((errors[formula.name] ?? .infinity) < 1e-9, "\(formula.name)\n\(formula.rendered(.text))\n\(formula.rendered(.numpy))")
        }
    }

    @Test func pythonKeywordsAndOutputNamesBecomeIdentifiers() throws {
        let program = try NablaProgram(source: "input lambda: [2]\ninput x: [2]\noutput f = dot(lambda, x)\ngrad f wrt x\n", fileName: "k.nabla")
        let numpy = try program.derivativeFormulas()[0].rendered(.numpy)
        #expect(numpy == "df_dx = lambda_")
    }

    @Test func aLongChainIsNamedInPiecesNotOneLine() throws {
        var source = "input x\ny0 = x\n"
        for k in 1...300 { source += "y\(k) = sin(y\(k - 1)) * 0.5 + 0.1\n" }
        source += "output f = y300\ngrad f wrt x\n"
        let program = try NablaProgram(source: source, fileName: "chain.nabla")
        let formula = try #require(try program.derivativeFormulas().first)
        let lines = formula.rendered(.text).split(separator: "\n")
        #expect(lines.count > 10)
        #expect(lines.allSatisfy { $0.count < 600 })
        var rng = SeededRandom(seed: 1)
        let inputs = ["x": TensorData.random([], in: -1...1, using: &rng)]
        let computed = try Kernel(program.graph)(inputs)
        let errors = try numpyErrors([formula], inputs: inputs, expected: computed)
        #expect((errors[formula.name] ?? .infinity) < 1e-10)
    }
}

@Suite("nabla derive", .serialized)
struct DeriveCommandTests {
    @Test func printsEachFormat() throws {
        let text = try runNabla(["derive", example("linear-residual.nabla")])
        #expect(text.status == 0 && text.err == "")
        #expect(text.out == "dL/dx = -eᵀA    [3]\n  where e = y - Ax    [4]\n\ndL/dA = -exᵀ    [4, 3]\n  where e = y - Ax    [4]\n")
        let latex = try runNabla(["derive", example("linear-residual.nabla"), "--format", "latex"])
        #expect(latex.status == 0)
        #expect(latex.out.hasPrefix("\\frac{\\partial L}{\\partial x} = -e^{\\top}A\n\\text{where } e = y - Ax\n"))
        let numpy = try runNabla(["derive", example("linear-residual.nabla"), "--format", "numpy", "--expand-bindings"])
        #expect(numpy.status == 0)
        #expect(numpy.out.hasPrefix("import numpy as np\n\ndL_dx = "))
        #expect(!numpy.out.contains("e = "))
        let denominator = try runNabla(["derive", example("least-squares.nabla"), "--jacobian-layout", "denominator"])
        #expect(denominator.out.hasPrefix("dL/dtheta = -Φᵀe    [3]"))
    }

    @Test func refusesWhatDoesNotApply() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plain = directory.appendingPathComponent("plain.nabla")
        try "input x\noutput f = sin(x)\n".write(to: plain, atomically: true, encoding: .utf8)
        let none = try runNabla(["derive", plain.path])
        #expect(none.status == 2 && none.out == "")
        #expect(none.err.contains("has no derivative outputs to derive"))
        let layout = try runNabla(["derive", example("hessians.nabla").replacingOccurrences(of: "hessians", with: "matrix-inverse"), "--jacobian-layout", "denominator"])
        #expect(layout.status == 0)
        let jvpOnly = directory.appendingPathComponent("jvp.nabla")
        try "input x: [2]\ninput v: [2]\noutput f = sin(x)\njvp f wrt x along v\n".write(to: jvpOnly, atomically: true, encoding: .utf8)
        let notApplying = try runNabla(["derive", jvpOnly.path, "--jacobian-layout", "denominator"])
        #expect(notApplying.status == 2)
        #expect(notApplying.err.contains("--jacobian-layout does not apply"))
        let inline = directory.appendingPathComponent("inline.nabla")
        try "input x: [2]\noutput f = dot(x, x)\ngrad f wrt x\n".write(to: inline, atomically: true, encoding: .utf8)
        #expect(try runNabla(["derive", inline.path, "--expand-bindings"]).status == 0)
        let noBindings = directory.appendingPathComponent("nobindings.nabla")
        try "input x\ngrad x wrt x\n".write(to: noBindings, atomically: true, encoding: .utf8)
        #expect(try runNabla(["derive", noBindings.path]).out == "dx/dx = 1    scalar\n")
        let expandNothing = try runNabla(["derive", noBindings.path, "--expand-bindings"])
        #expect(expandNothing.status == 2 && expandNothing.err.contains("--expand-bindings does not apply"))
        let format = try runNabla(["derive", example("least-squares.nabla"), "--format", "mathml"])
        #expect(format.status == 2 && format.err.contains("mathml"))
        let broken = directory.appendingPathComponent("broken.nabla")
        try "input x\noutput f = sin(y)\ngrad f wrt x\n".write(to: broken, atomically: true, encoding: .utf8)
        let unknown = try runNabla(["derive", broken.path])
        #expect(unknown.status == 2 && unknown.err.contains("broken.nabla:2:"))
    }
}
