// swift-tools-version:6.0
// An application that embeds Nabla the way any Swift package is added: by URL and version.
//
//     dependencies: [.package(url: "https://example.org/you/nabla.git", from: "0.1.0")]
//
// Here the URL and version come from the environment (NABLA_URL, NABLA_VERSION), so that
// scripts/check-package can point this package at a tagged clone of the checkout
// (file:///...). Your own Package.swift names Nabla's repository directly.
import PackageDescription

let environment = Context.environment
guard let url = environment["NABLA_URL"] else {
    fatalError("set NABLA_URL to Nabla's repository (scripts/check-package does) and NABLA_VERSION to a tag")
}
let version = Version(environment["NABLA_VERSION"] ?? "0.1.0") ?? "0.1.0"
// SwiftPM names a package by the last component of its URL.
var identity = String(url.split(separator: "/").last ?? "nabla").lowercased()
if identity.hasSuffix(".git") { identity.removeLast(4) }

let package = Package(
    name: "EmbeddingApp",
    dependencies: [
        .package(url: url, from: version),
    ],
    targets: [
        .executableTarget(
            name: "EmbeddingApp",
            dependencies: [.product(name: "Nabla", package: identity)]
        ),
    ]
)
