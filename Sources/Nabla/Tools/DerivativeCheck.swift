/// Compares derivative outputs with central finite differences of the functions they
/// differentiate.
public enum DerivativeCheck {
    /// Agreement of one derivative output with finite differences.
    public struct Result: Sendable {
        /// Name of the derivative output checked.
        public let output: String
        /// Largest |computed - numeric|.
        public let maxAbsoluteError: Double
        /// Largest |computed - numeric| / max(|numeric|, 1e-8).
        public let maxRelativeError: Double
        /// Largest |computed - numeric| / max(|numeric|, 1): the figure compared with the tolerance.
        public let error: Double
        /// True when `error` is within the tolerance (never when a NaN appeared).
        public let passed: Bool
    }

    /// Checks every derivative of `program` at `inputs` (all of the program's inputs).
    /// - Throws: `NablaError.unknownName` when `computed` lacks a derivative output or `inputs`
    ///   an input a derivative needs; `.invalidArgument` for a derivative taken with respect to
    ///   something that is not an input.
    ///
    /// `computed` holds the derivative outputs to check, by name (from a kernel or the
    /// interpreter). Each partial derivative is checked element by element with steps
    /// h = 6e-6 max(1, |x|); directional derivatives with one step along the direction.
    public static func check(
        _ program: NablaProgram, at inputs: [String: TensorData], computed: [String: TensorData], tolerance: Double = 1e-5
    ) throws -> [Result] {
        try program.derivatives.map { derivative in
            let f = derivative.function
            guard let value = computed[derivative.name] else {
                throw NablaError.unknownName(kind: "computed derivative", name: derivative.name, known: computed.keys.sorted())
            }
            var numeric = [Double]()
            func evaluate(_ point: [String: TensorData]) throws -> [Double] {
                try Interpreter.evaluate(f, inputs: point)["f"]!.scalars
            }
            guard let x = inputs[derivative.variable] else {
                throw NablaError.invalidArgument(op: "check", reason: "'\(derivative.name)' differentiates with respect to '\(derivative.variable)', which is not an input; finite differences need an input")
            }
            if let direction = derivative.direction {
                guard let v = inputs[direction] else {
                    throw NablaError.unknownName(kind: "input", name: direction, known: inputs.keys.sorted())
                }
                let scale = x.scalars.reduce(1.0) { max($0, Swift.abs($1)) }
                let vnorm = v.scalars.reduce(0.0) { max($0, Swift.abs($1)) }
                let h = 6e-6 * scale / max(vnorm, 1e-300)
                var plus = inputs, minus = inputs
                plus[derivative.variable] = try TensorData(shape: x.shape, scalars: zip(x.scalars, v.scalars).map { $0 + h * $1 })
                minus[derivative.variable] = try TensorData(shape: x.shape, scalars: zip(x.scalars, v.scalars).map { $0 - h * $1 })
                numeric = zip(try evaluate(plus), try evaluate(minus)).map { ($0 - $1) / (2 * h) }
            } else {
                // Column j holds d f / d x_j, stored function-major (numerator layout) or
                // variable-major (denominator).
                let n = x.scalars.count
                let m = f.outputShapes[0].count
                numeric = [Double](repeating: 0, count: m * n)
                var point = inputs
                for j in 0..<n {
                    let h = 6e-6 * max(1, Swift.abs(x.scalars[j]))
                    var plus = x, minus = x
                    plus.scalars[j] += h
                    minus.scalars[j] -= h
                    point[derivative.variable] = plus
                    let fp = try evaluate(point)
                    point[derivative.variable] = minus
                    let fm = try evaluate(point)
                    for i in 0..<m {
                        let index = derivative.layout == .numerator ? i * n + j : j * m + i
                        numeric[index] = (fp[i] - fm[i]) / (2 * h)
                    }
                }
            }
            var absolute = 0.0, relative = 0.0, combined = 0.0
            for (a, b) in zip(value.scalars, numeric) {
                // A NaN on either side (the finite difference of a NaN too) cannot be confirmed:
                // it counts as an infinite error, never as agreement.
                guard !a.isNaN, !b.isNaN else {
                    (absolute, relative, combined) = (.infinity, .infinity, .infinity)
                    continue
                }
                let diff = a == b ? 0 : Swift.abs(a - b)
                absolute = max(absolute, diff)
                relative = max(relative, diff / max(Swift.abs(b), 1e-8))
                combined = max(combined, diff / max(Swift.abs(b), 1))
            }
            return Result(output: derivative.name, maxAbsoluteError: absolute, maxRelativeError: relative, error: combined, passed: combined <= tolerance)
        }
    }
}
