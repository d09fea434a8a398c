#define _GNU_SOURCE 1
#define NCURSES_WIDECHAR 1
#define _XOPEN_SOURCE_EXTENDED 1
#include "term_shim.h"

#include <ncursesw/curses.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <signal.h>
#include <termios.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <term.h>
#include <unistd.h>
#include <wchar.h>

static SCREEN *screen = NULL;
static FILE *output_file = NULL;
static FILE *input_file = NULL;
static volatile sig_atomic_t received_signal = 0;
// What a fatal-signal handler writes and restores: prepared while the screen opens, since the
// handler may only call async-signal-safe functions (write, tcsetattr).
static char restore_sequence[96];
static size_t restore_length = 0;
static struct termios saved_termios;
static int saved_termios_valid = 0;
// Whether the viewer asked for SGR mouse reports itself: endwin turns off only what ncurses asked for.
static int sgr_reports_asked = 0;
static const char sgr_reports_on[] = "\033[?1006h", sgr_reports_off[] = "\033[?1006l";
// ncurses' SIGTSTP handler (it leaves and restores the screen around the stop), which
// on_suspend wraps to turn the SGR reports off for the stop and on again after it.
static struct sigaction ncurses_suspend;
static int terminal_descriptor = STDOUT_FILENO;
// The fatal-signal handler runs here: a stack overflow leaves no room on the thread's own stack,
// and the terminal would stay on the alternate screen.
static char fatal_signal_stack[1 << 16];

int seg_term_probe(const char *term, int *colors, int *direct_color) {
    int error = 0;
    if (setupterm(term, STDOUT_FILENO, &error) != OK) return -1;
    *colors = tigetnum("colors");
    // tigetflag returns -1 for a name that is not a boolean capability in this entry.
    *direct_color = tigetflag("RGB") > 0 || tigetflag("Tc") > 0;
    del_curterm(cur_term);
    cur_term = NULL;
    return 0;
}

static void append_restore(const char *capability) {
    if (!capability || capability == (char *)-1) return;
    size_t length = strlen(capability);
    if (restore_length + length >= sizeof restore_sequence) return;
    memcpy(restore_sequence + restore_length, capability, length);
    restore_length += length;
}

static int start(const char *term, FILE *out, FILE *in) {
    saved_termios_valid = tcgetattr(fileno(in), &saved_termios) == 0;
    screen = newterm(term, out, in);
    if (!screen) return -1;
    set_term(screen);
    if (has_colors()) {
        start_color();
        use_default_colors();
    }
    set_escdelay(25);
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    leaveok(stdscr, TRUE);
    // No inserting or deleting characters to redraw a line: that shifts the rest of the line, and
    // with it the pixels of images painted into the cells (sixel, iTerm2).
    idcok(stdscr, FALSE);
    restore_length = 0;
    append_restore(exit_attribute_mode);
    append_restore(exit_ca_mode);
    append_restore(cursor_normal);
    append_restore(keypad_local);
    return 0;
}

static void on_suspend(int number) {
    ssize_t ignored = write(terminal_descriptor, sgr_reports_off, sizeof sgr_reports_off - 1);
    if (ncurses_suspend.sa_handler != SIG_DFL && ncurses_suspend.sa_handler != SIG_IGN) {
        ncurses_suspend.sa_handler(number);  // returns once the process is continued
    } else {
        signal(SIGTSTP, SIG_DFL);
        raise(SIGTSTP);
        signal(SIGTSTP, on_suspend);
    }
    ignored = write(terminal_descriptor, sgr_reports_on, sizeof sgr_reports_on - 1);
    (void)ignored;
}

