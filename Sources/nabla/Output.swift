import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Output of the commands. A command computes everything first, then writes its files, then
// prints to standard output, so a failure leaves no partial output: no text on standard
// output before an error, and no new file left behind when another write fails.

/// Writes `text` to standard output, or fails with exit status 2 (a full disk, say), so that
/// lost output never passes for success.
func writeStandardOutput(_ text: String) throws {
    if let reason = writeAll(Array(text.utf8), to: STDOUT_FILENO) {
        throw CLIFailure.input("error: cannot write to standard output: \(reason)")
    }
}

/// Writes each text to its file; when one cannot be opened or written, the files this call
/// created are removed and the error names the file.
///
/// Files are written in place (truncated, then written), not through a temporary file renamed
/// over them: a target may be a device (`-o /dev/null`) or a link, which a rename would replace.
/// Every file is opened before any is written, and two outputs naming the same file are refused.
func writeFiles(_ files: [(option: String, path: String, text: String)]) throws {
    try refuseSameFile(files)
    var opened: [(descriptor: Int32, path: String, created: Bool)] = []
    func fail(_ path: String, _ reason: String) -> CLIFailure {
        for file in opened {
            close(file.descriptor)
            if file.created { unlink(file.path) }
        }
        return CLIFailure.input("error: cannot write '\(path)': \(reason)")
    }
    for file in files {
        var created = true
        var descriptor = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        if descriptor < 0 && errno == EEXIST {
            created = false
            descriptor = open(file.path, O_WRONLY | O_CLOEXEC)
        }
        guard descriptor >= 0 else { throw fail(file.path, errorText()) }
        opened.append((descriptor, file.path, created))
    }
    for (file, target) in zip(files, opened) {
        if let reason = truncateIfRegular(target.descriptor) ?? writeAll(Array(file.text.utf8), to: target.descriptor) {
            throw fail(file.path, reason)
        }
    }
    let descriptors = opened
    opened = []  // from here on, a failure removes nothing: every file is complete
    for target in descriptors where close(target.descriptor) != 0 {
        throw CLIFailure.input("error: cannot write '\(target.path)': \(errorText())")
    }
}

/// Fails when two of `files` are one file: the same path, or the same existing file by
/// device and inode (a link).
private func refuseSameFile(_ files: [(option: String, path: String, text: String)]) throws {
    for (k, a) in files.enumerated() {
        for b in files[(k + 1)...] where sameFile(a.path, b.path) {
            throw CLIFailure.input("error: \(a.option) and \(b.option) name the same file '\(b.path)'")
        }
    }
}

private func sameFile(_ a: String, _ b: String) -> Bool {
    if URL(fileURLWithPath: a).standardizedFileURL.path == URL(fileURLWithPath: b).standardizedFileURL.path { return true }
    var sa = stat(), sb = stat()
    guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}

/// Empties a regular file before it is written (devices and FIFOs are written as they are);
/// returns why that failed, or nil.
private func truncateIfRegular(_ descriptor: Int32) -> String? {
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { return errorText() }
    guard status.st_mode & S_IFMT == S_IFREG else { return nil }
    return ftruncate(descriptor, 0) == 0 ? nil : errorText()
}

/// Writes every byte to `descriptor`, retrying short writes; returns why that failed, or nil.
private func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> String? {
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written < 0 {
            if errno == EINTR { continue }
            return errorText()
        }
        offset += written
    }
    return nil
}

/// The text of the current `errno`.
private func errorText() -> String { String(cString: strerror(errno)) }
