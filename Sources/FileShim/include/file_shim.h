#ifndef SEGVIEW_FILE_SHIM_H
#define SEGVIEW_FILE_SHIM_H

/// The temporary file being written, removed if SIGINT, SIGTERM or SIGHUP ends the process
/// meanwhile. A signal handler may only do async-signal-safe work (unlink, raise), on memory that
/// exists before the signal: hence this C state, the one place the process keeps a path globally.
/// One file at a time; handlers are installed for signals whose disposition is still the default
/// (the viewer catches SIGINT/TERM/HUP itself and finishes its writes before it exits).

/// Remembers `path` until seg_temporary_end; returns 0, or -1 when it is too long to remember
/// (it is then not removed on a signal).
int seg_temporary_begin(const char *path);

/// Forgets the path: it was renamed into place or removed.
void seg_temporary_end(void);

#endif
