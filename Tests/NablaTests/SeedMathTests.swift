import Foundation
import Testing
@testable import Nabla

// The worked examples of the math spec, each checked three ways: against its closed form
// (computed independently here in plain Swift), against central finite differences of the
// interpreted graph, and the TinyCC kernel against the interpreter.

// MARK: - Plain-Swift helpers (independent of Nabla's operations)

private func vector(_ xs: [Double]) -> TensorData { try! TensorData(shape: [xs.count], scalars: xs) }

private func matrix(_ rows: Int, _ cols: Int, _ xs: [Double]) -> TensorData {
    try! TensorData(shape: [rows, cols], scalars: xs)
}

/// `A x` for a row-major `A` of shape [rows, cols].
private func matVec(_ A: TensorData, _ x: [Double]) -> [Double] {
    let rows = A.shape[0], cols = A.shape[1]
    return (0..<rows).map { i in (0..<cols).reduce(0.0) { $0 + A[i, $1] * x[$1] } }
}

/// `x^T A` (equivalently `A^T x`) for a row-major `A` of shape [rows, cols].
private func vecMat(_ x: [Double], _ A: TensorData) -> [Double] {
    let rows = A.shape[0], cols = A.shape[1]
    return (0..<cols).map { j in (0..<rows).reduce(0.0) { $0 + x[$1] * A[$1, j] } }
}

/// Row-major `a b^T`.
private func outerProduct(_ a: [Double], _ b: [Double]) -> [Double] {
    a.flatMap { ai in b.map { ai * $0 } }
}

private func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0.0) { $0 + $1.0 * $1.1 } }

private func logistic(_ z: Double) -> Double { 1 / (1 + Foundation.exp(-z)) }

// MARK: - Graph helpers

/// A graph with output "L" and, for each variable, its gradient named "dL/d<name>".
private func lossGraph(_ L: Tensor, wrt variables: KeyValuePairs<String, Tensor>) throws -> Graph {
    let grads = try gradient(of: L, wrt: variables.map(\.value))
    let named = [("L", L)] + zip(variables.map(\.key), grads).map { ("dL/d\($0.0)", $0.1) }
    return try L.builder.graph(outputs: named)
}

/// Runs `graph` (built by `lossGraph`) through the kernel and the interpreter, then checks the
/// loss against `loss` and each gradient "dL/d<name>" against its closed form `expected[name]`
/// and against central finite differences of "L".
private func checkLossGraph(
    _ graph: Graph, at inputs: [String: TensorData], loss: Double, expected: KeyValuePairs<String, [Double]>,
    closedFormTolerance: Double = 1e-11, finiteDifferenceTolerance: Double = 1e-7,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let values = try expectKernelMatchesInterpreter(graph, inputs, sourceLocation: sourceLocation)
    expectClose(values["L"]!.scalar, loss, tolerance: closedFormTolerance, "L vs closed form", sourceLocation: sourceLocation)
    for (name, want) in expected {
        let got = try #require(values["dL/d\(name)"], "no gradient output for \(name)", sourceLocation: sourceLocation)
        #expect(got.shape == inputs[name]!.shape, "dL/d\(name) has shape \(got.shape)", sourceLocation: sourceLocation)
        expectClose(got.scalars, want, tolerance: closedFormTolerance, "dL/d\(name) vs closed form", sourceLocation: sourceLocation)
        let fd = try finiteDifferenceGradient(graph, output: "L", wrt: name, at: inputs)
        expectClose(got.scalars, fd, tolerance: finiteDifferenceTolerance, "dL/d\(name) vs finite differences", sourceLocation: sourceLocation)
    }
}

// MARK: - Tests

@Suite("Seed math examples")
struct SeedMathTests {

    // MARK: 1. f(x) = sqrt(x^2 + exp(x^2)) + sin(x^2 - 1)

    /// (x, f, f', f'') from the spec's table.
    static let table: [(x: Double, f: Double, d1: Double, d2: Double)] = [
        (0.0, 0.1585290151921035, 0.0, 3.0806046117362795),
        (0.5, 0.5569190370486238, 1.6537392657496657, 3.8210474392096385),
        (1.5, 4.375022540388937, 5.537744562256155, 1.4586598119808403),
        (-2.0, 7.796062857823296, -10.566108424454669, 32.51957325779337),
    ]

