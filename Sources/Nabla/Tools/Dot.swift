/// Graphviz drawings of graphs.
extension Graph {
    /// The graph in Graphviz DOT: one box per node labelled with its operation and shape,
    /// inputs and outputs named.
    public func dot(title: String = "nabla") -> String {
        var lines = ["digraph \(dotString(title)) {", "  rankdir=TB;", "  node [shape=box, fontname=\"Helvetica\", fontsize=10];"]
        let inputNames = Dictionary(inputs.map { ($0.node, $0.name) }, uniquingKeysWith: { a, _ in a })
        for (i, node) in nodes.enumerated() {
            var label = "%\(i) \(node.operation.description)"
            var style = ""
            if let name = inputNames[i] {
                label = "input \(name)"
                style = ", style=filled, fillcolor=\"#d8e8ff\""
            } else if node.operation is Constant {
                style = ", style=filled, fillcolor=\"#eeeeee\""
            }
            lines.append("  n\(i) [label=\(dotString(label + "\n" + node.shape.description))\(style)];")
            for operand in node.inputs { lines.append("  n\(operand) -> n\(i);") }
        }
        for (k, port) in outputs.enumerated() {
            lines.append("  o\(k) [label=\(dotString(port.name)), shape=ellipse, style=filled, fillcolor=\"#ffe8c8\"];")
            lines.append("  n\(port.node) -> o\(k);")
        }
        lines.append("}")
        return lines.joined(separator: "\n")
    }
}

/// A DOT string literal.
func dotString(_ text: String) -> String {
    var result = "\""
    for character in text {
        switch character {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        default: result.append(character)
        }
    }
    return result + "\""
}
