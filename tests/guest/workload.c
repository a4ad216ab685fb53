/*
 * A deterministic guest workload for tests/boot.rs.
 *
 * Built with `riscv64-linux-gnu-gcc -static -O2 -pthread`, packed into the
 * default initramfs as /workload and run by /init (rewind.run=/workload).
 * It runs integer, memory, floating-point and multi-threaded kernels and
 * prints one line per kernel between WORKLOAD BEGIN and WORKLOAD END, then a
 * checksum of everything. The output depends only on the instruction set
 * semantics (and glibc), never on time, the number of harts, scheduling or
 * addresses (the guest kernel randomises them, and QEMU seeds it differently):
 * the test compares it byte for byte with QEMU's.
 *
 * About 250 million instructions in all: a quarter of a second of guest time
 * (plus whatever the kernel's own threads, e.g. its crypto self-tests, take).
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t checksum = 0xcbf29ce484222325ull;

/* Folds a 64-bit value into the final checksum (FNV-1a over its bytes). */
static void fold(uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        checksum ^= (v >> (8 * i)) & 0xff;
        checksum *= 0x100000001b3ull;
    }
}

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static uint32_t bits_of_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void report_u64(const char *name, uint64_t v)
{
    printf("%s = %016llx\n", name, (unsigned long long)v);
    fold(v);
}

static void report_f64(const char *name, double d)
{
    printf("%s = %.17g (%016llx)\n", name, d, (unsigned long long)bits_of(d));
    fold(bits_of(d));
}

/* xorshift64*: the deterministic source of all "random" data. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* ---- Integer -------------------------------------------------------------- */

static void integer_kernels(void)
{
    /* Multiply, shift, rotate, divide and remainder in a dependent chain. */
    uint64_t h = 1;
    uint32_t w = 7;
    int64_t s = -123456789;
    for (uint64_t i = 1; i <= 1500000; i++) {
        h ^= i * 0x9e3779b97f4a7c15ull;
        h = (h << 13) | (h >> 51);
        h += h / (i | 1) + h % 1000003;
        w = w * 1664525u + 1013904223u;
        w ^= w >> ((i & 15) + 1);
        s = s / 3 + (int64_t)(h % 65521) - (int64_t)(w % 977) * (s < 0 ? -1 : 1);
    }
    report_u64("int.hash", h);
    report_u64("int.word", w);
    report_u64("int.signed", (uint64_t)s);

    /* 128-bit products (mulh/mulhu) and counting bits. */
    unsigned __int128 acc = 0;
    uint64_t pop = 0;
    for (uint64_t i = 0; i < 250000; i++) {
        uint64_t a = rng(), b = rng();
        acc += (unsigned __int128)a * b;
        pop += (uint64_t)__builtin_popcountll(a) + (uint64_t)__builtin_clzll(b | 1) +
               (uint64_t)__builtin_ctzll(a | (1ull << 63));
        int64_t sa = (int64_t)a >> 7, sb = (int64_t)b | 1;
        acc ^= (unsigned __int128)(__int128)sa * (__int128)(sb >> 40);
    }
    report_u64("int.mul128.hi", (uint64_t)(acc >> 64));
    report_u64("int.mul128.lo", (uint64_t)acc);
    report_u64("int.bits", pop);

    /* A sieve of Eratosthenes. */
    enum { LIMIT = 2000000 };
    static uint8_t composite[LIMIT + 1];
    uint64_t primes = 0, prime_sum = 0;
    for (uint64_t i = 2; i <= LIMIT; i++) {
        if (composite[i])
            continue;
        primes++;
        prime_sum += i;
        for (uint64_t j = i * i; j <= LIMIT; j += i)
            composite[j] = 1;
    }
    report_u64("int.primes", primes);
    report_u64("int.prime_sum", prime_sum);
}

