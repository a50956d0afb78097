/// Errors reported by Nabla's builder, transformations, interpreter and JIT.
///
/// Every case renders a message that names what went wrong and the values involved. All but
/// `internalInconsistency` are the caller's to handle (bad input, a missing compiler);
/// `internalInconsistency` is a broken invariant inside Nabla, a bug to report. Errors in
/// graph files are `SourceErrors`, with their file, line and column; files that cannot be read
/// are `FileReadError`s (or `SourceErrors` saying why, for graph files).
public enum NablaError: Error, Equatable, CustomStringConvertible {
    /// An operation was applied to operands whose shapes it cannot accept.
    case shapeMismatch(op: String, shapes: [Shape], reason: String)
    /// An operation was given arguments it cannot accept (an axis out of range, say).
    case invalidArgument(op: String, reason: String)
    /// A name was looked up that does not exist.
    case unknownName(kind: String, name: String, known: [String])
    /// A name was declared twice.
    case duplicateName(kind: String, name: String)
    /// Tensors from two different graph builders were combined.
    case mixedBuilders(op: String)
    /// A buffer or array of the wrong size was handed over.
    case sizeMismatch(what: String, expected: Int, got: Int)
    /// A number of buffers other than the kernel expects was handed over.
    case countMismatch(what: String, expected: Int, got: Int)
    /// The C compiler rejected generated code or could not run, or the code could not be
    /// loaded.
    case compilation(message: String, line: Int?, sourceLine: String?)
    /// A kernel reported failure.
    case kernelFailed(status: Int32)
    /// An invariant of Nabla's own failed (a pass produced something the next cannot use): a
    /// bug in Nabla, never the caller's input.
    case internalInconsistency(String)
    /// An output of a data-parallel kernel cannot be computed from inputs split by rows over
    /// processes (`DataParallelKernel`), for `reason`.
    case notSplittable(output: String, reason: String)
    /// The processes of a data-parallel kernel cannot communicate: MPI cannot be loaded or
    /// failed, or a communicator was misused.
    case communication(String)
    /// A shared library (a BLAS) could not be loaded or lacks what Nabla needs.
    case library(String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, shapes, reason):
            let list = shapes.map(\.description).joined(separator: " and ")
            return "shape mismatch in \(op): \(list): \(reason)"
        case let .invalidArgument(op, reason):
            return "invalid argument to \(op): \(reason)"
        case let .unknownName(kind, name, known):
            var text = "unknown \(kind) '\(name)'"
            if let near = nearestName(to: name, in: known) { text += "; did you mean '\(near)'?" }
            return text
        case let .duplicateName(kind, name):
            return "\(kind) '\(name)' is declared twice"
        case let .mixedBuilders(op):
            return "\(op) combines tensors from different graph builders"
        case let .sizeMismatch(what, expected, got):
            return "\(what) has \(got) elements; expected \(expected)"
        case let .countMismatch(what, expected, got):
            return "\(got) \(what) given; expected \(expected)"
        case let .compilation(message, line, sourceLine):
            var text = "C compilation failed: \(message)"
            if let line { text += " (generated C line \(line)" + (sourceLine.map { ": \($0)" } ?? "") + ")" }
            return text
        case let .kernelFailed(status):
            return "kernel returned status \(status)"
        case let .internalInconsistency(what):
            return "internal error (a bug in Nabla; please report it): \(what)"
        case let .notSplittable(output, reason):
            return "output '\(output)' cannot be split by rows: \(reason)"
        case let .communication(what):
            return what
        case let .library(what):
            return what
        }
    }
}

/// The candidate closest to `name` by edit distance, when it is close enough to be a likely
/// typo: a difference of case only, or at most one edit per three characters for names of
/// three or more (shorter names are too alike for a guess to help).
public func nearestName(to name: String, in candidates: [String]) -> String? {
    if let sameButCase = candidates.first(where: { $0 != name && $0.lowercased() == name.lowercased() }) {
        return sameButCase
    }
    guard name.count >= 3 else { return nil }
    let limit = max(1, name.count / 3)
    // Among equally near names, the one sharing the longest start wins ('sinn' is 'sin', not 'sign').
    var best: (name: String, distance: Int, prefix: Int)?
    for candidate in candidates.sorted() where candidate != name {
        let d = editDistance(name, candidate)
        guard d <= limit else { continue }
        let prefix = zip(name, candidate).prefix { $0 == $1 }.count
        if best == nil || d < best!.distance || (d == best!.distance && prefix > best!.prefix) { best = (candidate, d, prefix) }
    }
    return best?.name
}

/// Levenshtein distance between two strings, by characters.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous = Array(0...y.count)
    var current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            let cost = x[i - 1] == y[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}
