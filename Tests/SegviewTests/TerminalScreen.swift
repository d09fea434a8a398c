import Foundation
import XCTest

/// A terminal screen read back from `tmux capture-pane -e`: characters and their SGR colours.
struct TerminalScreen {
    enum Color: Hashable {
        case standard
        case indexed(Int)
        case rgb(Int, Int, Int)
    }

    struct Cell: Equatable {
        var character: Character = " "
        var fg = Color.standard
        var bg = Color.standard
    }

    let rows: [[Cell]]
    var text: [String] { rows.map { String($0.map(\.character)) } }

    /// Parses capture-pane output: printable characters and `ESC [ ... m` colour changes (others ignored).
    init(capture: String, width: Int) {
        var fg = Color.standard, bg = Color.standard
        var parsed: [[Cell]] = []
        for line in capture.split(separator: "\n", omittingEmptySubsequences: false) {
            var row: [Cell] = []
            var scalars = Array(line.unicodeScalars)[...]
            while let scalar = scalars.popFirst() {
                if scalar == "\u{1b}" {
                    guard scalars.first == "[" else { continue }
                    scalars.removeFirst()
                    var body = ""
                    while let next = scalars.popFirst() {
                        if next.properties.isAlphabetic { if next == "m" { Self.apply(body, &fg, &bg) }; break }
                        body.unicodeScalars.append(next)
                    }
                    continue
                }
                row.append(Cell(character: Character(scalar), fg: fg, bg: bg))
            }
            while row.count < width { row.append(Cell(character: " ", fg: .standard, bg: .standard)) }
            parsed.append(row)
        }
        rows = parsed
    }

    private static func apply(_ body: String, _ fg: inout Color, _ bg: inout Color) {
        var values = body.split(separator: ";", omittingEmptySubsequences: false).map { Int($0) ?? 0 }[...]
        if values.isEmpty { values = [0] }
        while let code = values.popFirst() {
            switch code {
            case 0: fg = .standard; bg = .standard
            case 30...37: fg = .indexed(code - 30)
            case 40...47: bg = .indexed(code - 40)
            case 90...97: fg = .indexed(code - 90 + 8)
            case 100...107: bg = .indexed(code - 100 + 8)
            case 39: fg = .standard
            case 49: bg = .standard
            case 38, 48:
                var color = Color.standard
                if values.first == 5, values.count >= 2 {
                    values.removeFirst(); color = .indexed(values.removeFirst())
                } else if values.first == 2, values.count >= 4 {
                    values.removeFirst()
                    let r = values.removeFirst(), g = values.removeFirst(), b = values.removeFirst()
                    color = .rgb(r, g, b)
                }
                if code == 38 { fg = color } else { bg = color }
            default: break
            }
        }
    }

    func contains(_ text: String) -> Bool { self.text.contains { $0.contains(text) } }

    /// The first row containing `text`.
    func row(containing text: String) -> Int? { self.text.firstIndex { $0.contains(text) } }
}

/// A program running in its own tmux server at a fixed size, driven by keys.
final class TmuxSession {
    let socket = "segview-test-\(UUID().uuidString.prefix(8))"
    let width: Int
    let height: Int

    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") || FileManager.default.isExecutableFile(atPath: "/usr/local/bin/tmux")
    }

    init(_ command: String, width: Int, height: Int, environment: [String: String], directory: String) throws {
        guard Self.available else { throw XCTSkip("tmux is not installed: the end-to-end viewer tests need it (apt-get install tmux)") }
        self.width = width
        self.height = height
        let env = environment.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        // Options come from a config file so that they hold from the first moment: a program that
        // exits at once must leave its last screen behind (remain-on-exit).
        let config = URL(fileURLWithPath: directory).appendingPathComponent(".tmux-\(socket).conf")
        try "set -g remain-on-exit on\nset -g status off\nset -sg escape-time 0\n".write(to: config, atomically: true, encoding: .utf8)
        try tmux(["-f", config.path, "new-session", "-d", "-s", "main", "-x", "\(width)", "-y", "\(height)",
                  "-c", directory, "env -i PATH=/usr/bin:/bin HOME=/tmp \(env) \(command)"])
    }

    deinit { _ = try? tmux(["kill-server"]) }

    /// Runs a tmux command and returns its output. Spawned with posix_spawn, not Foundation's
    /// Process: the tmux server that the first command starts inherits Process's internal
    /// descriptors, and Process would then wait for the server to exit.
    @discardableResult
    func tmux(_ arguments: [String]) throws -> String { try Self.tmux(socket: socket, arguments) }

    /// Runs a tmux command on the server at `socket` and returns its output.
    @discardableResult
    static func tmux(socket: String, _ arguments: [String]) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("\(socket)-\(UUID().uuidString).out").path
        defer { unlink(output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = (["tmux", "-L", socket] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawnp(&pid, "tmux", &actions, nil, argv, environ) == 0 else {
            throw XCTSkip("cannot start tmux")
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    }

    func send(_ keys: String...) throws { try tmux(["send-keys", "-t", "main"] + keys) }

    func capture() throws -> TerminalScreen {
        let output = try tmux(["capture-pane", "-t", "main", "-e", "-p", "-N"])
        return TerminalScreen(capture: String(output.split(separator: "\n", omittingEmptySubsequences: false).prefix(height)
                                                .joined(separator: "\n")), width: width)
    }

    /// Polls the screen until `predicate` holds (every 50 ms, up to `timeout` seconds).
    func waitFor(_ description: String, timeout: Double = 20, _ predicate: (TerminalScreen) -> Bool) throws -> TerminalScreen {
        let (screen, held) = try poll(timeout: timeout, predicate)
        if !held { XCTFail("timed out waiting for \(description); screen:\n\(screen.text.joined(separator: "\n"))") }
        return screen
    }

    /// The screen once `predicate` holds, or the last one after `timeout` seconds (no failure).
    func poll(timeout: Double, _ predicate: (TerminalScreen) -> Bool) throws -> (screen: TerminalScreen, held: Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        var screen = try capture()
        while !predicate(screen) {
            guard Date() < deadline else { return (screen, false) }
            usleep(50_000)
            screen = try capture()
        }
        return (screen, true)
    }

    func waitFor(text: String, timeout: Double = 20) throws -> TerminalScreen {
        try waitFor("'\(text)'", timeout: timeout) { $0.contains(text) }
    }

    var paneDead: Bool { (try? tmux(["display-message", "-t", "main", "-p", "#{pane_dead}"]))?.hasPrefix("1") ?? false }
    var panePID: Int32? { (try? tmux(["display-message", "-t", "main", "-p", "#{pane_pid}"])).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) } }

    func resize(width: Int, height: Int) throws {
        try tmux(["resize-window", "-t", "main", "-x", "\(width)", "-y", "\(height)"])
    }
}

