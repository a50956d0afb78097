/// The loop IR: what a generated kernel computes, as typed statements over scalar expressions,
/// buffers and loops. Code generation builds it from the fused schedule; operations describe
/// their own computation in it; one renderer (`renderC`) turns it into C.
///
/// The IR depends on nothing else in Nabla: extents are plain integers, and every name in the
/// C it renders derives from a kind and numbers, never from user text.
public enum LoopIR {}

extension LoopIR {
    /// A loop counter. Each has a fixed C name; nested loops use different counters.
    public enum Counter: Hashable, Sendable {
        /// `i`: a flat loop over every element.
        case flat
        /// `i0`, `i1`, ...: the loop over one axis of a nest.
        case axis(Int)
        /// `q`: a loop after an unrolled one whose counter is still in scope.
        case tail
        /// `o0`, `o1`, ...: a loop over a kept axis of a reduction.
        case kept(Int)
        /// `r0`, `r1`, ...: a loop over a reduced axis.
        case reduced(Int)
        /// `j`: a loop over columns.
        case column
        /// `p`: a loop over the summation index of a product.
        case inner
        /// `k`: the loop over the steps of a `Scan`.
        case step
        /// `g`: the number of the block a `ParallelLoop`'s body runs (a parameter of its task,
        /// or the counter of the loop running the blocks in order).
        case block
    }

    /// A scalar variable of generated code.
    public enum Variable: Hashable, Sendable {
        /// `v<n>` (`v<n>_<lane>` in an unrolled copy): a value computed in a loop body or a
        /// statement, constant once defined.
        case value(Int, lane: Int? = nil)
        /// `s<n>`: a stored rank-0 value, declared at the top of its function.
        case scalar(Int)
        /// `k<n>_<j>`: value `n` as it was `j` positions back in a loop (a carried value).
        case carry(Int, Int)
        /// `h<n>`: an element read by every iteration of a loop, loaded before it.
        case hoisted(Int)
        /// `a<n>`: an element read several times by one iteration, loaded once.
        case cached(Int)
        /// `t<n>`: a temporary of an operation's own statements.
        case temporary(Int)
        /// `u<n>`: one block's partial sum (see `ReductionBlocks`).
        case partial(Int)
        /// A loop counter (a C `long`).
        case counter(Counter)
    }

    /// Memory the kernel reads or writes, as an array of doubles.
    public enum Buffer: Hashable, Sendable {
        /// `in<k>`: input `k` (read only).
        case input(Int)
        /// `out<k>`: output `k`.
        case output(Int)
        /// `b<n>`: scratch buffer `n`, at its offset in the workspace.
        case scratch(Int)
        /// `ws`: the workspace itself, for values addressed by offset (scalars shared between
        /// the functions of a split kernel).
        case workspace
        /// `nabla_c<n>`: a static constant array (a file-scope name no mangled user name can be).
        case constant(Int)
        /// `p<n>`: a pointer local to a loop body, declared by `Statement.pointer`.
        case pointer(Int)
        /// `nabla_p`: the partial sums of a `ParallelLoop`'s blocks, `partialCount` per block,
        /// in its body and its `after` statements only.
        case partials
    }

    /// An affine element index: `offset + sum(stride * counter)`.
    public struct Index: Hashable, Sendable {
        /// One term `stride * counter` of an index.
        public struct Term: Hashable, Sendable {
            /// The loop counter the term multiplies.
            public var counter: Counter
            /// Elements the index moves per step of the counter.
            public var stride: Int
            /// The term `stride * counter`.
            public init(_ counter: Counter, _ stride: Int) {
                self.counter = counter
                self.stride = stride
            }
        }

        /// The constant part, in elements.
        public var offset: Int
        /// Terms with non-zero strides, outermost counter first.
        public var terms: [Term]

        /// `offset + sum(stride * counter)` over `terms`; terms with stride 0 are dropped.
        public init(_ offset: Int = 0, _ terms: [Term] = []) {
            self.offset = offset
            self.terms = terms.contains { $0.stride == 0 } ? terms.filter { $0.stride != 0 } : terms
        }

        /// `offset + sum(counters[k] * strides[k])`.
        public init(offset: Int, counters: [Counter], strides: [Int]) {
            self.offset = offset
            var terms: [Term] = []
            terms.reserveCapacity(strides.count)
            for (counter, stride) in zip(counters, strides) where stride != 0 { terms.append(Term(counter, stride)) }
            self.terms = terms
        }

        /// The stride of `counter` in this index (0 when it does not appear).
        public func stride(of counter: Counter) -> Int {
            terms.reduce(0) { $0 + ($1.counter == counter ? $1.stride : 0) }
        }

        /// The index with `counter` replaced by `counter + shift`.
        public func shifted(_ counter: Counter, by shift: Int) -> Index {
            var copy = self
            copy.offset += shift * stride(of: counter)
            return copy
        }
    }

    /// Arithmetic on two doubles.
    public enum BinaryOperator: String, Hashable, Sendable {
        case add = "+", subtract = "-", multiply = "*", divide = "/"
    }

