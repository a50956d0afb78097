// swift-tools-version: 6.1
// Nabla's Swift benchmarks: P1 and P2 through Nabla's Swift API (NablaProgram, Kernel,
// callUnchecked) next to the same problems written with Swift's `_Differentiation`.
// A package of its own, so the main build and CI never build it or its dependencies.
//
//     cd benchmarks/swift && swift package benchmark
import Foundation
import PackageDescription

// A path dependency's identity is the last component of its path; this package sits at
// <root>/benchmarks/swift, so that is the root checkout's folder name, whatever it is called.
let rootIdentity = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

let package = Package(
    name: "NablaBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "NablaBenchmarks",
            dependencies: [
                .product(name: "Nabla", package: rootIdentity),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/NablaBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