    /// Closed forms: with E = e^{x^2}, u = x^2 + E and A = x (1 + E),
    /// f' = A / sqrt(u) + 2x cos(x^2 - 1),
    /// f'' = (1 + E + 2x^2 E) / sqrt(u) - A^2 / u^{3/2} + 2 cos(x^2 - 1) - 4x^2 sin(x^2 - 1).
    static func closedForm(_ x: Double) -> (f: Double, d1: Double, d2: Double) {
        let E = Foundation.exp(x * x), u = x * x + E, A = x * (1 + E)
        let f = Foundation.sqrt(u) + Foundation.sin(x * x - 1)
        let d1 = A / Foundation.sqrt(u) + 2 * x * Foundation.cos(x * x - 1)
        let d2 = (1 + E + 2 * x * x * E) / Foundation.sqrt(u) - A * A / (u * Foundation.sqrt(u))
            + 2 * Foundation.cos(x * x - 1) - 4 * x * x * Foundation.sin(x * x - 1)
        return (f, d1, d2)
    }

    @Test func closedFormReproducesSpecTable() {
        // Guards the independent closed form itself, so the checks below test Nabla, not typos.
        for row in Self.table {
            let c = Self.closedForm(row.x)
            expectClose(c.f, row.f, tolerance: 1e-14, "f(\(row.x))")
            expectClose(c.d1, row.d1, tolerance: 1e-14, "f'(\(row.x))")
            expectClose(c.d2, row.d2, tolerance: 1e-13, "f''(\(row.x))")
        }
    }

    @Test func scalarFunctionValueFirstAndSecondDerivative() throws {
        let g = GraphBuilder()
        let x = try g.input("x")
        let f = try sqrt(x ** 2 + exp(x ** 2)) + sin(x ** 2 - 1)
        let df = try gradient(of: f, wrt: x)
        let d2f = try gradient(of: df, wrt: x)
        let graph = try g.graph(outputs: ["f": f, "df": df, "d2f": d2f])

        for row in Self.table {
            let inputs = ["x": TensorData(row.x)]
            let out = try expectKernelMatchesInterpreter(graph, inputs)
            let closed = Self.closedForm(row.x)
            expectClose(out["f"]!.scalar, row.f, tolerance: 1e-12, "f(\(row.x)) vs table")
            expectClose(out["df"]!.scalar, row.d1, tolerance: 1e-12, "f'(\(row.x)) vs table")
            expectClose(out["d2f"]!.scalar, row.d2, tolerance: 1e-10, "f''(\(row.x)) vs table")
            expectClose(out["df"]!.scalar, closed.d1, tolerance: 1e-12, "f'(\(row.x)) vs closed form")
            expectClose(out["d2f"]!.scalar, closed.d2, tolerance: 1e-10, "f''(\(row.x)) vs closed form")

            let fd1 = try finiteDifferenceGradient(graph, output: "f", wrt: "x", at: inputs)
            let fd2 = try finiteDifferenceGradient(graph, output: "df", wrt: "x", at: inputs)
            expectClose(out["df"]!.scalar, fd1[0], tolerance: 1e-7, "f'(\(row.x)) vs finite differences")
            expectClose(out["d2f"]!.scalar, fd2[0], tolerance: 1e-7, "f''(\(row.x)) vs finite differences of f'")
        }
    }

    @Test func secondDerivativeByAppendingGradientsTwice() throws {
        let g = GraphBuilder()
        let x = try g.input("x")
        let f = try sqrt(x ** 2 + exp(x ** 2)) + sin(x ** 2 - 1)
        let forward = try g.graph(outputs: ["f": f])

        let first = try forward.appendingGradients(of: "f", wrt: ["x"])
        #expect(first.outputs.map(\.name) == ["f", "df/dx"])
        let second = try first.appendingGradients(of: "df/dx", wrt: ["x"])
        #expect(second.outputs.count == 3)
        #expect(Array(second.outputs.map(\.name).prefix(2)) == ["f", "df/dx"])
        let d2Name = second.outputs[2].name

        for row in Self.table {
            let inputs = ["x": TensorData(row.x)]
            let out = try expectKernelMatchesInterpreter(second, inputs)
            expectClose(out["f"]!.scalar, row.f, tolerance: 1e-12, "f(\(row.x))")
            expectClose(out["df/dx"]!.scalar, row.d1, tolerance: 1e-12, "f'(\(row.x))")
            expectClose(out[d2Name]!.scalar, row.d2, tolerance: 1e-10, "f''(\(row.x)) via appendingGradients twice")
            let fd2 = try finiteDifferenceGradient(second, output: "df/dx", wrt: "x", at: inputs)
            expectClose(out[d2Name]!.scalar, fd2[0], tolerance: 1e-7, "f''(\(row.x)) vs finite differences")
        }
    }