    /// Comparison of two doubles (IEEE: every comparison with a NaN is false but `!=`).
    public enum ComparisonOperator: String, Hashable, Sendable {
        case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=", equal = "==", notEqual = "!="
    }

    /// A truth value, for `Statement.ifElse` and `Expression.select`.
    public indirect enum Condition: Hashable, Sendable {
        case compare(ComparisonOperator, Expression, Expression)
        case or(Condition, Condition)
        case and(Condition, Condition)
        case not(Condition)
    }

    /// What a call passes for one parameter.
    public enum Argument: Hashable, Sendable {
        /// A double.
        case value(Expression)
        /// An integer constant (a C `long`).
        case integer(Int)
        /// The address of an element of a buffer.
        case address(Buffer, Index)
        /// The address of a variable (a rank-0 value handed to a function that writes or reads
        /// through a pointer).
        case addressOf(Variable)
    }

    /// A scalar expression. Expressions are trees of bounded depth: code generation names a
    /// value in a local before an expression would grow deeper than `maximumDepth`.
    public indirect enum Expression: Hashable, Sendable {
        case literal(Double)
        case variable(Variable)
        case load(Buffer, Index)
        case negate(Expression)
        case binary(BinaryOperator, Expression, Expression)
        case call(CFunction, [Argument])
        case select(Condition, Expression, Expression)

        /// A call with double arguments.
        public static func call(_ function: CFunction, _ operands: Expression...) -> Expression {
            .call(function, operands.map(Argument.value))
        }

        /// `a + b`.
        public static func + (a: Expression, b: Expression) -> Expression { .binary(.add, a, b) }
        /// `a - b`.
        public static func - (a: Expression, b: Expression) -> Expression { .binary(.subtract, a, b) }
        /// `a * b`.
        public static func * (a: Expression, b: Expression) -> Expression { .binary(.multiply, a, b) }
        /// `a / b`.
        public static func / (a: Expression, b: Expression) -> Expression { .binary(.divide, a, b) }
        /// `-a`.
        public static prefix func - (a: Expression) -> Expression { .negate(a) }
    }

    /// The deepest expression code generation writes; a value that would make one deeper is
    /// named in a local first, so neither Nabla's passes nor a C compiler's parser recurse
    /// without bound.
    public static let maximumDepth = 32

    /// Something a statement writes: a variable, or an element of a buffer.
    public enum Place: Hashable, Sendable {
        case variable(Variable)
        case element(Buffer, Index)

        /// The value the place holds, as an expression.
        public var value: Expression {
            switch self {
            case let .variable(v): return .variable(v)
            case let .element(buffer, index): return .load(buffer, index)
            }
        }
    }

    /// A `for` loop over `counter`.
    public struct Loop: Hashable, Sendable {
        /// The counter the loop advances.
        public var counter: Counter
        /// The first value, or nil when the counter is declared before the loop and the loop
        /// continues from its current value (after an unrolled loop).
        public var start: Int?
        /// The loop runs while `counter + width <= end` (width 1: `counter < end`).
        public var end: Int
        /// Counter values one iteration covers (the lane count in an unrolled loop's main part, else 1).
        public var width: Int
        /// Added to the counter after each iteration.
        public var step: Int
        /// The statements of one iteration.
        public var body: [Statement]
        /// True when the body may be unrolled (`unrolled(_:lanes:)`) and its loads cached.
        public var mayUnroll: Bool

        /// A loop of `counter` from `start` while `counter + width <= end`, adding `step` each time.
        public init(_ counter: Counter, from start: Int? = 0, to end: Int, width: Int = 1, step: Int = 1,
                    mayUnroll: Bool = false, body: [Statement]) {
            self.counter = counter
            self.start = start
            self.end = end
            self.width = width
            self.step = step
            self.body = body
            self.mayUnroll = mayUnroll
        }
    }

    /// A statement of a kernel.
    public indirect enum Statement: Hashable, Sendable {
        /// `/* text */`: the text names operations and node numbers, never user text.
        case comment(String)
        /// `const double v = e;` or, mutable, `double v = e;`.
        case declare(Variable, Expression, mutable: Bool)
        /// `place = e;`
        case assign(Place, Expression)
        /// `place += e;`
        case accumulate(Place, Expression)
        case loop(Loop)
        /// `{ ... }`: a scope for the variables declared inside.
        case block([Statement])
        /// A call of a function returning nothing.
        case call(CFunction, [Argument])
        case ifElse(Condition, [Statement], [Statement])
        /// `[const] double *const p<n> = &buffer[index];`
        case pointer(Int, Buffer, Index, writable: Bool)
        /// `long counter = start;`, for loops that continue from it.
        case counter(Counter, start: Int)
        /// A call of another function of the kernel (a loop's body) with the kernel calling
        /// convention: arrays of its inputs' and outputs' addresses, and its workspace.
        case invoke(Invocation)
        /// Blocks of a loop run as the parts of one `nabla_parallel` call, possibly at once.
        case parallel(ParallelLoop)

        /// `const double v = e;`
        public static func constant(_ v: Variable, _ e: Expression) -> Statement { .declare(v, e, mutable: false) }
    }

