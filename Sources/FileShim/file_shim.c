#include "file_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char temporary_path[4096];
static volatile sig_atomic_t temporary_active = 0;
static int handlers_installed = 0;

static void on_signal(int number) {
    if (temporary_active) unlink(temporary_path);
    signal(number, SIG_DFL);
    raise(number);
}

static void install_handlers(void) {
    int signals[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction current;
        if (sigaction(signals[i], NULL, &current) != 0 || current.sa_handler != SIG_DFL) continue;
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_signal;
        sigemptyset(&action.sa_mask);
        sigaction(signals[i], &action, NULL);
    }
    handlers_installed = 1;
}

/// Remembers `path` for the handler; the fences keep the compiler from moving the copy past the flag.
static void remember(const char *path, size_t length) {
    temporary_active = 0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    memcpy(temporary_path, path, length + 1);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    temporary_active = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

int seg_temporary_create(char *template, int suffix_length) {
    size_t length = strlen(template);
    if (length < (size_t)suffix_length + 6) {
        errno = EINVAL;
        return -1;
    }
    if (length >= sizeof temporary_path) return mkstemps(template, suffix_length);
    if (!handlers_installed) install_handlers();
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char *name = template + length - suffix_length - 6;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t state = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 32) ^ ((uint64_t)getpid() << 16);
    for (int attempt = 0; attempt < 100; attempt++) {
        for (int i = 0; i < 6; i++) {  // SplitMix64's steps, a letter each
            state += 0x9E3779B97F4A7C15u;
            uint64_t z = (state ^ (state >> 30)) * 0xBF58476D1CE4E5B9u;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
            name[i] = letters[(z ^ (z >> 31)) % (sizeof letters - 1)];
        }
        // Named before it exists: a signal from here on removes it (or finds nothing to remove).
        remember(template, length);
        int descriptor = open(template, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (descriptor >= 0) return descriptor;
        int failure = errno;
        temporary_active = 0;
        errno = failure;
        if (failure != EEXIST) return -1;
    }
    return -1;
}

void seg_temporary_end(void) { temporary_active = 0; }