    // MARK: 2. L = 1/2 ||y - A x||^2

    @Test func linearLeastSquaresGradients() throws {
        var rng = SeededRandom(seed: 2)
        for (n, m) in [(5, 3), (4, 4), (2, 6)] {
            let Av = TensorData.random([n, m], using: &rng)
            let xv = TensorData.random([m], using: &rng)
            let yv = TensorData.random([n], in: -2...2, using: &rng)

            let g = GraphBuilder()
            let A = try g.input("A", shape: [n, m]), x = try g.input("x", shape: [m]), y = try g.input("y", shape: [n])
            let L = try 0.5 * sum(square(y - A.matmul(x)))
            let graph = try lossGraph(L, wrt: ["x": x, "A": A])

            let r = zip(yv.scalars, matVec(Av, xv.scalars)).map { $0 - $1 }
            let loss = 0.5 * dot(r, r)
            let dx = vecMat(r, Av).map { -$0 }  // -(y - A x)^T A
            let dA = outerProduct(r, xv.scalars).map { -$0 }  // -(y - A x) x^T
            try checkLossGraph(graph, at: ["A": Av, "x": xv, "y": yv], loss: loss, expected: ["x": dx, "A": dA])
        }
    }

    // MARK: 3. Chain rule through x1 = sin t, x2 = cos t

    @Test func chainRuleThroughTwoIntermediates() throws {
        let g = GraphBuilder()
        let t = try g.input("t")
        let x1 = sin(t), x2 = cos(t)
        let f = try x1 ** 2 + 2 * x2
        let dfdt = try gradient(of: f, wrt: t)
        let graph = try g.graph(outputs: ["f": f, "df/dt": dfdt])

        for tv in [-2.5, -0.3, 0.0, 0.7, 1.9, 3.0] {
            let inputs = ["t": TensorData(tv)]
            let out = try expectKernelMatchesInterpreter(graph, inputs)
            let s = Foundation.sin(tv), c = Foundation.cos(tv)
            expectClose(out["f"]!.scalar, s * s + 2 * c, tolerance: 1e-14, "f(\(tv))")
            expectClose(out["df/dt"]!.scalar, 2 * s * (c - 1), tolerance: 1e-14, "df/dt(\(tv)) vs 2 sin t (cos t - 1)")
            let fd = try finiteDifferenceGradient(graph, output: "f", wrt: "t", at: inputs)
            expectClose(out["df/dt"]!.scalar, fd[0], tolerance: 1e-8, "df/dt(\(tv)) vs finite differences")
        }
    }

    // MARK: 4. L = 1/2 ||y - A sin(x)||^2

    @Test func leastSquaresThroughSine() throws {
        var rng = SeededRandom(seed: 4)
        let n = 6, m = 4
        let Av = TensorData.random([n, m], using: &rng)
        let xv = TensorData.random([m], in: -3...3, using: &rng)
        let yv = TensorData.random([n], using: &rng)

        let g = GraphBuilder()
        let A = try g.input("A", shape: [n, m]), x = try g.input("x", shape: [m]), y = try g.input("y", shape: [n])
        let L = try 0.5 * sum(square(y - A.matmul(sin(x))))
        let graph = try lossGraph(L, wrt: ["x": x])

        let sx = xv.scalars.map { Foundation.sin($0) }
        let r = zip(yv.scalars, matVec(Av, sx)).map { $0 - $1 }
        // dL/dx_j = -sum_n (y_n - sum_i A_ni sin x_i) A_nj cos x_j
        let dx = (0..<m).map { j in -(0..<n).reduce(0.0) { $0 + r[$1] * Av[$1, j] } * Foundation.cos(xv.scalars[j]) }
        try checkLossGraph(graph, at: ["A": Av, "x": xv, "y": yv], loss: 0.5 * dot(r, r), expected: ["x": dx])
    }

