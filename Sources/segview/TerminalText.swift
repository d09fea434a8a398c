import ArgumentParser
import Foundation

/// Text from files (class names, descriptions, file names, libpng's messages) made safe for a
/// terminal: control characters other than newline and tab are shown in caret notation (ESC as
/// `^[`), C1 controls as `\x9b`, bidirectional controls as `\u{202e}`, so a file cannot retitle,
/// clear or reprogram the user's terminal, nor reorder what it shows.
func terminalSafe(_ text: String) -> String {
    var out = ""
    out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
    for scalar in text.unicodeScalars {
        switch scalar.value {
        case 0x0A, 0x09: out.unicodeScalars.append(scalar)
        case 0..<0x20: out += "^" + String(UnicodeScalar(UInt8(scalar.value) + 0x40))
        case 0x7F: out += "^?"
        case 0x80..<0xA0: out += String(format: "\\x%02x", scalar.value)
        // Bidirectional embeddings, overrides and isolates reorder what follows them on screen
        // (a name could show as another); line and paragraph separators.
        case 0x202A...0x202E, 0x2066...0x2069, 0x2028, 0x2029: out += String(format: "\\u{%04x}", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// Every line the command line prints goes through `terminalSafe`: this shadows the standard
/// library's `print` inside the segview target, so no call site can forget it.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(terminalSafe(items.map { "\($0)" }.joined(separator: separator)), terminator: terminator)
}

/// A line on standard error, made terminal-safe.
func printToStandardError(_ text: String) {
    FileHandle.standardError.write(Data((terminalSafe(text) + "\n").utf8))
}

extension Segview {
    /// ArgumentParser's entry point with error messages made terminal-safe (they quote paths and
    /// file contents); help and version go through unchanged.
    static func main() {
        // Past a file-size limit a write then fails with EFBIG, which SafeFile reports and cleans
        // up after, instead of the process dying with its temporary file left behind.
        signal(SIGXFSZ, SIG_IGN)
        // Swift's strings hold UTF-8 only: a file name in another encoding would reach the file
        // system with U+FFFD in place of its bytes and "not exist".
        for index in 1..<max(1, Int(CommandLine.argc)) {
            guard let argument = CommandLine.unsafeArgv[index], String(validatingCString: argument) == nil else {
                continue
            }
            let shown = String(cString: argument)  // invalid bytes as U+FFFD
            printToStandardError("Error: argument \(index), \(shown), is not valid UTF-8; segview takes file names "
                                 + "in UTF-8: rename the file (convmv converts a folder's names)")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }
            let message = fullMessage(for: error)
            if !message.isEmpty { printToStandardError(message) }
            Foundation.exit(code.rawValue)
        }
    }
}
