import Foundation
import Testing
@testable import Nabla

// The C LU routines (runtime/nabla_linalg_code.h) against the interpreter's (enum LU), bit for
// bit, at sizes and shapes that reach every path of the C: panels of 16 columns and the 4 x 16
// tiles of the trailing update (with a last tile shifted left to end at the matrix's edge, and
// leftover rows), the row strips of 48, 32 and 8 columns in the solves (and their shifted
// last strips), one right-hand side, narrow ones, and the identity right-hand side of A^-T. The
// matrices pivot or not, are singular in several ways (zero pivots in the middle of a panel
// included), hold NaN, infinities and signed zeros. Every output must carry the interpreter's
// exact bits (any NaN matches any NaN: the payload of a NaN depends on operand order in the
// hardware, which C compilers may choose).

/// Square matrices that take the C through its different paths.
enum LUMatrixKind: String, CaseIterable, Sendable {
    /// R + n I: no row swaps.
    case diagonallyDominant
    /// Uniform in [-1, 1]: a row swap at most steps.
    case uniform
    /// A squared-exponential covariance plus noise on the diagonal, as in a Gaussian process.
    case covariance
    /// Uniform with every fifth column zero: zero pivots (skipped steps) inside panels.
    case zeroColumns
    /// The last row a copy of the first and a zero column in the middle: rank deficient.
    case repeatedRow
    /// Entries in {-1, 0, 1}: exact cancellations, signed zeros, late zero pivots.
    case smallIntegers
    /// Diagonally dominant with one NaN.
    case withNaN
    /// Diagonally dominant with one infinity.
    case withInfinity
    /// All zeros.
    case zero
    /// An outer product of vectors holding zeros: rank one, with -0.0 entries.
    case signedZeros

    func matrix(_ n: Int, using rng: inout SeededRandom) -> TensorData {
        var a = TensorData.random([n, n], in: -1...1, using: &rng).scalars
        switch self {
        case .diagonallyDominant, .withNaN, .withInfinity:
            for i in 0..<n { a[i * n + i] += Double(n) }
            if self == .withNaN { a[(n / 3) * n + n / 2] = .nan }
            if self == .withInfinity { a[(n / 2) * n + n / 3] = .infinity }
        case .uniform:
            break
        case .covariance:
            let x = TensorData.random([n, 2], in: -1...1, using: &rng).scalars
            for i in 0..<n {
                for j in 0..<n {
                    let dx = x[2 * i] - x[2 * j], dy = x[2 * i + 1] - x[2 * j + 1]
                    a[i * n + j] = Foundation.exp(-0.5 * (dx * dx + dy * dy) / 0.3) + (i == j ? 0.1 : 0)
                }
            }
        case .zeroColumns:
            for i in 0..<n { for j in stride(from: 2, to: n, by: 5) { a[i * n + j] = 0 } }
        case .repeatedRow:
            if n > 1 {
                for i in 0..<n { a[i * n + n / 2] = 0 }
                for j in 0..<n { a[(n - 1) * n + j] = a[j] }
            }
        case .smallIntegers:
            a = a.map { ($0 * 1.5).rounded() }
        case .zero:
            a = [Double](repeating: 0, count: n * n)
        case .signedZeros:
            for i in 0..<n { for j in 0..<n { a[i * n + j] = Double(i % 3 - 1) * Double(j % 4 - 2) } }
        }
        return TensorData(unchecked: [n, n], a)
    }
}

@Suite("LU runtime against the interpreter, bit for bit")
struct LinearAlgebraRuntimeTests {
    /// Widths of right-hand sides: one, narrow (below a strip), exactly and around the strips
    /// of 8 and 48 and the tiles of 16.
    static let widths = [1, 3, 8, 9, 16, 17, 47, 48, 49, 57]

    /// A graph with every function of A the runtime computes: the factors themselves, det,
    /// logdet, inv, solves and transposed solves with each width, a transposed solve with a
    /// right-hand side E given as input (the identity, or nearly: the general path), and the
    /// gradient of logdet (`InverseTransposed`, the identity implied: the shortcut).
    static func graph(_ n: Int, widths: [Int]) throws -> Graph {
        let g = GraphBuilder()
        let A = try g.input("A", shape: [n, n]), E = try g.input("E", shape: [n, n])
        var outputs: [(String, Tensor)] = [
            ("lu", try luFactors(A)), ("det", try det(A)), ("logdet", try logdet(A)), ("inv", try inv(A)),
            ("solve^T E", try solveTransposed(A, E)), ("dlogdet", try gradient(of: logdet(A), wrt: A)),
        ]
        for m in widths {
            let B = try g.input("B\(m)", shape: m == 1 ? [n] : [n, m])
            outputs.append(("solve \(m)", try solve(A, B)))
            outputs.append(("solve^T \(m)", try solveTransposed(A, B)))
        }
        return try g.graph(outputs: outputs)
    }