/// The viewer (or tmux running it) on a pseudo-terminal of the test's own: every byte it writes,
/// and answers to its queries when the test gives them.
final class PseudoTerminal {
    private(set) var master: Int32
    let pid: pid_t
    private(set) var output = Data()

    /// Runs `executable` (segview unless given) with `arguments` on a new pseudo-terminal.
    init(_ arguments: [String], executable: String = segviewBinary.path, environment: [String: String],
         rows: Int = 40, cols: Int = 120, cellPixels: (Int, Int) = (10, 20)) throws {
        // posix_openpt and friends are not visible to Swift here: their ioctls, as glibc makes them
        // (Linux's TIOCSPTLCK and TIOCGPTN).
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)  // the viewer must not hold it open
        var unlock: Int32 = 0, number: UInt32 = 0
        guard master >= 0, ioctl(master, 0x4004_5431, &unlock) == 0, ioctl(master, 0x8004_5430, &number) == 0 else {
            throw XCTSkip("no pseudo-terminal available")
        }
        let name = "/dev/pts/\(number)"
        var size = winsize(ws_row: UInt16(rows), ws_col: UInt16(cols), ws_xpixel: UInt16(cols * cellPixels.0),
                           ws_ypixel: UInt16(rows * cellPixels.1))
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Not the controlling terminal (O_NOCTTY): closing it sends no SIGHUP.
        for descriptor in Int32(0)...2 {
            posix_spawn_file_actions_addopen(&actions, descriptor, name, O_RDWR | O_NOCTTY, 0)
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let settings: [String] = ["PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"]
            + environment.map { "\($0.key)=\($0.value)" }
        let env = settings.map { strdup($0) } + [nil]
        defer { env.forEach { free($0) } }
        var child: pid_t = 0
        guard posix_spawn(&child, executable, &actions, nil, argv, env) == 0 else {
            throw XCTSkip("cannot start \(executable) on a pseudo-terminal")
        }
        pid = child
    }

    /// The child's wait status once reaped; its pid is not signalled after that (it may be reused).
    private(set) var exitStatus: Int32?

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        hangUp()
    }

    /// Waits up to `timeout` seconds for the child to exit; its wait status, or nil if it still runs.
    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while exitStatus == nil {
            if waitpid(pid, &status, WNOHANG) == pid { exitStatus = status } else if Date() >= deadline { break }
            else { usleep(50_000) }
        }
        return exitStatus
    }

    /// Closes the test's end: the terminal goes away.
    func hangUp() {
        if master >= 0 { close(master) }
        master = -1
    }

    /// Reads what arrives for up to `timeout` seconds, until `predicate` holds of everything read so far.
    @discardableResult
    func read(timeout: Double, until predicate: (Data) -> Bool = { _ in false }) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            if predicate(output) { return true }
            var descriptor = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 50) > 0 else { continue }
            let count = Foundation.read(master, &buffer, buffer.count)
            if count <= 0 { break }
            output.append(contentsOf: buffer[0..<count])
        }
        return predicate(output)
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = write(master, bytes, bytes.count)
    }

    /// A new window size, and the SIGWINCH a terminal sends (this pty is not the child's
    /// controlling terminal, so the kernel sends none).
    func resize(rows: Int, cols: Int, cellPixels: (Int, Int)) {
        var size = winsize(ws_row: UInt16(rows), ws_col: UInt16(cols), ws_xpixel: UInt16(cols * cellPixels.0),
                           ws_ypixel: UInt16(rows * cellPixels.1))
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)
        kill(pid, SIGWINCH)
    }

    var text: String { String(decoding: output, as: UTF8.self) }
}
