import Foundation
import Testing
@testable import Nabla

/// Value, gradient and Hessian of the chained Rosenbrock function of `n` variables.
func rosenbrockKernel(_ n: Int) throws -> Kernel {
    let g = GraphBuilder()
    let x = try g.input("x", shape: Shape([n]))
    let f = try sum(100 * square(square(x[.upTo(-1)]) - x[.from(1)]) + square(x[.upTo(-1)] - 1))
    return try Kernel(g.graph(outputs: ["f": f, "g": gradient(of: f, wrt: x), "H": hessian(of: f, wrt: x)]))
}


@Suite("Forward mode, Jacobians, Hessians and higher derivatives")
struct DerivativeTests {
    /// A vector function of a vector with every kind of coupling.
    static func vectorFunction(_ g: GraphBuilder) throws -> (x: Tensor, y: Tensor, A: Tensor) {
        let x = try g.input("x", shape: [4])
        let A = try g.input("A", shape: [3, 4])
        let y = try sin(A.matmul(x)) * exp(x[.upTo(3)]) + sum(x * x)
        return (x, y, A)
    }

    @Test func jacobianByForwardAndReverseAgreeWithFiniteDifferences() throws {
        let g = GraphBuilder()
        let (x, y, _) = try Self.vectorFunction(g)
        let forward = try jacobian(of: y, wrt: x, mode: .forward)
        let reverse = try jacobian(of: y, wrt: x, mode: .reverse)
        let automatic = try jacobian(of: y, wrt: x)
        let denominator = try jacobian(of: y, wrt: x, layout: .denominator)
        #expect(forward.shape == [3, 4] && reverse.shape == [3, 4] && denominator.shape == [4, 3])
        let graph = try g.graph(outputs: ["y": y, "F": forward, "R": reverse, "J": automatic, "D": denominator])
        var rng = SeededRandom(seed: 1)
        let inputs = ["x": TensorData.random([4], using: &rng), "A": TensorData.random([3, 4], using: &rng)]
        let out = try expectKernelMatchesInterpreter(graph, inputs)
        expectClose(out["F"]!.scalars, out["R"]!.scalars, tolerance: 1e-14)
        expectClose(out["J"]!.scalars, out["R"]!.scalars, tolerance: 1e-14)
        for i in 0..<3 { for j in 0..<4 { #expect(out["D"]![j, i] == out["J"]![i, j]) } }
        // Column j against a central difference in x_j.
        let yGraph = try g.graph(outputs: ["y": y])
        for j in 0..<4 {
            let h = 1e-6
            var plus = inputs, minus = inputs
            plus["x"]!.scalars[j] += h
            minus["x"]!.scalars[j] -= h
            let yp = try Interpreter.evaluate(yGraph, inputs: plus)["y"]!.scalars
            let ym = try Interpreter.evaluate(yGraph, inputs: minus)["y"]!.scalars
            expectClose((0..<3).map { out["J"]![$0, j] }, zip(yp, ym).map { ($0 - $1) / (2 * h) }, tolerance: 1e-7, "column \(j)")
        }
    }

    @Test func rankThreeAndFourJacobians() throws {
        // f(x) = A x: df/dA has entries d f_i / d A_iq = x_q (rank 3); d(A B)/dB is rank 4.
        let g = GraphBuilder()
        let A = try g.input("A", shape: [2, 3]), x = try g.input("x", shape: [3]), B = try g.input("B", shape: [3, 2])
        let f = try A.matmul(x)
        let dfdA = try jacobian(of: f, wrt: A)
        let dABdB = try jacobian(of: A.matmul(B), wrt: B)
        #expect(dfdA.shape == [2, 2, 3])
        #expect(dABdB.shape == [2, 2, 3, 2])
        var rng = SeededRandom(seed: 2)
        let inputs = ["A": TensorData.random([2, 3], using: &rng), "x": TensorData.random([3], using: &rng), "B": TensorData.random([3, 2], using: &rng)]
        let out = try expectKernelMatchesInterpreter(try g.graph(outputs: ["dfdA": dfdA, "dABdB": dABdB]), inputs)
        for i in 0..<2 { for p in 0..<2 { for q in 0..<3 {
            #expect(out["dfdA"]![i, p, q] == (i == p ? inputs["x"]!.scalars[q] : 0))
        } } }
        // d(AB)_ij / dB_kl = A_ik if j == l else 0.
        for i in 0..<2 { for j in 0..<2 { for k in 0..<3 { for l in 0..<2 {
            #expect(out["dABdB"]![i, j, k, l] == (j == l ? inputs["A"]![i, k] : 0))
        } } } }
    }

    @Test func jvpEqualsJacobianTimesVectorAndHvpEqualsHessianTimesVector() throws {
        let g = GraphBuilder()
        let (x, y, _) = try Self.vectorFunction(g)
        let v = try g.input("v", shape: [4])
        let L = try sum(square(y)) + sum(cos(x)) * sum(x)
        let graph = try g.graph(outputs: [
            "J": jacobian(of: y, wrt: x), "Jv": jvp(of: y, wrt: x, tangent: v),
            "H": hessian(of: L, wrt: x), "Hv": hvp(of: L, wrt: x, along: v), "g": gradient(of: L, wrt: x),
        ])
        var rng = SeededRandom(seed: 3)
        let inputs = ["x": TensorData.random([4], using: &rng), "A": TensorData.random([3, 4], using: &rng), "v": TensorData.random([4], using: &rng)]
        let out = try expectKernelMatchesInterpreter(graph, inputs)
        let vv = inputs["v"]!.scalars
        expectClose(out["Jv"]!.scalars, (0..<3).map { i in (0..<4).reduce(0.0) { $0 + out["J"]![i, $1] * vv[$1] } }, tolerance: 1e-13)
        expectClose(out["Hv"]!.scalars, (0..<4).map { i in (0..<4).reduce(0.0) { $0 + out["H"]![i, $1] * vv[$1] } }, tolerance: 1e-13)
        // Symmetric, and each row is the finite difference of the gradient.
        for i in 0..<4 { for j in 0..<4 { expectClose(out["H"]![i, j], out["H"]![j, i], tolerance: 1e-13) } }
        let gGraph = try g.graph(outputs: ["g": gradient(of: L, wrt: x)])
        for j in 0..<4 {
            let h = 1e-6
            var plus = inputs, minus = inputs
            plus["x"]!.scalars[j] += h
            minus["x"]!.scalars[j] -= h
            let gp = try Interpreter.evaluate(gGraph, inputs: plus)["g"]!.scalars
            let gm = try Interpreter.evaluate(gGraph, inputs: minus)["g"]!.scalars
            expectClose((0..<4).map { out["H"]![$0, j] }, zip(gp, gm).map { ($0 - $1) / (2 * h) }, tolerance: 1e-7)
        }
    }

    @Test func hessianClosedForms() throws {
        var rng = SeededRandom(seed: 4)
        // x^T M x + a^T x: Hessian M + M^T.
        do {
            let g = GraphBuilder()
            let x = try g.input("x", shape: [3]), M = try g.input("M", shape: [3, 3]), a = try g.input("a", shape: [3])
            let f = try x.matmul(M).matmul(x) + a.matmul(x)
            let m = TensorData.random([3, 3], using: &rng)
            let out = try expectKernelMatchesInterpreter(try g.graph(outputs: ["H": hessian(of: f, wrt: x)]),
                ["x": .random([3], using: &rng), "M": m, "a": .random([3], using: &rng)])
            for i in 0..<3 { for j in 0..<3 { expectClose(out["H"]![i, j], m[i, j] + m[j, i], tolerance: 1e-15) } }
        }
        // Least squares 1/2 ||y - Phi theta||^2: Hessian Phi^T Phi.
        do {
            let g = GraphBuilder()
            let Phi = try g.input("Phi", shape: [6, 3]), y = try g.input("y", shape: [6]), theta = try g.input("theta", shape: [3])
            let L = try 0.5 * sum(square(y - Phi.matmul(theta)))
            let phi = TensorData.random([6, 3], using: &rng)
            let out = try expectKernelMatchesInterpreter(try g.graph(outputs: ["H": hessian(of: L, wrt: theta)]),
                ["Phi": phi, "y": .random([6], using: &rng), "theta": .random([3], using: &rng)])
            for i in 0..<3 { for j in 0..<3 {
                expectClose(out["H"]![i, j], (0..<6).reduce(0.0) { $0 + phi[$1, i] * phi[$1, j] }, tolerance: 1e-14)
            } }
        }
        // Rosenbrock's known tridiagonal Hessian.
        let n = 5
        let kernel = try rosenbrockKernel(n)
        let xs = TensorData.random([n], using: &rng)
        let out = try kernel(["x": xs])
        let x = xs.scalars
        for i in 0..<n { for j in 0..<n {
            var expected = 0.0
            if i == j {
                if i < n - 1 { expected += 1200 * x[i] * x[i] - 400 * x[i + 1] + 2 }
                if i > 0 { expected += 200 }
            } else if j == i + 1 { expected = -400 * x[i] } else if i == j + 1 { expected = -400 * x[j] }
            expectClose(out["H"]![i, j], expected, tolerance: 1e-13, "H[\(i), \(j)]")
        } }
    }

    @Test func thirdAndFourthDerivativesOfTheSeedFunction() throws {
        let g = GraphBuilder()
        let x = try g.input("x")
        let f = try sqrt(x ** 2 + exp(x ** 2)) + sin(x ** 2 - 1)
        let d = try (0...4).map { try derivative(of: f, wrt: x, order: $0) }
        let graph = try g.graph(outputs: (0...4).map { ("d\($0)", d[$0]) })
        for point in [0.0, 0.5, 1.5, -2.0] {
            let out = try expectKernelMatchesInterpreter(graph, ["x": TensorData(point)])
            if point == 0.5 { expectClose(out["d2"]!.scalar, 3.8210474392096385, tolerance: 1e-12) }
            for k in 3...4 {
                // d_k against the central difference of d_(k-1).
                let h = 1e-5
                let lower = try g.graph(outputs: [("d", d[k - 1])])
                let plus = try Interpreter.evaluate(lower, inputs: ["x": TensorData(point + h)])["d"]!.scalar
                let minus = try Interpreter.evaluate(lower, inputs: ["x": TensorData(point - h)])["d"]!.scalar
                expectClose(out["d\(k)"]!.scalar, (plus - minus) / (2 * h), tolerance: 1e-6, "f^(\(k)) at \(point)")
            }
        }
    }

    @Test func taylorPolynomialsOfExpAndSin() throws {
        let g = GraphBuilder()
        let x = try g.input("x")
        let expCoefficients = try taylorCoefficients(of: exp(x), wrt: x, order: 5)
        let sinCoefficients = try taylorCoefficients(of: sin(x), wrt: x, order: 5)
        let out = try Kernel(g.graph(outputs: ["e": expCoefficients, "s": sinCoefficients]))(["x": TensorData(0)])
        let factorials = [1.0, 1, 2, 6, 24, 120]
        expectClose(out["e"]!.scalars, factorials.map { 1 / $0 }, tolerance: 1e-15)
        expectClose(out["s"]!.scalars, [0, 1, 0, -1.0 / 6, 0, 1.0 / 120], tolerance: 1e-15)
        // T_n(x) = sum_k c_k x^k approaches e^x as n grows, with the remainder bound.
        let t = 0.5
        for (n, bound) in [(1, 0.2), (2, 0.03), (5, 3e-5)] {
            let approximation = (0...n).reduce(0.0) { $0 + out["e"]!.scalars[$1] * pow(t, Double($1)) }
            #expect(Swift.abs(approximation - exp(t)) < bound, "order \(n)")
        }
    }

    @Test func newtonsMethodOnRosenbrockConverges() throws {
        let n = 6
        let kernel = try rosenbrockKernel(n)
        var x = [-1.2, 1, -1.2, 1, -1.2, 1]
        var iterations = 0
        while iterations < 100 {
            let out = try kernel([x])
            let gradient = out[1], H = out[2]
            if gradient.map(Swift.abs).max()! < 1e-10 { break }
            let rows = (0..<n).map { Array(H[$0 * n..<($0 + 1) * n]) }
            let step = solveLinear(rows, gradient)
            x = zip(x, step).map { $0 - $1 }
            iterations += 1
        }
        #expect(iterations < 100)
        expectClose(x, [Double](repeating: 1, count: n), tolerance: 1e-8)
    }

    @Test func secondDerivativeTestTellsMinimumMaximumAndSaddleApart() throws {
        // f = a x^2 + b y^2 at its stationary point (0, 0): the Hessian's eigenvalue signs decide.
        func classify(_ a: Double, _ b: Double) throws -> String {
            let g = GraphBuilder()
            let p = try g.input("p", shape: [2])
            let f = try a * square(p[0]) + b * square(p[1]) + 0.5 * p[0] * p[1]
            let out = try Kernel(g.graph(outputs: ["g": gradient(of: f, wrt: p), "H": hessian(of: f, wrt: p)]))(["p": try TensorData(shape: [2], scalars: [0, 0])])
            #expect(out["g"]!.scalars == [0, 0])
            let H = out["H"]!
            let determinant = H[0, 0] * H[1, 1] - H[0, 1] * H[1, 0]
            if determinant < 0 { return "saddle" }
            return H[0, 0] > 0 ? "minimum" : "maximum"
        }
        #expect(try classify(1, 2) == "minimum")
        #expect(try classify(-1, -2) == "maximum")
        #expect(try classify(1, -2) == "saddle")
    }

    @Test func forwardModeCompositionForwardOverForward() throws {
        // The second derivative by jvp of jvp equals the reverse-over-reverse one.
        let g = GraphBuilder()
        let x = try g.input("x")
        let one = g.filled(1, shape: .scalar)
        let f = try sin(x) * exp(x ** 2)
        let ff = try jvp(of: jvp(of: f, wrt: x, tangent: one), wrt: x, tangent: one)
        let rr = try derivative(of: f, wrt: x, order: 2)
        let out = try Kernel(g.graph(outputs: ["ff": ff, "rr": rr]))(["x": TensorData(0.7)])
        expectClose(out["ff"]!.scalar, out["rr"]!.scalar, tolerance: 1e-14)
    }
}
