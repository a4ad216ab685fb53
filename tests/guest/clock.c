/*
 * Reads the clocks a user program reads, for tests/boot.rs: the vDSO's
 * clock_gettime (which executes `rdtime` in user mode), gettimeofday, time,
 * and the `time` CSR directly. Prints `clock: ok` and exits 0 if every clock
 * works and advances; a clock that traps kills the program (SIGILL, exit
 * status 132).
 *
 * Rewind's guest wall clock starts at 2026-01-01T00:00:00Z (see src/run.rs),
 * so the realtime seconds printed are deterministic on Rewind.
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static uint64_t rdtime(void)
{
    uint64_t t;
    __asm__ volatile("rdtime %0" : "=r"(t));
    return t;
}

static int64_t ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

int main(void)
{
    int ok = 1;
    struct timespec mono0, mono1, real;
    /* Print after each step, so a trap shows how far the program got. */
    printf("clock: clock_gettime(CLOCK_MONOTONIC)\n");
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &mono0);
    printf("clock: rdtime\n");
    fflush(stdout);
    uint64_t csr0 = rdtime();

    volatile uint64_t spin = 0;
    for (int i = 0; i < 2000000; i++)
        spin += (uint64_t)i;

    uint64_t csr1 = rdtime();
    clock_gettime(CLOCK_MONOTONIC, &mono1);
    printf("clock: clock_gettime(CLOCK_REALTIME), gettimeofday, time\n");
    fflush(stdout);
    clock_gettime(CLOCK_REALTIME, &real);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    time_t now = time(NULL);

    if (!(csr1 > csr0)) {
        printf("clock: the time CSR did not advance (%llu, %llu)\n", (unsigned long long)csr0,
               (unsigned long long)csr1);
        ok = 0;
    }
    if (!(ns(&mono1) > ns(&mono0))) {
        printf("clock: CLOCK_MONOTONIC did not advance\n");
        ok = 0;
    }
    if (tv.tv_sec < real.tv_sec || now < real.tv_sec || now - real.tv_sec > 1) {
        printf("clock: the realtime clocks disagree (%lld, %lld, %lld)\n", (long long)real.tv_sec,
               (long long)tv.tv_sec, (long long)now);
        ok = 0;
    }
    printf("clock: realtime %lld\n", (long long)real.tv_sec);
    printf("clock: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
