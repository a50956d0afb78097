extension RowSplit {
    /// The rule of a loop (`Scan`) that reads values split by rows or partial sums.
    ///
    /// A loop whose captured values are split (the Hessian's loop over directions, a `map` over
    /// parameters) runs its steps on this process's rows: its body is planned like a graph,
    /// with the captured values placed as they are outside, and each step's outputs must be
    /// partial sums (replicated ones are counted on the first process only), so the stacked
    /// outputs are a partial sum too. A loop that steps through split rows (a `fold` or `map`
    /// over the rows themselves) or carries values from step to step while reading split rows
    /// runs the rows in order, which blocks cannot, and is refused.
    func loop(_ scan: Scan) -> Rule {
        let body = scan.body
        let stepped = 0..<(body.carryCount + body.sequenceCount)
        let partialStepped = stepped.filter { placements[$0] == .partial }
        if !partialStepped.isEmpty { return .reduceFirst(partialStepped) }
        if stepped.contains(where: { rowAxis($0) != nil }) {
            return .refused("\(scan.name) steps through values split by rows (a loop over the rows runs them in order)")
        }
        guard body.carryCount == 0, !scan.keepsCarries else {
            if !partialOperands.isEmpty { return .reduceFirst(partialOperands) }
            return .refused("\(scan.name) carries values from step to step while reading split rows")
        }
        // The body's inputs: one row of each sequence, the step number, the captured values.
        var inputPlacements: [Int: RowPlacement] = [:]
        for k in 0..<body.captureCount {
            inputPlacements[body.graph.inputs[body.sequenceCount + 1 + k].node] = placements[body.sequenceCount + k]
        }
        do {
            let plan = try RowSplitPlan(body.graph, inputPlacements: inputPlacements, process: process)
            if let output = plan.combinations.firstIndex(of: .gathered) {
                return .refused("step output \(output) of \(scan.name) has a row per data row")
            }
            let local = try plan.localBody(body.graph, promoting: plan.combinations.map { $0 == .replicated })
            let localBody = try LoopBody(graph: local, carryCount: 0, sequenceCount: body.sequenceCount, captureCount: body.captureCount)
            return .partial(local: Scan(body: localBody, steps: scan.steps, reverse: scan.reverse))
        } catch NablaError.notSplittable(_, let reason) {
            return .refused(reason)
        } catch {
            return .refused("\(scan.name): \(error)")
        }
    }
}