    // MARK: 5. Least squares with polynomial features

    /// Twenty points on [-1.5, 1.5] with y = 1 + 2x - 0.7x^2 + noise, and Phi = [1, x, x^2].
    static func polynomialData() -> (x: [Double], y: [Double], Phi: TensorData) {
        var rng = SeededRandom(seed: 5)
        let xs = (0..<20).map { -1.5 + 3 * Double($0) / 19 }
        let ys = xs.map { 1 + 2 * $0 - 0.7 * $0 * $0 + Double.random(in: -0.2...0.2, using: &rng) }
        let Phi = matrix(20, 3, xs.flatMap { [1, $0, $0 * $0] })
        return (xs, ys, Phi)
    }

    @Test func polynomialLeastSquaresGradientAndNormalEquations() throws {
        let (xs, ys, Phiv) = Self.polynomialData()
        let yv = vector(ys)

        let g = GraphBuilder()
        let Phi = try g.input("Phi", shape: [20, 3]), y = try g.input("y", shape: [20]), theta = try g.input("theta", shape: [3])
        let L = try 0.5 * sum(square(y - Phi.matmul(theta)))
        let graph = try lossGraph(L, wrt: ["theta": theta])

        func residual(_ th: [Double]) -> [Double] { zip(ys, matVec(Phiv, th)).map { $0 - $1 } }

        // At random parameters: -(y - Phi theta)^T Phi.
        var rng = SeededRandom(seed: 55)
        for _ in 0..<3 {
            let th = TensorData.random([3], in: -2...2, using: &rng)
            let r = residual(th.scalars)
            try checkLossGraph(
                graph, at: ["Phi": Phiv, "y": yv, "theta": th], loss: 0.5 * dot(r, r),
                expected: ["theta": vecMat(r, Phiv).map { -$0 }])
        }

        // At the normal-equation solution theta* = (Phi^T Phi)^{-1} Phi^T y the gradient vanishes.
        let PtP = (0..<3).map { i in (0..<3).map { j in (0..<20).reduce(0.0) { $0 + Phiv[$1, i] * Phiv[$1, j] } } }
        let Pty = vecMat(ys, Phiv)
        let thetaStar = solveLinear(PtP, Pty)
        // Sanity: the fit is near the generating coefficients.
        expectClose(thetaStar, [1, 2, -0.7], tolerance: 0.2, "theta*")
        let out = try expectKernelMatchesInterpreter(graph, ["Phi": Phiv, "y": yv, "theta": vector(thetaStar)])
        let grad = out["dL/dtheta"]!.scalars
        for j in 0..<3 {
            let scale = (0..<20).reduce(0.0) { $0 + Swift.abs(Phiv[$1, j] * ys[$1]) }
            #expect(Swift.abs(grad[j]) < 1e-9 * scale, "dL/dtheta_\(j) = \(grad[j]) at theta*")
        }
        // ...and moving away from theta* along any axis makes it nonzero with the right sign:
        // the gradient at theta* + e_j is (Phi^T Phi) e_j.
        for j in 0..<3 {
            var moved = thetaStar
            moved[j] += 1
            let g2 = try Interpreter.evaluate(graph, inputs: ["Phi": Phiv, "y": yv, "theta": vector(moved)])["dL/dtheta"]!.scalars
            expectClose(g2, PtP[j], tolerance: 1e-9, "gradient at theta* + e_\(j)")
        }

        // The same model with features built inside the graph gives the same gradient.
        let h = GraphBuilder()
        let xIn = try h.input("x", shape: [20]), yIn = try h.input("y", shape: [20]), th = try h.input("theta", shape: [3])
        let prediction = try th[0] + th[1] * xIn + th[2] * square(xIn)
        let L2 = try 0.5 * sum(square(yIn - prediction))
        let inGraph = try lossGraph(L2, wrt: ["theta": th])
        let someTheta = vector([0.3, -1.1, 0.8])
        let r = residual(someTheta.scalars)
        try checkLossGraph(
            inGraph, at: ["x": vector(xs), "y": yv, "theta": someTheta], loss: 0.5 * dot(r, r),
            expected: ["theta": vecMat(r, Phiv).map { -$0 }])
    }

