#ifndef SEGVIEW_TERM_SHIM_H
#define SEGVIEW_TERM_SHIM_H

#include <stddef.h>
#include <stdint.h>

/// The parts of ncursesw segview uses, as plain functions: ncurses exposes many of them as macros,
/// and colour pairs must travel through the `int *opts` arguments (COLOR_PAIR() silently wraps
/// pairs above 255 into 8 bits).

/// What terminfo says about `term` (NULL: $TERM) without opening the screen: colours, whether it has
/// direct colour (the RGB or Tc capability). Returns 0, or -1 when there is no terminfo entry.
int seg_term_probe(const char *term, int *colors, int *direct_color);

/// Opens the screen on stdin/stdout with terminal type `term` (NULL: $TERM): cbreak, no echo,
/// keypad, short ESC delay, hidden cursor, colours. Returns 0, or -1 with nothing changed.
int seg_term_open(const char *term);

/// Opens a screen that writes to the file `path` instead of the terminal, `rows` x `cols` (for
/// measuring what a frame costs in bytes). Returns 0 or -1.
int seg_term_open_file(const char *term, const char *path, int rows, int cols);

/// Asks for mouse reports (button 1 presses and the wheel). Returns 0, or -1 when the terminal has none.
int seg_term_enable_mouse(void);
/// After KEY_MOUSE: the cell of the event and what it was: 1 button 1 pressed, 4 wheel up, 5 wheel
/// down, 0 anything else.
int seg_term_mouse(int *y, int *x);

/// Restores the terminal. Safe to call twice.
void seg_term_close(void);

void seg_term_size(int *rows, int *cols);
int seg_term_color_count(void);
int seg_term_pair_count(void);

/// A colour pair for (fg, bg), -1 meaning the terminal's default; -1 when pairs are exhausted.
int seg_term_pair(int fg, int bg);
/// Frees every pair (after exhaustion); the caller repaints everything.
void seg_term_reset_pairs(void);

/// One cell: a character with a colour pair, optionally bold.
void seg_term_cell(int y, int x, uint32_t glyph, uint32_t mark, uint32_t second_mark, int pair, int bold);
void seg_term_refresh(void);

/// Waits up to `timeout_ms` for a key. Returns the character (or KEY_* code, see seg_term_is_function_key),
/// -1 on timeout, or -2 when the terminal is gone (end of input, hangup or I/O error on it).
int seg_term_key(int timeout_ms, int *is_function_key);

/// The terminal columns of a character (wcwidth in the current locale): 2 wide, 0 combining, -1 unknown.
int seg_wcwidth(uint32_t character);

/// KEY_* constants that are macros in ncurses.
int seg_term_key_code(const char *name);

/// SIGINT, SIGTERM and SIGHUP set a flag instead of killing the process, so the loop can restore
/// the terminal; returns the signal received, or 0. Fatal signals (a crash: SIGSEGV, SIGBUS,
/// SIGILL, SIGFPE, SIGTRAP, SIGABRT) restore the terminal (main screen, cursor, line mode) and then
/// kill the process as they would have.
void seg_term_catch_signals(void);
int seg_term_signal_received(void);

/// Clears the screen for real on the next refresh (every cell rewritten), where images painted
/// into the cells must go.
void seg_term_clear_all(void);

/// Writes `query` to the terminal on stdout (stdin raw, no echo) and collects its answer into `answer`
/// (NUL-terminated) until the primary device attributes reply (which should close every query) or
/// `timeout_ms`. Returns the bytes read, or -1 without a terminal. Call before the screen opens.
int seg_term_query(const char *query, char *answer, int capacity, int timeout_ms);

/// A cell's size in pixels from the window size's pixel fields; 0 where the terminal leaves them empty.
void seg_term_pixel_size(int *width, int *height);

/// Bytes straight to the terminal (graphics escapes), after what ncurses has buffered.
void seg_term_write_raw(const char *bytes, size_t length);

#endif
