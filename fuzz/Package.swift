// swift-tools-version:6.0
// The libFuzzer target over Nabla's whole path (see Sources/NablaFuzz/Harness.swift). A package
// of its own, so the main package's `swift build` never builds it; scripts/fuzz builds and runs
// it (with -sanitize=fuzzer,address, which instrument the Nabla library too).
import PackageDescription

let package = Package(
    name: "NablaFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Nabla", path: ".."),
    ],
    targets: [
        // Declares libFuzzer's driver, which the harness's main hands its callback to.
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "NablaFuzz",
            dependencies: ["CFuzzerDriver", .product(name: "Nabla", package: "Nabla")]
        ),
    ]
)
