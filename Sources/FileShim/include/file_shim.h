#ifndef SEGVIEW_FILE_SHIM_H
#define SEGVIEW_FILE_SHIM_H

/// The temporary file being written, removed if SIGINT, SIGTERM or SIGHUP ends the process
/// meanwhile. A signal handler may only do async-signal-safe work (unlink, raise), on memory that
/// exists before the signal: hence this C state, the one place the process keeps a path globally.
/// One file at a time; handlers are installed for signals whose disposition is still the default
/// (the viewer catches SIGINT/TERM/HUP itself and finishes its writes before it exits).

/// Creates the temporary file as mkstemps(template, suffix_length) does (the six X's before the
/// suffix replaced, mode 0600, an open descriptor or -1 with errno), remembering its path until
/// seg_temporary_end. The path is remembered before the file exists, so that no signal finds a
/// file it does not know; a path too long to remember is created all the same, but a signal then
/// leaves it.
int seg_temporary_create(char *template, int suffix_length);

/// Forgets the path: it was renamed into place or removed.
void seg_temporary_end(void);

#endif