    /// A loop cut into blocks that may run at once, on the runtime's thread pool: its body
    /// runs once per block with `Counter.block` the block's number, as a task function of its
    /// own, and writes disjoint memory in every block. Each block leaves `partialCount` partial
    /// sums in `Buffer.partials` (block `g`'s at `g * partialCount`); `after` runs once all
    /// blocks are done, in order, and adds them up.
    ///
    /// The body reads the variables of its function it does not declare (stored scalars,
    /// hoisted loads) through the task's context, and writes none of them.
    public struct ParallelLoop: Hashable, Sendable {
        /// Its number in its program: the task is the static function `<program>_task<id>`.
        public var id: Int
        /// How many blocks (at least two).
        public var blocks: Int
        /// Partial sums each block leaves.
        public var partialCount: Int
        /// The statements of one block.
        public var body: [Statement]
        /// What runs after every block is done: the partial sums added up.
        public var after: [Statement]

        /// Task `id`: `body` run for blocks `0..<blocks`, then `after`.
        public init(id: Int, blocks: Int, partialCount: Int, body: [Statement], after: [Statement]) {
            self.id = id
            self.blocks = blocks
            self.partialCount = partialCount
            self.body = body
            self.after = after
        }

        /// The most partial sums one parallel loop keeps (on its caller's stack).
        public static let maximumPartials = 2048
    }

    /// A call of a subprogram (`Function.subprograms`): `name(inputs, outputs, workspace)` with
    /// the addresses given, as `{ const double *in[] = {...}; double *out[] = {...}; ... }`.
    public struct Invocation: Hashable, Sendable {
        /// The subprogram's entry point (a C identifier derived from the kernel's name).
        public var function: String
        /// Where each of its inputs' elements start.
        public var inputs: [Argument]
        /// Where each of its outputs' elements go.
        public var outputs: [Argument]
        /// The start of its workspace.
        public var workspace: Argument

        /// A call of `function` with these addresses.
        public init(function: String, inputs: [Argument], outputs: [Argument], workspace: Argument) {
            self.function = function
            self.inputs = inputs
            self.outputs = outputs
            self.workspace = workspace
        }
    }

    /// One C function of a kernel: its stored scalars (declared first) and its statements.
    public struct Function: Hashable, Sendable {
        /// Stored rank-0 values (`s<n>`), declared at the top of the function.
        public var scalars: [Variable]
        /// The function's body, in order.
        public var statements: [Statement]
        /// The programs its statements invoke (the bodies of its loops, and theirs), each one
        /// before those that invoke it; written as static functions before this one.
        public var subprograms: [Program]

        /// A function running `statements`, declaring `scalars` first.
        public init(scalars: [Variable] = [], statements: [Statement], subprograms: [Program] = []) {
            self.scalars = scalars
            self.statements = statements
            self.subprograms = subprograms
        }
    }

    /// A static constant array `nabla_c<n>`.
    public struct ConstantArray: Hashable, Sendable {
        /// The `n` of its C name `nabla_c<n>`.
        public var id: Int
        /// Its elements, in order.
        public var scalars: [Double]

        /// The array `nabla_c<id>` holding `scalars`.
        public init(id: Int, scalars: [Double]) {
            self.id = id
            self.scalars = scalars
        }
    }

    /// A whole kernel: the entry point
    /// `int NAME(const double *const *inputs, double *const *outputs, void *workspace)` and
    /// what it needs.
    public struct Program: Hashable, Sendable {
        /// The entry point's C name (already a C identifier).
        public var name: String
        /// Number of input buffers (`in<k>`) the entry point reads.
        public var inputCount: Int
        /// Number of output buffers (`out<k>`) the entry point writes.
        public var outputCount: Int
        /// Scratch memory in doubles.
        public var workspaceDoubles: Int
        /// Offset in doubles of each scratch buffer `b<n>` in the workspace.
        public var scratchOffsets: [Int: Int]
        /// The static constant arrays the C defines.
        public var constants: [ConstantArray]
        /// The kernel's parts, run in order; one part is written as the entry point itself,
        /// several as static functions the entry point calls (so no one C function grows
        /// without bound).
        public var parts: [Function]
        /// Lines of the comment at the top of the C (counts, never user text).
        public var summary: [String]

        /// A kernel from its parts; each argument sets the property of the same name.
        public init(name: String, inputCount: Int, outputCount: Int, workspaceDoubles: Int, scratchOffsets: [Int: Int],
                    constants: [ConstantArray], parts: [Function], summary: [String] = []) {
            self.name = name
            self.inputCount = inputCount
            self.outputCount = outputCount
            self.workspaceDoubles = workspaceDoubles
            self.scratchOffsets = scratchOffsets
            self.constants = constants
            self.parts = parts
            self.summary = summary
        }
    }
}

extension LoopIR.Function {
    /// The statements of every subprogram this function invokes (for the functions they call).
    var subprogramStatements: [LoopIR.Statement] { subprograms.flatMap { $0.parts.flatMap(\.statements) } }
}
