import Foundation
import Testing
@testable import Nabla

/// Shapes whose element count does not fit are refused where they enter a graph, with an
/// error, never a trap later in code generation.
@Suite("Element-count limits")
struct ElementCountTests {
    /// The message of an `.invalidArgument` error, or nil for anything else.
    private func invalidArgumentReason(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let NablaError.invalidArgument(_, reason) {
            return reason
        } catch {
            return nil
        }
    }

    @Test func anInputWhoseCountOverflowsIsRefusedBeforeEmitC() {
        // 2^80 elements: Shape.count used to trap in emitC (and so in Kernel).
        let reason = invalidArgumentReason {
            let g = GraphBuilder()
            let x = try g.input("x", shape: [1 << 40, 1 << 40])
            let graph = try g.graph(outputs: ["y": exp(x)])
            _ = try emitC(graph)
            _ = try Kernel(graph)
        }
        #expect(reason?.contains("shape [1099511627776, 1099511627776] has more than 1099511627776 (2^40) elements") == true)
    }

    @Test func inputsJustPastTheBoundAreRefusedAndAtItAccepted() throws {
        let g = GraphBuilder()
        #expect(throws: NablaError.self) { try g.input("big", shape: [(1 << 40) + 1]) }
        #expect(throws: NablaError.self) { try g.input("wide", shape: [0, 1 << 40, 1 << 40]) }
        let x = try g.input("x", shape: [1 << 20, 1 << 20])
        #expect(x.shape.count == Shape.maximumElementCount)
        // The name is free again: the refused inputs were not declared.
        _ = try g.input("big", shape: [2])
    }

    @Test func operationsWhoseResultOverflowsThrow() throws {
        let g = GraphBuilder()
        let v = try g.input("v", shape: [1 << 30])
        let w = try g.input("w", shape: [1 << 30])
        #expect(throws: NablaError.self) { try outer(v, w) }  // [2^30, 2^30]
        #expect(throws: NablaError.self) { try v.broadcast(to: [1 << 40, 1 << 30]) }
        #expect(throws: NablaError.self) { try v.reshaped([1 << 40, 1 << 40]) }  // the count saturates, then mismatches
        let reason = invalidArgumentReason { _ = try v.broadcast(to: [1 << 20, 1 << 30]) }
        #expect(reason?.contains("[1048576, 1073741824]") == true)
    }

    @Test func aHugeSliceStepSelectsOneElementInsteadOfOverflowing() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [10])
        let y = try x[.range(start: 2, end: 10, step: Int.max)]
        #expect(y.shape == [1])
        let m = try g.input("m", shape: [4, 6])
        let z = try m[.range(start: 1, end: nil, step: Int.max - 1), .range(start: 0, end: nil, step: 1 << 62)]
        #expect(z.shape == [1, 1])
        let graph = try g.graph(outputs: ["y": y, "z": z, "dz": gradient(of: sum(z * z), wrt: m)])
        let inputs = ["x": try TensorData(shape: [10], scalars: (0..<10).map(Double.init)),
                      "m": try TensorData(shape: [4, 6], scalars: (0..<24).map(Double.init))]
        let values = try expectKernelMatchesInterpreter(graph, inputs)
        #expect(values["y"]!.scalars == [2])
        #expect(values["z"]!.scalars == [6])
        #expect(values["dz"]!.scalars == (0..<24).map { $0 == 6 ? 12 : 0 })
    }

    @Test func filledAndEmptyConstantsPastTheBoundAreRefusedWhenUsed() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [3])
        let huge = g.filled(1, shape: [1 << 40, 1 << 40])  // cannot throw, must not trap
        #expect(throws: NablaError.self) { try huge + g.constant(1) }
        #expect(throws: NablaError.self) { try g.graph(outputs: ["h": huge]) }
        let empty = g.constant(try TensorData(shape: [0, 1 << 62, 4], scalars: []))
        #expect(throws: NablaError.self) { try concat([empty, empty], axis: 1) }
        #expect(throws: NablaError.self) { try g.graph(outputs: ["e": empty]) }
        // The builder is still usable for everything else.
        let graph = try g.graph(outputs: ["y": sum(x)])
        #expect(try Interpreter.evaluate(graph, inputs: ["x": TensorData(shape: [3], scalars: [1, 2, 3])])["y"]!.scalar == 6)
    }

    @Test func aGraphWhoseTensorsTogetherExceedTheBoundIsRefused() throws {
        let g = GraphBuilder()
        let x = try g.input("x", shape: [1 << 40])
        var y = x
        // 2^16 + 1 tensors of 2^40 elements: 2^56 + 2^40 elements in all.
        for k in 0..<(1 << 16) { y = y + Double(k) }
        let reason = invalidArgumentReason { _ = try g.graph(outputs: ["y": y]) }
        #expect(reason?.contains("more than 72057594037927936 (2^56) elements together") == true)
    }

    @Test func countAndStridesOfAnOversizedShapeDoNotTrap() {
        let shape = Shape([1 << 40, 1 << 40, 3])
        #expect(shape.count == Int.max)
        #expect(shape.strides == [3 << 40, 3, 1])
        #expect(Shape([0, 1 << 62, 1 << 62]).count == 0)
        #expect(Shape([1 << 62, 1 << 62, 0]).count == 0)
        #expect(throws: NablaError.self) { try TensorData(shape: shape, scalars: []) }
    }
}