/* ---- Memory --------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        h = (h ^ v) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static void memory_kernels(void)
{
    enum { BYTES = 4 << 20 };
    uint8_t *a = malloc(BYTES), *b = malloc(BYTES);
    if (!a || !b) {
        printf("mem: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < BYTES; i += 8) {
        uint64_t v = rng();
        memcpy(a + i, &v, 8);
    }
    report_u64("mem.fill", hash_bytes(a, BYTES));

    memcpy(b, a, BYTES);
    memmove(b + 1, b, BYTES - 4096); /* overlapping, misaligned */
    memset(b + 12345, 0x5a, 100000);
    memcpy(b + 3, a + 7, 777777);    /* misaligned both sides */
    report_u64("mem.copy", hash_bytes(b, BYTES));

    /* Strided reads over the whole buffer: cache lines, pages, misalignment. */
    uint64_t sums = 0;
    static const size_t strides[] = {8, 24, 64, 4096, 4099};
    for (size_t k = 0; k < sizeof strides / sizeof strides[0]; k++) {
        uint64_t sum = 0;
        for (size_t rep = 0; rep < 2; rep++)
            for (size_t i = rep; i + 8 <= BYTES; i += strides[k]) {
                uint64_t v;
                memcpy(&v, a + i, 8);
                sum = sum * 31 + v;
            }
        sums ^= sum + k;
    }
    report_u64("mem.strides", sums);

    /* Pointer chasing through a random permutation (a single cycle). */
    enum { NODES = 1 << 18 };
    uint32_t *next = (uint32_t *)b;
    for (uint32_t i = 0; i < NODES; i++)
        next[i] = i;
    for (uint32_t i = NODES - 1; i > 0; i--) { /* Sattolo's algorithm */
        uint32_t j = (uint32_t)(rng() % i);
        uint32_t t = next[i];
        next[i] = next[j];
        next[j] = t;
    }
    uint32_t at = 0;
    uint64_t path = 0;
    for (uint32_t i = 0; i < NODES; i++) {
        at = next[at];
        path = path * 3 + at;
    }
    report_u64("mem.chase", path ^ at);

    /* Sort 64K words; check order and content. */
    enum { WORDS = 1 << 16 };
    uint32_t *words = (uint32_t *)a;
    qsort(words, WORDS, sizeof words[0], cmp_u32);
    int sorted = 1;
    for (size_t i = 1; i < WORDS; i++)
        sorted &= words[i - 1] <= words[i];
    report_u64("mem.sorted", (uint64_t)sorted);
    report_u64("mem.sort", hash_bytes(words, WORDS * sizeof words[0]));

    /* String functions. */
    char *text = (char *)b;
    size_t len = 0;
    for (int i = 0; i < 20000; i++)
        len += (size_t)sprintf(text + len, "%d:%x;", i * 7919, i);
    uint64_t str = strlen(text) ^ ((uint64_t)len << 32);
    /* Offsets only: addresses differ between machines (ASLR). */
    const char *found = strstr(text, ";142542:12;");
    str += found ? (uint64_t)(found - text) : 1;
    found = strstr(text, "no such text");
    str += found ? (uint64_t)(found - text) : 2;
    str += (uint64_t)(strrchr(text, ':') - text) * 3;
    str += (uint64_t)(strchr(text, 'f') - text) * 5;
    str += (uint64_t)(strcmp(text, text + 1) < 0);
    report_u64("mem.strings", str);
    free(a);
    free(b);
}

/* ---- Floating point ------------------------------------------------------- */

