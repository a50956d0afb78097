/// The user functions of a file and the calls between them, to find recursion before any
/// function is expanded (expanding a recursive function would never end).
struct CallGraph {
    /// A call, in one function's body, of another user function.
    struct Call {
        let callee: Int
        let span: SourceSpan
    }

    /// A cycle of calls found by the search: `route` is `f -> g -> f`, from the function called
    /// back to itself; `call` is the call closing it, in the body of `caller`.
    struct Cycle {
        let function: String
        let route: [String]
        /// Functions left out of the middle of `route` (a long cycle is shown by its ends).
        let omitted: Int
        let caller: String
        let call: SourceSpan
    }

    /// Cycles shown in full up to this many functions; longer ones by their ends.
    static let maximumRouteShown = 12

    private(set) var names: [String] = []
    private var calls: [[Call]] = []

    /// The graph of the functions `statements` define. A name defined twice, or bound by an
    /// earlier statement or a built-in, keeps its first valid definition or none, as the
    /// elaborator does.
    init(_ statements: [Statement]) {
        var index: [String: Int] = [:]
        var bound: Set<String> = []
        var bodies: [Expression] = []
        for statement in statements {
            switch statement {
            case let .dim(name, _), let .input(name, _), let .binding(name, _, _):
                bound.insert(name.text)
            case let .function(name, _, body):
                guard !bound.contains(name.text), !builtinNames.contains(name.text) else { continue }
                bound.insert(name.text)
                index[name.text] = names.count
                names.append(name.text)
                bodies.append(body)
            default:
                break
            }
        }
        calls = bodies.map { body in
            var found: [Call] = []
            body.forEachCall { function, span in
                if let callee = index[function.text] { found.append(Call(callee: callee, span: span)) }
            }
            return found
        }
    }

    /// Every cycle closed by a call back to a function still being searched (at least one per
    /// recursive group), and every function that is part of a cycle.
    ///
    /// Tarjan's strongly connected components, with an explicit stack: linear in functions and
    /// calls.
    func recursion() -> (cycles: [Cycle], recursive: Set<String>) {
        var search = Search(count: names.count)
        for root in names.indices where search.order[root] == nil {
            search.enter(root)
            while let (function, next) = search.path.last {
                guard next < calls[function].count else {
                    search.leave(function, names: names)
                    continue
                }
                search.path[search.path.count - 1].next += 1
                let call = calls[function][next]
                if search.order[call.callee] == nil {
                    search.enter(call.callee)
                } else if search.onStack[call.callee] {
                    search.low[function] = min(search.low[function], search.order[call.callee]!)
                    if call.callee == function { search.callsItself[function] = true }
                    if let position = search.positionOnPath[call.callee] {
                        search.cycles.append(cycle(closedBy: call, from: position, path: search.path.map(\.function)))
                    }
                }
            }
        }
        return (search.cycles, search.recursive)
    }

    /// The cycle from `path[position]` to the end of `path`, then back by `call`.
    private func cycle(closedBy call: Call, from position: Int, path: [Int]) -> Cycle {
        let members = path[position...]
        let caller = names[path[path.count - 1]]
        let shown = Self.maximumRouteShown
        guard members.count > shown else {
            return Cycle(function: names[call.callee], route: members.map { names[$0] } + [names[call.callee]], omitted: 0, caller: caller, call: call.span)
        }
        let head = members.prefix(shown / 2).map { names[$0] }
        let tail = members.suffix(shown / 2).map { names[$0] }
        return Cycle(function: names[call.callee], route: head + tail + [names[call.callee]], omitted: members.count - shown, caller: caller, call: call.span)
    }

    /// The state of the depth-first search.
    private struct Search {
        /// The functions being searched from the root, and the next call of each to follow.
        var path: [(function: Int, next: Int)] = []
        var positionOnPath: [Int?]
        var order: [Int?]
        var low: [Int]
        var onStack: [Bool]
        var stack: [Int] = []
        var callsItself: [Bool]
        var visited = 0
        var cycles: [Cycle] = []
        var recursive: Set<String> = []

        init(count: Int) {
            positionOnPath = Array(repeating: nil, count: count)
            order = Array(repeating: nil, count: count)
            low = Array(repeating: 0, count: count)
            onStack = Array(repeating: false, count: count)
            callsItself = Array(repeating: false, count: count)
        }

        mutating func enter(_ function: Int) {
            order[function] = visited
            low[function] = visited
            visited += 1
            onStack[function] = true
            stack.append(function)
            positionOnPath[function] = path.count
            path.append((function, 0))
        }

        /// Done with `function`: closes its component if it is the component's first.
        mutating func leave(_ function: Int, names: [String]) {
            path.removeLast()
            positionOnPath[function] = nil
            if let parent = path.last { low[parent.function] = min(low[parent.function], low[function]) }
            guard low[function] == order[function] else { return }
            var component: [Int] = []
            while let member = stack.popLast() {
                onStack[member] = false
                component.append(member)
                if member == function { break }
            }
            if component.count > 1 || callsItself[function] {
                for member in component { recursive.insert(names[member]) }
            }
        }
    }
}

extension Elaborator {
    /// Finds the functions that call themselves, directly or through others: each cycle is an
    /// error reported with the definition holding the call that closes it, and calls of those
    /// functions are not expanded.
    mutating func findRecursion(_ statements: [Statement]) {
        // Without functions there is nothing to look for (and no table of every name to build).
        guard statements.contains(where: { if case .function = $0 { return true } else { return false } }) else { return }
        let (cycles, recursive) = CallGraph(statements).recursion()
        recursiveFunctions = recursive
        for cycle in cycles {
            let names = cycle.route.map(abbreviated)
            var route = names.joined(separator: " -> ")
            if cycle.omitted > 0 {
                let half = names.count / 2
                route = names[..<half].joined(separator: " -> ") + " -> ... (\(cycle.omitted) more) ... -> " + names[half...].joined(separator: " -> ")
            }
            recursionErrors[cycle.caller, default: []].append(
                Diagnostic("recursive function \(quoted(cycle.function)): \(route)", at: cycle.call, label: "functions expand at each call, so they cannot recurse"))
        }
    }
}
