// Taylor polynomials of e^x and sin x around 0 of orders 1, 2 and 5, from coefficients
// f^(k)(0)/k! that Nabla computes by repeated differentiation, against the true values; with
// `--svg FILE`, also the figure of the lecture notes: e^x and its Taylor polynomials of orders
// 1, 2 and 5 on [-2, 2], as an SVG picture.
// Run: swift run taylor-table [--svg taylor.svg]
import Foundation
import Nabla

/// The curves as an SVG line chart on [-2, 2] x [-2, 8], with axes, a grid and a legend.
func svgPicture(_ curves: [(label: String, colour: String, dash: String, f: (Double) -> Double)]) -> String {
    let width = 640.0, height = 420.0, left = 50.0, right = 20.0, top = 20.0, bottom = 40.0
    let (x0, x1, y0, y1) = (-2.0, 2.0, -2.0, 8.0)
    func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (width - left - right) }
    func py(_ y: Double) -> Double { top + (y1 - min(max(y, y0 - 1), y1 + 1)) / (y1 - y0) * (height - top - bottom) }
    func number(_ v: Double) -> String { String(format: "%.1f", v) }
    var svg = [
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
        "<clipPath id=\"plot\"><rect x=\"\(number(left))\" y=\"\(number(top))\" width=\"\(number(width - left - right))\" height=\"\(number(height - top - bottom))\"/></clipPath>",
    ]
    for x in stride(from: x0, through: x1, by: 1) {
        svg.append("<line x1=\"\(number(px(x)))\" y1=\"\(number(top))\" x2=\"\(number(px(x)))\" y2=\"\(number(height - bottom))\" stroke=\"#ddd\"/>")
        svg.append("<text x=\"\(number(px(x)))\" y=\"\(number(height - bottom + 16))\" text-anchor=\"middle\">\(Int(x))</text>")
    }
    for y in stride(from: y0, through: y1, by: 2) {
        svg.append("<line x1=\"\(number(left))\" y1=\"\(number(py(y)))\" x2=\"\(number(width - right))\" y2=\"\(number(py(y)))\" stroke=\"#ddd\"/>")
        svg.append("<text x=\"\(number(left - 8))\" y=\"\(number(py(y) + 4))\" text-anchor=\"end\">\(Int(y))</text>")
    }
    svg.append("<line x1=\"\(number(px(0)))\" y1=\"\(number(top))\" x2=\"\(number(px(0)))\" y2=\"\(number(height - bottom))\" stroke=\"#888\"/>")
    svg.append("<line x1=\"\(number(left))\" y1=\"\(number(py(0)))\" x2=\"\(number(width - right))\" y2=\"\(number(py(0)))\" stroke=\"#888\"/>")
    for (k, curve) in curves.enumerated() {
        let points = stride(from: x0, through: x1, by: 0.02).map { "\(number(px($0))),\(number(py(curve.f($0))))" }
        svg.append("<polyline clip-path=\"url(#plot)\" fill=\"none\" stroke=\"\(curve.colour)\" stroke-width=\"2\" stroke-dasharray=\"\(curve.dash)\" points=\"\(points.joined(separator: " "))\"/>")
        let y = top + 14 + 18 * Double(k)
        svg.append("<line x1=\"\(number(left + 16))\" y1=\"\(number(y))\" x2=\"\(number(left + 44))\" y2=\"\(number(y))\" stroke=\"\(curve.colour)\" stroke-width=\"2\" stroke-dasharray=\"\(curve.dash)\"/>")
        svg.append("<text x=\"\(number(left + 50))\" y=\"\(number(y + 4))\">\(curve.label)</text>")
    }
    svg.append("<text x=\"\(number(width / 2))\" y=\"\(number(height - 6))\" text-anchor=\"middle\">x</text>")
    svg.append("</svg>")
    return svg.joined(separator: "\n") + "\n"
}

do {
    let g = GraphBuilder()
    let x = try g.input("x")
    let graph = try g.graph(outputs: [
        "exp": taylorCoefficients(of: exp(x), wrt: x, order: 5),
        "sin": taylorCoefficients(of: sin(x), wrt: x, order: 5),
    ])
    let coefficients = try Kernel(graph)(["x": TensorData(0)])
    func taylor(_ c: [Double], _ order: Int, _ t: Double) -> Double { (0...order).reduce(0.0) { $0 + c[$1] * pow(t, Double($1)) } }
    for (name, f) in [("exp", { (t: Double) in exp(t) }), ("sin", { (t: Double) in sin(t) })] {
        let c = coefficients[name]!.scalars
        print("\(name)(x) around 0, coefficients \(c.map { String(format: "%.6g", $0) }.joined(separator: ", "))")
        print("     x        T1(x)        T2(x)        T5(x)      \(name)(x)")
        for t in [-1.0, -0.5, 0.1, 0.5, 1.0, 2.0] {
            print(String(format: "%6.2f  %11.7f  %11.7f  %11.7f  %11.7f", t, taylor(c, 1, t), taylor(c, 2, t), taylor(c, 5, t), f(t)))
        }
        print("")
    }
    if let k = CommandLine.arguments.firstIndex(of: "--svg"), k + 1 < CommandLine.arguments.count {
        let c = coefficients["exp"]!.scalars
        let picture = svgPicture([
            ("e^x", "#222222", "none", { exp($0) }),
            ("T1(x) = 1 + x", "#d9822b", "6 4", { taylor(c, 1, $0) }),
            ("T2(x) = 1 + x + x^2/2", "#3c9a5f", "2 3", { taylor(c, 2, $0) }),
            ("T5(x), order 5", "#1f5fa8", "10 3 2 3", { taylor(c, 5, $0) }),
        ])
        try picture.write(toFile: CommandLine.arguments[k + 1], atomically: true, encoding: .utf8)
        print("wrote \(CommandLine.arguments[k + 1])")
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