    /// Inputs for `graph(n, widths:)`: A of `kind`, right-hand sides uniform (some with -0.0,
    /// infinities and NaN when `specialRightHandSides`), E the identity, or the identity with
    /// one -0.0 when `perturbIdentity`.
    static func inputs(_ n: Int, _ kind: LUMatrixKind, widths: [Int], specialRightHandSides: Bool, perturbIdentity: Bool,
                       using rng: inout SeededRandom) -> [String: TensorData] {
        var inputs = ["A": kind.matrix(n, using: &rng)]
        var e = [Double](repeating: 0, count: n * n)
        for i in 0..<n { e[i * n + i] = 1 }
        if perturbIdentity && n > 1 { e[n * n - 2] = -0.0 }
        inputs["E"] = TensorData(unchecked: [n, n], e)
        for m in widths {
            var b = TensorData.random(m == 1 ? [n] : [n, m], in: -1...1, using: &rng)
            if specialRightHandSides {
                for i in stride(from: 0, to: b.scalars.count, by: 7) { b.scalars[i] = [-0.0, .infinity, .nan][i % 3] }
            }
            inputs["B\(m)"] = b
        }
        return inputs
    }

    /// Every output of `kernels` against the interpreter, bit for bit.
    static func expectBitIdentical(_ graph: Graph, _ kernels: [(String, Kernel)], _ inputs: [String: TensorData], _ what: String) throws {
        let reference = try Interpreter.evaluate(graph, inputs: inputs)
        for (name, kernel) in kernels {
            let out = try kernel(inputs)
            for port in graph.outputs {
                let r = reference[port.name]!.scalars, c = out[port.name]!.scalars
                let same = sameBits(c, r)
                #expect(same, "\(what), \(name), output \(port.name): \(firstDifference(c, r))")
            }
        }
    }

    /// The runtime (JIT kernels) and the standalone C (the same code as static functions,
    /// compiled by TinyCC) agree with the interpreter for every kind of matrix.
    @Test(arguments: [1, 2, 5, 15, 16, 17, 20, 33, 50, 67])
    func everyPathMatchesTheInterpreter(n: Int) throws {
        let graph = try Self.graph(n, widths: Self.widths)
        let kernels = [
            ("runtime", try Kernel(graph)),
            ("standalone", try Kernel(source: emitC(graph, options: .standalone), inputNames: graph.inputs.map(\.name), outputNames: graph.outputs.map(\.name))),
        ]
        var rng = SeededRandom(seed: UInt64(1000 + n))
        for kind in LUMatrixKind.allCases {
            for (special, perturb) in [(false, false), (true, true)] {
                let inputs = Self.inputs(n, kind, widths: Self.widths, specialRightHandSides: special, perturbIdentity: perturb, using: &rng)
                try Self.expectBitIdentical(graph, kernels, inputs, "n \(n), \(kind.rawValue)\(special ? ", special right-hand sides" : "")")
            }
        }
    }

    /// Larger sizes, where the identity right-hand side takes its shortcut in many tiles and
    /// (above 112 rows) the solves use strips of 48 columns, with the optimised runtime also
    /// called from a cc kernel.
    @Test(arguments: [100, 130])
    func largerMatricesMatchTheInterpreter(n: Int) throws {
        let widths = [1, 7, 57, n]
        let graph = try Self.graph(n, widths: widths)
        let kernels = [
            ("runtime", try Kernel(graph)),
            ("runtime from cc", try Kernel(graph, backend: .cc)),
            ("standalone", try Kernel(source: emitC(graph, options: .standalone), inputNames: graph.inputs.map(\.name), outputNames: graph.outputs.map(\.name))),
        ]
        var rng = SeededRandom(seed: UInt64(77 + n))
        for kind in [LUMatrixKind.covariance, .uniform, .zeroColumns, .withInfinity] {
            let inputs = Self.inputs(n, kind, widths: widths, specialRightHandSides: false, perturbIdentity: false, using: &rng)
            try Self.expectBitIdentical(graph, kernels, inputs, "n \(n), \(kind.rawValue)")
        }
    }

    /// The identity right-hand side's shortcut gives A^-T: against an independent inverse, and
    /// the same bits as the full loops on an identity given as input. Kernels neither store nor
    /// copy an identity for it.
    @Test func identityRightHandSideIsTheInverseTranspose() throws {
        let n = 40
        let graph = try Self.graph(n, widths: [1])
        var rng = SeededRandom(seed: 5)
        let inputs = Self.inputs(n, .uniform, widths: [1], specialRightHandSides: false, perturbIdentity: false, using: &rng)
        let out = try Kernel(graph)(inputs)
        let expected = transposeSquare(referenceInverse(inputs["A"]!), n)
        expectClose(out["solve^T E"]!.scalars, expected, tolerance: 1e-9, "A^-T")
        let same = sameBits(out["solve^T E"]!.scalars, out["dlogdet"]!.scalars)
        #expect(same, "solve^T with E = I against the gradient of logdet")
        // And inv is an inverse: the residual of A A^-1 - I.
        let a = inputs["A"]!.scalars, x = out["inv"]!.scalars
        var residual = 0.0
        for i in 0..<n {
            for j in 0..<n {
                var s = 0.0
                for k in 0..<n { s += a[i * n + k] * x[k * n + j] }
                residual = max(residual, Swift.abs(s - (i == j ? 1 : 0)))
            }
        }
        #expect(residual < 1e-9, "max |A A^-1 - I| = \(residual)")

        let g = GraphBuilder()
        let A = try g.input("A", shape: [n, n])
        let gradientGraph = try g.graph(outputs: ["g": gradient(of: logdet(A), wrt: A)])
        #expect(gradientGraph.nodes.contains { $0.operation is InverseTransposed })
        for options in [CEmitOptions(useRuntime: true), .standalone] {
            let code = try emitC(gradientGraph, options: options).code
            #expect(!code.contains("static const double"), "an identity constant in the C")
            #expect(code.contains("nabla_lu_apply_transposed(\(n), \(n), "))
        }
    }
}