    @Test func oneParameterRegression() throws {
        let (xs, ys, _) = Self.polynomialData()
        let g = GraphBuilder()
        let a = try g.input("a"), x = try g.input("x", shape: [20]), y = try g.input("y", shape: [20])
        let L = try sum(square(y - a * x))
        let dLda = try gradient(of: L, wrt: a)
        let d2Lda2 = try gradient(of: dLda, wrt: a)
        let graph = try g.graph(outputs: ["L": L, "dL/da": dLda, "d2L/da2": d2Lda2])

        let sxx = dot(xs, xs), sxy = dot(xs, ys)
        let aStar = sxy / sxx
        for av in [aStar, -0.4, 1.3, 2.5] {
            let inputs = ["a": TensorData(av), "x": vector(xs), "y": vector(ys)]
            let out = try expectKernelMatchesInterpreter(graph, inputs)
            let r = zip(ys, xs).map { $0 - av * $1 }
            expectClose(out["L"]!.scalar, dot(r, r), tolerance: 1e-12, "L(\(av))")
            // dL/da = -2 sum x_n (y_n - a x_n)
            expectClose(out["dL/da"]!.scalar, -2 * dot(xs, r), tolerance: 1e-11, "dL/da(\(av))")
            expectClose(out["d2L/da2"]!.scalar, 2 * sxx, tolerance: 1e-12, "d2L/da2(\(av)) = 2 sum x^2")
            let fd1 = try finiteDifferenceGradient(graph, output: "L", wrt: "a", at: inputs)
            let fd2 = try finiteDifferenceGradient(graph, output: "dL/da", wrt: "a", at: inputs)
            expectClose(out["dL/da"]!.scalar, fd1[0], tolerance: 1e-7, "dL/da(\(av)) vs finite differences")
            expectClose(out["d2L/da2"]!.scalar, fd2[0], tolerance: 1e-7, "d2L/da2(\(av)) vs finite differences")
            if av == aStar {
                #expect(Swift.abs(out["dL/da"]!.scalar) < 1e-12 * 2 * Swift.abs(sxy), "dL/da at a* = \(out["dL/da"]!.scalar)")
            } else {
                #expect(Swift.abs(out["dL/da"]!.scalar) > 1e-3, "dL/da away from a* should not vanish")
            }
        }
    }

    // MARK: 6. Two-layer sigmoid network

    @Test func twoLayerSigmoidNetworkBackpropagation() throws {
        var rng = SeededRandom(seed: 6)
        let nIn = 4, nHidden = 5, nOut = 3
        let A0v = TensorData.random([nHidden, nIn], in: -1.5...1.5, using: &rng)
        let b0v = TensorData.random([nHidden], using: &rng)
        let A1v = TensorData.random([nOut, nHidden], in: -1.5...1.5, using: &rng)
        let b1v = TensorData.random([nOut], using: &rng)
        let xv = TensorData.random([nIn], in: -2...2, using: &rng)
        let yv = TensorData.random([nOut], in: 0...1, using: &rng)

        let g = GraphBuilder()
        let x = try g.input("x", shape: [nIn]), y = try g.input("y", shape: [nOut])
        let A0 = try g.input("A0", shape: [nHidden, nIn]), b0 = try g.input("b0", shape: [nHidden])
        let A1 = try g.input("A1", shape: [nOut, nHidden]), b1 = try g.input("b1", shape: [nOut])
        let f1 = try sigmoid(A0.matmul(x) + b0)
        let f2 = try sigmoid(A1.matmul(f1) + b1)
        let L = try sum(square(y - f2))
        let graph = try lossGraph(L, wrt: ["A0": A0, "b0": b0, "A1": A1, "b1": b1])

        // Hand-written backpropagation: a product of Jacobians, applied from the left.
        let z1 = zip(matVec(A0v, xv.scalars), b0v.scalars).map(+), h1 = z1.map(logistic)
        let z2 = zip(matVec(A1v, h1), b1v.scalars).map(+), h2 = z2.map(logistic)
        let r = zip(yv.scalars, h2).map(-)
        let loss = dot(r, r)
        // dL/df2 (row vector), then through the Jacobian diag(sigma'(z2)) of f2 w.r.t. z2.
        let dLdf2 = r.map { -2 * $0 }
        let J_f2_z2 = (0..<nOut).map { i in (0..<nOut).map { j in i == j ? h2[i] * (1 - h2[i]) : 0 } }
        let dLdz2 = (0..<nOut).map { j in (0..<nOut).reduce(0.0) { $0 + dLdf2[$1] * J_f2_z2[$1][j] } }
        // Jacobian of z2 w.r.t. f1 is A1.
        let dLdf1 = vecMat(dLdz2, A1v)
        let J_f1_z1 = (0..<nHidden).map { i in (0..<nHidden).map { j in i == j ? h1[i] * (1 - h1[i]) : 0 } }
        let dLdz1 = (0..<nHidden).map { j in (0..<nHidden).reduce(0.0) { $0 + dLdf1[$1] * J_f1_z1[$1][j] } }
        // z = A v + b: dL/dA = dL/dz v^T, dL/db = dL/dz.
        let expected: KeyValuePairs<String, [Double]> = [
            "A0": outerProduct(dLdz1, xv.scalars), "b0": dLdz1,
            "A1": outerProduct(dLdz2, h1), "b1": dLdz2,
        ]
        try checkLossGraph(
            graph, at: ["x": xv, "y": yv, "A0": A0v, "b0": b0v, "A1": A1v, "b1": b1v], loss: loss, expected: expected)
    }

