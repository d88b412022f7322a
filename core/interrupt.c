/* core/interrupt.c - see interrupt.h. */
#include "core/interrupt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t requested;
static volatile sig_atomic_t output_nonblocking_on_stop;

/* fcntl is async-signal-safe; errno is the interrupted code's. */
static void on_signal(int sig) {
    requested = sig;
    if (!output_nonblocking_on_stop) return;
    int saved = errno;
    for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++) {
        int flags = fcntl(fd, F_GETFL);
        if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }
    errno = saved;
}

static void set_handlers(void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* SA_RESETHAND: the default action is back once the handler has run, so a second signal kills.
 * No SA_RESTART is needed: our loops poll the flag, and the I/O helpers retry EINTR. */
void cf_interrupt_install(void) {
    requested = 0;
    set_handlers(on_signal, SA_RESETHAND);
    signal(SIGPIPE, SIG_IGN);
    cf_interrupt_unblock(); /* a signal that came while they were blocked is delivered now, to us */
}

void cf_interrupt_block(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    sigprocmask(SIG_BLOCK, &s, NULL);
}

void cf_interrupt_unblock(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
}

void cf_interrupt_restore(void) {
    set_handlers(SIG_DFL, 0);
    signal(SIGPIPE, SIG_DFL);
    output_nonblocking_on_stop = 0;
}

void cf_interrupt_output_nonblocking_on_stop(int on) { output_nonblocking_on_stop = on != 0; }

int cf_interrupted(void) { return requested; }

const volatile sig_atomic_t *cf_interrupt_flag(void) { return &requested; }
