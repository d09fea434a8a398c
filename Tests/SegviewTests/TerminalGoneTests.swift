import Foundation
import XCTest

/// The viewer on a pseudo-terminal that goes away without a SIGHUP (the pty is not its
/// controlling terminal, so closing it sends none): it used to spin at 100 % CPU forever.
final class TerminalGoneTests: XCTestCase {
    func testTheViewerExitsWhenItsTerminalCloses() throws {
        let terminal = try PseudoTerminal([modelFixtures.appendingPathComponent("street_37x53.png").path, "--model",
                                           modelFixtures.appendingPathComponent("tiny_five_classes.safetensors").path],
                                          environment: ["TERM": "xterm-256color"], rows: 30, cols: 100)
        // Wait for the first frame, then close our end.
        XCTAssertTrue(terminal.read(timeout: 20) { $0.count > 2000 }, "the viewer drew")
        terminal.hangUp()
        guard let status = terminal.waitForExit(timeout: 5) else {
            return XCTFail("the viewer kept running after its terminal closed")
        }
        XCTAssertEqual(status & 0x7F, 0, "it exits, not killed by signal \(status & 0x7F)")
        XCTAssertEqual((status >> 8) & 0xFF, 128 + SIGHUP, "it ends as a hangup would")
    }
}