int seg_term_enable_mouse(void) {
    // Presses, not clicks: a click is reported only after the release and ncurses' click interval.
    mmask_t wanted = BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED;
    mouseinterval(0);
    if ((mousemask(wanted, NULL) & wanted) == 0) return -1;
    // Entries such as tmux-256color and screen-256color name X10 reports (kmous=\E[M), whose
    // columns stop at 223. Asking for SGR reports too lifts that; Terminal parses them itself.
    const char *kmous = tigetstr("kmous");
    if (kmous && kmous != (char *)-1 && strcmp(kmous, "\033[M") == 0) {
        seg_term_write_raw(sgr_reports_on, sizeof sgr_reports_on - 1);
        sgr_reports_asked = 1;
        terminal_descriptor = fileno(output_file ? output_file : stdout);
        struct sigaction wrapper = {0};
        wrapper.sa_handler = on_suspend;
        sigemptyset(&wrapper.sa_mask);
        sigaction(SIGTSTP, &wrapper, &ncurses_suspend);
    }
    // What endwin would send to stop the reports (xterm's modes; ncurses enables both).
    append_restore("\033[?1006l\033[?1000l");
    return 0;
}

int seg_term_mouse(int *y, int *x) {
    MEVENT event;
    if (getmouse(&event) != OK) return 0;
    *y = event.y;
    *x = event.x;
    if (event.bstate & BUTTON1_PRESSED) return 1;
    if (event.bstate & BUTTON4_PRESSED) return 4;
    if (event.bstate & BUTTON5_PRESSED) return 5;
    return 0;
}

int seg_term_open(const char *term) {
    if (screen) return 0;
    return start(term, stdout, stdin);
}

int seg_term_open_file(const char *term, const char *path, int rows, int cols) {
    if (screen) return -1;
    output_file = fopen(path, "w");
    input_file = fopen("/dev/null", "r");
    if (!output_file || !input_file) return -1;
    char text[16];
    snprintf(text, sizeof text, "%d", rows);
    setenv("LINES", text, 1);
    snprintf(text, sizeof text, "%d", cols);
    setenv("COLUMNS", text, 1);
    return start(term, output_file, input_file);
}

void seg_term_close(void) {
    if (!screen) return;
    endwin();
    if (sgr_reports_asked) {
        seg_term_write_raw(sgr_reports_off, sizeof sgr_reports_off - 1);
        sigaction(SIGTSTP, &ncurses_suspend, NULL);
        sgr_reports_asked = 0;
    }
    delscreen(screen);
    screen = NULL;
    fflush(stdout);
    if (output_file) fclose(output_file);
    if (input_file) fclose(input_file);
    output_file = input_file = NULL;
}

void seg_term_size(int *rows, int *cols) {
    *rows = getmaxy(stdscr);
    *cols = getmaxx(stdscr);
}

int seg_term_color_count(void) { return COLORS; }
int seg_term_pair_count(void) { return COLOR_PAIRS; }

int seg_term_pair(int fg, int bg) { return has_colors() ? alloc_pair(fg, bg) : 0; }

void seg_term_reset_pairs(void) { reset_color_pairs(); }

void seg_term_cell(int y, int x, uint32_t glyph, uint32_t mark, uint32_t second_mark, int pair, int bold) {
    cchar_t cell;
    wchar_t text[4] = {(wchar_t)glyph, (wchar_t)mark, mark ? (wchar_t)second_mark : 0, 0};
    setcchar(&cell, text, bold ? A_BOLD : A_NORMAL, 0, &pair);
    mvadd_wch(y, x, &cell);
}

void seg_term_refresh(void) { refresh(); }

int seg_term_key(int timeout_ms, int *is_function_key) {
    wint_t key;
    timeout(timeout_ms);
    int status = get_wch(&key);
    *is_function_key = status == KEY_CODE_YES;
    if (status != ERR) return (int)key;
    // ERR is a timeout, or the end of the terminal: a closed or hung-up terminal polls readable
    // (a read would return 0 or EIO) or reports hangup, where a quiet one has nothing to read.
    // A key that arrived just after the timeout polls readable too, with bytes waiting (FIONREAD).
    int fd = fileno(input_file ? input_file : stdin);
    struct pollfd input = {fd, POLLIN, 0};
    if (poll(&input, 1, 0) < 0) return -1;
    if (input.revents & (POLLHUP | POLLERR | POLLNVAL)) return -2;
    int waiting = 0;
    if (input.revents & POLLIN) return ioctl(fd, FIONREAD, &waiting) < 0 || waiting == 0 ? -2 : -1;
    return -1;
}