    // MARK: 7. Directional derivatives

    @Test func directionalDerivativeOfScalarFunction() throws {
        var rng = SeededRandom(seed: 7)
        let n = 6
        let g = GraphBuilder()
        let x = try g.input("x", shape: [n])
        // Nonlinear and coupled across elements (log of a norm, adjacent products via slices).
        let f = try log(1 + sum(square(x))) * sum(sigmoid(x)) + sum(exp(0.5 * x) * cos(x))
            + sum(x[.from(1)] * x[.upTo(-1)])
        let grad = try gradient(of: f, wrt: x)
        let graph = try g.graph(outputs: ["f": f, "grad": grad])

        func value(_ p: [Double]) throws -> Double {
            try Interpreter.evaluate(graph, inputs: ["x": vector(p)])["f"]!.scalar
        }
        for _ in 0..<4 {
            let xv = TensorData.random([n], using: &rng)
            let v = TensorData.random([n], using: &rng).scalars
            let out = try expectKernelMatchesInterpreter(graph, ["x": xv])
            let gv = out["grad"]!.scalars
            let h = 1e-5
            let plus = zip(xv.scalars, v).map { $0 + h * $1 }, minus = zip(xv.scalars, v).map { $0 - h * $1 }
            let directional = (try value(plus) - value(minus)) / (2 * h)
            expectClose(dot(gv, v), directional, tolerance: 1e-8, "grad . v vs (f(x+hv) - f(x-hv)) / 2h")
            let fd = try finiteDifferenceGradient(graph, output: "f", wrt: "x", at: ["x": xv])
            expectClose(gv, fd, tolerance: 1e-7, "grad vs finite differences")
        }
    }

    @Test func directionalDerivativeOfVectorFunction() throws {
        var rng = SeededRandom(seed: 77)
        let n = 5, m = 3
        let Mv = TensorData.random([m, n], using: &rng)
        let g = GraphBuilder()
        let x = try g.input("x", shape: [n]), M = try g.input("M", shape: [m, n]), u = try g.input("u", shape: [m])
        let z = try M.matmul(x)
        let F = try tanh(z) * softplus(z) + sqrt(1 + square(z)) * sum(sin(x))
        let pulled = try vjp(of: F, wrt: [x], cotangent: u)[0]
        let graph = try g.graph(outputs: ["F": F, "uJ": pulled])

        func value(_ p: [Double]) throws -> [Double] {
            try Interpreter.evaluate(graph, inputs: ["x": vector(p), "M": Mv, "u": vector([0, 0, 0])])["F"]!.scalars
        }
        let xv = TensorData.random([n], using: &rng)
        let v = TensorData.random([n], using: &rng).scalars
        let h = 1e-5
        let Fp = try value(zip(xv.scalars, v).map { $0 + h * $1 })
        let Fm = try value(zip(xv.scalars, v).map { $0 - h * $1 })
        let Jv = zip(Fp, Fm).map { ($0 - $1) / (2 * h) }

        // Each basis cotangent e_i gives row i of J, whose product with v is (J v)_i; a random
        // cotangent checks u^T (J v) = (u^T J) v.
        let basis = (0..<m).map { i in (0..<m).map { $0 == i ? 1.0 : 0.0 } }
        for uv in basis + [TensorData.random([m], using: &rng).scalars] {
            let inputs = ["x": xv, "M": Mv, "u": vector(uv)]
            let out = try expectKernelMatchesInterpreter(graph, inputs)
            expectClose(dot(out["uJ"]!.scalars, v), dot(uv, Jv), tolerance: 1e-8, "(u^T J) v vs u^T (J v), u = \(uv)")
        }
    }