static void float_kernels(void)
{
    /* Matrix multiply, double precision. */
    enum { N = 100 };
    static double x[N][N], y[N][N], z[N][N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            x[i][j] = (double)((i * 31 + j * 17) % 101) / 7.0 - 6.5;
            y[i][j] = 1.0 / (1.0 + i + 2.0 * j);
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < N; k++)
                acc += x[i][k] * y[k][j];
            z[i][j] = acc;
        }
    double trace = 0, total = 0;
    for (int i = 0; i < N; i++) {
        trace += z[i][i];
        for (int j = 0; j < N; j++)
            total += z[i][j] * (1 + (i ^ j) % 3);
    }
    report_f64("fp.matmul.trace", trace);
    report_f64("fp.matmul.total", total);

    /* N-body: five bodies, sqrt and division. */
    enum { BODIES = 5 };
    double px[BODIES], py[BODIES], pz[BODIES], vx[BODIES], vy[BODIES], vz[BODIES], m[BODIES];
    for (int i = 0; i < BODIES; i++) {
        double a = 2 * M_PI * i / BODIES;
        px[i] = (1 + i) * cos(a);
        py[i] = (1 + i) * sin(a);
        pz[i] = 0.1 * i;
        vx[i] = -sin(a) / sqrt(1.0 + i);
        vy[i] = cos(a) / sqrt(1.0 + i);
        vz[i] = 0.01 * (i - 2);
        m[i] = i == 0 ? 10.0 : 0.01 * i;
    }
    const double dt = 0.001;
    for (int step = 0; step < 20000; step++) {
        for (int i = 0; i < BODIES; i++)
            for (int j = i + 1; j < BODIES; j++) {
                double dx = px[i] - px[j], dy = py[i] - py[j], dz = pz[i] - pz[j];
                double d2 = dx * dx + dy * dy + dz * dz + 1e-9;
                double mag = dt / (d2 * sqrt(d2));
                vx[i] -= dx * m[j] * mag;
                vy[i] -= dy * m[j] * mag;
                vz[i] -= dz * m[j] * mag;
                vx[j] += dx * m[i] * mag;
                vy[j] += dy * m[i] * mag;
                vz[j] += dz * m[i] * mag;
            }
        for (int i = 0; i < BODIES; i++) {
            px[i] += dt * vx[i];
            py[i] += dt * vy[i];
            pz[i] += dt * vz[i];
        }
    }
    double energy = 0;
    for (int i = 0; i < BODIES; i++) {
        energy += 0.5 * m[i] * (vx[i] * vx[i] + vy[i] * vy[i] + vz[i] * vz[i]);
        for (int j = i + 1; j < BODIES; j++) {
            double dx = px[i] - px[j], dy = py[i] - py[j], dz = pz[i] - pz[j];
            energy -= m[i] * m[j] / sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    report_f64("fp.nbody.energy", energy);
    report_f64("fp.nbody.x0", px[0]);

    /* libm: transcendental functions over a range, including edge cases. */
    double s = 0, c = 0, e = 0, l = 0, p = 0, t = 0;
    for (int i = 1; i <= 40000; i++) {
        double v = i * 0.00731 - 100.0;
        s += sin(v);
        c += cos(v * 0.5);
        e += exp(-fabs(v) * 0.05);
        l += log1p(fabs(v)) + log((double)i);
        p += pow(1.0 + i * 1e-5, 3.3);
        t += atan2(v, 1.5) + tanh(v * 0.01) + cbrt(v);
    }
    report_f64("fp.sin", s);
    report_f64("fp.cos", c);
    report_f64("fp.exp", e);
    report_f64("fp.log", l);
    report_f64("fp.pow", p);
    report_f64("fp.misc", t);
    volatile double zero = 0.0, neg = -1.0;
    report_f64("fp.edges", sqrt(neg) + 1.0 / zero + floor(-2.5) + rint(2.5) + fmod(10.0, 3.0));
    report_u64("fp.nan", bits_of(sqrt(neg)));

    /* Single precision with fused multiply-add and conversions. */
    float fs = 0.0f;
    int64_t conv = 0;
    for (int i = 0; i < 200000; i++) {
        float f = (float)i * 0.001f;
        fs = fmaf(f, 1.0001f, fs * 0.9999f) + sqrtf(f);
        conv += (int64_t)(fs * 3.7f) + lrintf(f * 2.5f) + (int32_t)(double)(-f);
    }
    printf("fp.float = %.9g (%08x)\n", (double)fs, (unsigned)bits_of_float(fs));
    fold(bits_of_float(fs));
    report_u64("fp.convert", (uint64_t)conv);
}

/* ---- Threads -------------------------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 20000 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t locked_counter;
static uint64_t atomic_counter;

struct part {
    int index;
    uint64_t result;
};

static void *thread_main(void *arg)
{
    struct part *part = arg;
    uint64_t h = (uint64_t)part->index + 1;
    for (int i = 0; i < PER_THREAD; i++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        __atomic_fetch_add(&atomic_counter, h >> 60, __ATOMIC_SEQ_CST);
        if (i % 16 == 0) {
            pthread_mutex_lock(&lock);
            locked_counter += h & 0xff;
            pthread_mutex_unlock(&lock);
        }
    }
    part->result = h;
    return NULL;
}

static void thread_kernels(void)
{
    pthread_t threads[THREADS];
    struct part parts[THREADS];
    for (int i = 0; i < THREADS; i++) {
        parts[i].index = i;
        if (pthread_create(&threads[i], NULL, thread_main, &parts[i]) != 0) {
            printf("threads: pthread_create failed\n");
            exit(2);
        }
    }
    uint64_t combined = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        combined = combined * 1000003 + parts[i].result;
    }
    report_u64("threads.results", combined);
    report_u64("threads.atomic", atomic_counter);
    report_u64("threads.locked", locked_counter);
}

int main(void)
{
    printf("WORKLOAD BEGIN\n");
    integer_kernels();
    memory_kernels();
    float_kernels();
    thread_kernels();
    printf("WORKLOAD END checksum %016llx\n", (unsigned long long)checksum);
    return 0;
}