int seg_wcwidth(uint32_t character) { return wcwidth((wchar_t)character); }

int seg_term_key_code(const char *name) {
    static const struct { const char *name; int code; } keys[] = {
        {"up", KEY_UP}, {"down", KEY_DOWN}, {"left", KEY_LEFT}, {"right", KEY_RIGHT},
        {"resize", KEY_RESIZE}, {"btab", KEY_BTAB}, {"sleft", KEY_SLEFT}, {"sright", KEY_SRIGHT},
        {"sr", KEY_SR}, {"sf", KEY_SF}, {"ppage", KEY_PPAGE}, {"npage", KEY_NPAGE},
        {"mouse", KEY_MOUSE}, {"backspace", KEY_BACKSPACE}, {"enter", KEY_ENTER},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0) return keys[i].code;
    return -1;
}

static void on_signal(int number) { received_signal = number; }

static void on_fatal_signal(int number) {
    if (screen) {
        ssize_t ignored = write(STDOUT_FILENO, restore_sequence, restore_length);
        (void)ignored;
        if (saved_termios_valid) tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
    }
    signal(number, SIG_DFL);
    raise(number);
}

void seg_term_catch_signals(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    action.sa_handler = on_fatal_signal;
    action.sa_flags = SA_RESETHAND | SA_ONSTACK;
    stack_t alternate = {.ss_sp = fatal_signal_stack, .ss_size = sizeof fatal_signal_stack, .ss_flags = 0};
    sigaltstack(&alternate, NULL);
    int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) sigaction(fatal[i], &action, NULL);
}

int seg_term_signal_received(void) { return received_signal; }

int seg_term_query(const char *query, char *answer, int capacity, int timeout_ms) {
    int in = STDIN_FILENO, out = STDOUT_FILENO;
    struct termios saved, raw;
    if (!isatty(in) || !isatty(out) || tcgetattr(in, &saved) != 0) return -1;
    raw = saved;
    raw.c_lflag &= ~(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    tcsetattr(in, TCSANOW, &raw);
    size_t length = strlen(query);
    int length_read = 0;
    if (write(out, query, length) == (ssize_t)length) {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (elapsed >= timeout_ms || length_read >= capacity - 1) break;
            struct pollfd input = {in, POLLIN, 0};
            if (poll(&input, 1, (int)(timeout_ms - elapsed)) <= 0) break;
            ssize_t count = read(in, answer + length_read, (size_t)(capacity - 1 - length_read));
            if (count <= 0) break;
            length_read += (int)count;
            // Every terminal answers the primary device attributes (ESC [ ? ... c), asked last.
            answer[length_read] = 0;
            char *attributes = strstr(answer, "\033[?");
            if (attributes && strchr(attributes, 'c')) break;
        }
    }
    answer[length_read] = 0;
    // TCSAFLUSH drops what came and was not read; a reply later still is swallowed as keys arrive.
    tcsetattr(in, TCSAFLUSH, &saved);
    return length_read;
}

void seg_term_pixel_size(int *width, int *height) {
    struct winsize size;
    *width = *height = 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 && size.ws_row > 0) {
        *width = size.ws_xpixel / size.ws_col;
        *height = size.ws_ypixel / size.ws_row;
    }
}

void seg_term_clear_all(void) { clear(); }

void seg_term_write_raw(const char *bytes, size_t length) {
    FILE *stream = output_file ? output_file : stdout;
    fflush(stream);
    while (length > 0) {
        ssize_t written = write(fileno(stream), bytes, length);
        if (written <= 0) return;
        bytes += written;
        length -= (size_t)written;
    }
}