    // MARK: 8. Matrix-calculus identities

    @Test func gradientOfLinearForm() throws {
        var rng = SeededRandom(seed: 81)
        let av = TensorData.random([5], using: &rng), xv = TensorData.random([5], using: &rng)
        let g = GraphBuilder()
        let a = try g.input("a", shape: [5]), x = try g.input("x", shape: [5])
        let L = try a.matmul(x)
        let graph = try lossGraph(L, wrt: ["x": x])
        try checkLossGraph(graph, at: ["a": av, "x": xv], loss: dot(av.scalars, xv.scalars), expected: ["x": av.scalars],
                           closedFormTolerance: 1e-15)
    }

    @Test func gradientOfBilinearForm() throws {
        var rng = SeededRandom(seed: 82)
        let av = TensorData.random([4], using: &rng), bv = TensorData.random([3], using: &rng)
        let Xv = TensorData.random([4, 3], using: &rng)
        let g = GraphBuilder()
        let a = try g.input("a", shape: [4]), b = try g.input("b", shape: [3]), X = try g.input("X", shape: [4, 3])
        let L = try a.matmul(X).matmul(b)
        let graph = try lossGraph(L, wrt: ["X": X])
        try checkLossGraph(
            graph, at: ["a": av, "b": bv, "X": Xv], loss: dot(av.scalars, matVec(Xv, bv.scalars)),
            expected: ["X": outerProduct(av.scalars, bv.scalars)])
    }

    @Test func gradientOfQuadraticForm() throws {
        var rng = SeededRandom(seed: 83)
        let n = 4
        let Mv = TensorData.random([n, n], using: &rng)  // not symmetric, so M x and M^T x differ
        let av = TensorData.random([n], using: &rng), xv = TensorData.random([n], using: &rng)
        let g = GraphBuilder()
        let M = try g.input("M", shape: [n, n]), a = try g.input("a", shape: [n]), x = try g.input("x", shape: [n])
        let L = try x.matmul(M.matmul(x)) + a.matmul(x)
        let graph = try lossGraph(L, wrt: ["x": x])
        let Mx = matVec(Mv, xv.scalars), MTx = vecMat(xv.scalars, Mv)
        let expected = (0..<n).map { Mx[$0] + MTx[$0] + av.scalars[$0] }
        #expect(maxRelativeError(Mx, MTx) > 1e-3, "test data should make M x differ from M^T x")
        try checkLossGraph(
            graph, at: ["M": Mv, "a": av, "x": xv], loss: dot(xv.scalars, Mx) + dot(av.scalars, xv.scalars),
            expected: ["x": expected])
    }

    @Test func gradientOfSquaredBilinearResidual() throws {
        var rng = SeededRandom(seed: 84)
        let av = TensorData.random([3], using: &rng), bv = TensorData.random([4], using: &rng)
        let Wv = TensorData.random([3, 4], using: &rng)
        let g = GraphBuilder()
        let a = try g.input("a", shape: [3]), b = try g.input("b", shape: [4])
        let W = try g.input("W", shape: [3, 4]), c = try g.input("c")
        let L = try square(a.matmul(W).matmul(b) - c)
        let graph = try lossGraph(L, wrt: ["W": W, "c": c])
        for cv in [0.7, -1.2] {
            let residual = dot(av.scalars, matVec(Wv, bv.scalars)) - cv
            try checkLossGraph(
                graph, at: ["a": av, "b": bv, "W": Wv, "c": TensorData(cv)], loss: residual * residual,
                expected: ["W": outerProduct(av.scalars, bv.scalars).map { 2 * residual * $0 }, "c": [-2 * residual]])
        }
    }
}
