/// A small, fast, seeded random number generator (SplitMix64), so seeded inputs are the same
/// on every machine and in every run.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator starting from `seed`; equal seeds give equal sequences.
    public init(seed: UInt64) { state = seed }

    /// The next 64 pseudo-random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension TensorData {
    /// A tensor of uniform random elements in `range`.
    public static func random<G: RandomNumberGenerator>(_ shape: Shape, in range: ClosedRange<Double> = -1...1, using generator: inout G) -> TensorData {
        TensorData(unchecked: shape, (0..<shape.count).map { _ in Double.random(in: range, using: &generator) })
    }
}
