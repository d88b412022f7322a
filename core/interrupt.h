/* core/interrupt.h - a stop request (SIGINT, SIGTERM) that long-running loops poll.
 *
 * Usage:
 *     cf_interrupt_install();                 // the trainer, for as long as it runs
 *     while (!cf_interrupted()) one_update();  // then write a checkpoint and exit 130
 *     cf_interrupt_restore();
 *
 * The first signal only sets the flag, so work stops at a point of the caller's choosing (between
 * updates, between evaluation or decoding batches); the handler is then reset, so a second signal
 * ends the process at once. Library loops that can take long (cf_eval_loss, cf_translate_ids)
 * return -1 with the message "interrupted" when the flag is set; without cf_interrupt_install
 * the flag is never set and signals keep their default action.
 *
 * While installed, SIGPIPE is ignored: with `cformer train ... | tee log`, a Ctrl-C ends tee as
 * well, and the trainer's next progress line must fail with EPIPE, not kill it before its
 * checkpoint.
 */
#ifndef CF_INTERRUPT_H
#define CF_INTERRUPT_H

#include <signal.h>

void cf_interrupt_install(void);
void cf_interrupt_restore(void);
/* Hold SIGINT and SIGTERM back (a blocked signal stays pending, also across execve) until
 * cf_interrupt_install or cf_interrupt_unblock: build/cformer blocks them from its first line so
 * that a Ctrl-C during start-up, its re-exec included, reaches the trainer's handler. */
void cf_interrupt_block(void);
void cf_interrupt_unblock(void);
/* on: the first stop signal also makes stdout and stderr non-blocking, so that a print can no
 * longer hold up the checkpoint (a line that does not fit is dropped). For an MPI rank, whose
 * stdout is a pty of its own that mpirun stops reading at Ctrl-C: a full pty would block the
 * rank until mpirun's SIGKILL. Not for a process on a shared terminal (the flag is the
 * terminal's, the shell's too). Reset by cf_interrupt_restore. */
void cf_interrupt_output_nonblocking_on_stop(int on);
/* The signal that asked to stop, or 0. */
int cf_interrupted(void);
/* The flag itself, for code that polls it through a pointer (dist/: a rank's stop request travels
 * with the gradient exchange). */
const volatile sig_atomic_t *cf_interrupt_flag(void);

#endif
