#include "file_shim.h"

#include <signal.h>
#include <string.h>
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

int seg_temporary_begin(const char *path) {
    size_t length = strlen(path);
    if (length >= sizeof temporary_path) return -1;
    if (!handlers_installed) install_handlers();
    temporary_active = 0;
    memcpy(temporary_path, path, length + 1);
    temporary_active = 1;
    return 0;
}

void seg_temporary_end(void) { temporary_active = 0; }
