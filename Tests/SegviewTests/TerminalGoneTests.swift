import Foundation
import XCTest

/// The viewer on a pseudo-terminal that goes away without a SIGHUP (the pty is not its
/// controlling terminal, so closing it sends none): it used to spin at 100 % CPU forever.
final class TerminalGoneTests: XCTestCase {
    func testTheViewerExitsWhenItsTerminalCloses() throws {
        // posix_openpt and friends are not visible to Swift here: their ioctls, as glibc makes them
        // (Linux's TIOCSPTLCK and TIOCGPTN).
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)  // the viewer must not hold it open
        XCTAssertGreaterThanOrEqual(master, 0)
        var unlock: Int32 = 0, number: UInt32 = 0
        XCTAssertEqual(ioctl(master, 0x4004_5431, &unlock), 0)
        XCTAssertEqual(ioctl(master, 0x8004_5430, &number), 0)
        let slave = "/dev/pts/\(number)"
        var size = winsize(ws_row: 30, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in Int32(0)...2 { posix_spawn_file_actions_addopen(&actions, fd, slave, O_RDWR | O_NOCTTY, 0) }
        let arguments = [segviewBinary.path, modelFixtures.appendingPathComponent("street_37x53.png").path, "--model",
                         modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path]
        let environment = ["TERM=xterm-256color", "LANG=C.UTF-8", "PATH=/usr/bin:/bin"]
        let argv = arguments.map { strdup($0) } + [nil], envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        XCTAssertEqual(posix_spawn(&pid, segviewBinary.path, &actions, nil, argv, envp), 0)

        // Wait for the first frame, then close our end.
        var buffer = [UInt8](repeating: 0, count: 65536)
        var received = 0
        let deadline = Date().addingTimeInterval(20)
        while received < 2000 && Date() < deadline {
            var ready = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            if poll(&ready, 1, 100) > 0 { received += max(0, read(master, &buffer, buffer.count)) }
        }
        XCTAssertGreaterThan(received, 2000, "the viewer drew")
        close(master)

        var status: Int32 = 0
        let exitDeadline = Date().addingTimeInterval(5)
        while waitpid(pid, &status, WNOHANG) == 0 {
            guard Date() < exitDeadline else {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                return XCTFail("the viewer kept running after its terminal closed")
            }
            usleep(50_000)
        }
        XCTAssertEqual(status & 0x7F, 0, "it exits, not killed by signal \(status & 0x7F)")
        XCTAssertEqual((status >> 8) & 0xFF, 128 + SIGHUP, "it ends as a hangup would")
    }
}
