/* train/lock.h - the run-directory lock: one trainer per run directory at a time.
 *
 * Usage:
 *     cf_run_lock *lock = cf_run_lock_acquire("runs/toy");   // NULL + message if another holds it
 *     if (!lock) { fprintf(stderr, "error: %s\n", cf_error_message()); return 2; }
 *     ... train, save checkpoints, prune ...
 *     cf_run_lock_release(lock);
 *
 * The lock is flock(LOCK_EX) on DIR/trainer.lock, which holds the holder's PID for the message
 * ("runs/toy is in use by another trainer (pid 4242) ..."). The kernel drops a flock when its
 * holder dies however it dies, so a stale lock file of a killed trainer never blocks: the next
 * trainer locks it and writes its own PID. Without it two trainers (or a train and a --resume)
 * on one directory would delete each other's checkpoints in progress (docs/reliability.md).
 */
#ifndef CF_TRAIN_LOCK_H
#define CF_TRAIN_LOCK_H

typedef struct cf_run_lock cf_run_lock;

/* dir must exist. NULL with a message naming the directory and the holder's PID when locked. */
cf_run_lock *cf_run_lock_acquire(const char *dir);
/* Unlocks and frees (NULL is fine). The file stays: removing it could race with a new holder. */
void cf_run_lock_release(cf_run_lock *lock);

#endif
