/// A C function generated code may call: one of libm's, a small helper the C defines itself,
/// or one of Nabla's runtime's.
///
/// Operations name the functions they need in the expressions and statements they build, so
/// the renderer declares or defines exactly what the C calls, with no list kept elsewhere.
/// Two functions are the same function when their names are equal.
public struct CFunction: Hashable, Sendable, CustomStringConvertible {
    /// The C types of parameters and results.
    public enum CType: String, Hashable, Sendable {
        case double = "double"
        case long = "long"
        case void = "void"
        case constDoublePointer = "const double *"
        case doublePointer = "double *"
        case voidPointer = "void *"
        /// A parallel loop's task: `void task(void *context, long block)`.
        case task = "void (*)(void *, long)"
    }

    /// A parameter: its type and, for prototypes that name them, its name.
    public struct Parameter: Hashable, Sendable {
        /// The parameter's C type.
        public var type: CType
        /// The name a prototype gives it, or nil to leave it unnamed.
        public var name: String?

        /// A parameter of `type`, named `name` when one is given.
        public init(_ type: CType, _ name: String? = nil) {
            self.type = type
            self.name = name
        }
    }

    /// Where the function's code comes from.
    public enum Origin: Hashable, Sendable {
        /// libm: the C declares its prototype.
        case libm
        /// A static function whose whole definition (C text written by Nabla, not derived from
        /// any input) the C carries.
        case helper(definition: String)
        /// Nabla's runtime, compiled with optimisation: JIT kernels declare it (by name, or as a
        /// pointer slot the loader fills); standalone C carries `standalone` as a static
        /// function instead, or cannot call it at all when that is nil.
        case runtime(standalone: String?)
    }

    /// The C name calls use; it is also the function's identity.
    public let name: String
    /// The C return type.
    public let result: CType
    /// The parameters, in order.
    public let parameters: [Parameter]
    /// Where the function's code comes from: libm, a helper the C defines, or Nabla's runtime.
    public let origin: Origin
    /// Functions the definition calls, which the C must declare or define first.
    public let calls: [CFunction]

    /// The function `name` returning `result`, with its parameters, origin and callees.
    public init(_ name: String, returns result: CType = .double, _ parameters: [Parameter], origin: Origin, calls: [CFunction] = []) {
        self.name = name
        self.result = result
        self.parameters = parameters
        self.origin = origin
        self.calls = calls
    }

    public static func == (a: CFunction, b: CFunction) -> Bool { a.name == b.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
    public var description: String { name }

    /// `RESULT NAME(PARAMETERS);`
    public var prototype: String {
        "\(result.rawValue) \(name)(\(parameterList));"
    }

    /// `RESULT (*SLOT)(PARAMETERS) = 0;` and a macro that keeps calls' syntax: how C built by
    /// the system compiler reaches a runtime function, through a pointer the loader fills.
    public var pointerSlot: String {
        "\(result.rawValue) (*\(CFunction.slotPrefix)\(name))(\(parameterList)) = 0;\n#define \(name) \(CFunction.slotPrefix)\(name)"
    }

    /// Prefix of the pointer variable standing for a runtime function in C that reaches the
    /// runtime through pointers. A name of its own, so the host's exported runtime symbol never
    /// interposes on it.
    public static let slotPrefix = "nabla_slot_"

    private var parameterList: String {
        parameters.map { p in
            guard let name = p.name else { return p.type.rawValue }
            return p.type.rawValue.hasSuffix("*") ? p.type.rawValue + name : p.type.rawValue + " " + name
        }.joined(separator: ", ")
    }

    /// A libm function of doubles.
    public static func libm(_ name: String, arity: Int = 1) -> CFunction {
        CFunction(name, Array(repeating: Parameter(.double), count: arity), origin: .libm)
    }

    /// libm's `sqrt`, `exp`, `log` and `log1p`.
    public static let sqrt = libm("sqrt"), exp = libm("exp"), log = libm("log"), log1p = libm("log1p")
    /// libm's `sin`, `cos`, `tan` and `tanh`.
    public static let sin = libm("sin"), cos = libm("cos"), tan = libm("tan"), tanh = libm("tanh")
    /// libm's `fabs` and `pow` (two arguments).
    public static let fabs = libm("fabs"), pow = libm("pow", arity: 2)

    /// The runtime's `nabla_parallel(parts, task, context)`: `task(context, part)` for every
    /// part, on the runtime's thread pool (`ParallelLoop`). Standalone C runs the parts in
    /// order on the calling thread.
    public static let parallel = CFunction(
        "nabla_parallel", returns: .void, [Parameter(.long), Parameter(.task), Parameter(.voidPointer)],
        origin: .runtime(standalone: """
            static void nabla_parallel(long parts, void (*task)(void *, long), void *context) {
                long part;
                for (part = 0; part < parts; part++) task(context, part);
            }
            """))
}

extension LoopIR {
    /// Every function the statements call, directly or through other functions' definitions,
    /// each after the functions its definition calls.
    static func functionsCalled(by statements: [Statement]) -> [CFunction] {
        var direct: [CFunction] = []
        var seen = Set<String>()
        forEachExpression(in: statements, onCall: { function in
            if seen.insert(function.name).inserted { direct.append(function) }
        }) { _ in }
        var ordered: [CFunction] = []
        var placed = Set<String>()
        // Callees first: a depth-first walk with an explicit stack (definitions call few
        // functions and never each other in cycles).
        for root in direct.sorted(by: { $0.name < $1.name }) {
            var stack: [(CFunction, Int)] = [(root, 0)]
            while let (function, next) = stack.popLast() {
                if placed.contains(function.name) { continue }
                if next < function.calls.count {
                    stack.append((function, next + 1))
                    let callee = function.calls[next]
                    if !placed.contains(callee.name) { stack.append((callee, 0)) }
                } else {
                    placed.insert(function.name)
                    ordered.append(function)
                }
            }
        }
        return ordered
    }
}
