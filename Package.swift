// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Nabla",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Nabla", targets: ["Nabla"]),
        .executable(name: "nabla", targets: ["nabla"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation --target Nabla` (the DocC catalog in Sources/Nabla/Nabla.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Debian's libtcc-dev (static libtcc.a) wrapped as a system library.
        .systemLibrary(name: "CTCC", path: "Sources/CTCC"),
        // C that JIT-compiled kernels call into. No compiler flags (a package used by URL may
        // set none): the sources turn off FMA contraction themselves, release builds optimise
        // them, and debug builds compile an optimised copy at first use (KernelRuntime), from
        // the text the EmbedRuntimeSource plugin embeds.
        .target(
            name: "NablaRuntime",
            path: "runtime"
        ),
        .target(
            name: "Nabla",
            dependencies: ["CTCC", "NablaRuntime"],
            plugins: ["EmbedRuntimeSource"]
        ),
        .plugin(name: "EmbedRuntimeSource", capability: .buildTool()),
        .executableTarget(
            name: "nabla",
            dependencies: [
                "Nabla",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "quickstart",
            dependencies: ["Nabla"],
            path: "examples/quickstart"
        ),
        .executableTarget(name: "newton", dependencies: ["Nabla"], path: "examples/newton"),
        .executableTarget(name: "taylor-table", dependencies: ["Nabla"], path: "examples/taylor-table"),
        .executableTarget(name: "logistic-regression", dependencies: ["Nabla"], path: "examples/logistic-regression"),
        .executableTarget(name: "two-moons", dependencies: ["Nabla"], path: "examples/two-moons"),
        .executableTarget(name: "gp-hyperparameters", dependencies: ["Nabla"], path: "examples/gp-hyperparameters"),
        .executableTarget(name: "least-squares-fit", dependencies: ["Nabla"], path: "examples/least-squares-fit"),
        .executableTarget(name: "oscillator-fit", dependencies: ["Nabla"], path: "examples/oscillator-fit"),
        .executableTarget(name: "sharded-logistic-regression", dependencies: ["Nabla"], path: "examples/sharded-logistic-regression"),
        .testTarget(
            name: "NablaTests",
            dependencies: ["Nabla"]
        ),
    ]
)
