/*
 * A hostile virtio-blk driver, bare metal (tests/virtio_blk_malformed.rs).
 *
 * Runs in M-mode with no firmware on Rewind's board (QEMU virt layout):
 * virtio-blk disk 0 (writable) at 0x10001000, disk 1 (read-only) at
 * 0x10002000. It first checks that well-formed requests work, then feeds the
 * device malformed queues and descriptor chains one after another: a
 * descriptor loop, a chain longer than the queue, a loop inside an indirect
 * table, buffers outside RAM, an address that wraps, a length past the end
 * of RAM, bad queue sizes, a misaligned ring, a short header and an
 * available index far ahead. After each it reads the device status, prints
 * what it saw, and expects DEVICE_NEEDS_RESET (0x40) with no request
 * completed; it then resets the device and carries on. Requests the spec
 * lets fail (beyond the disk, an overflowing sector, an unknown type, a
 * write to a read-only disk) must instead complete with an error status and
 * leave the device working.
 *
 * It prints one line per case and `PASS virtio-blk-malformed` at the end,
 * and exits through the test finisher: 0 if every expectation held,
 * otherwise 1 after a `FAIL` line per broken expectation.
 */
#include <stdint.h>

#define UART 0x10000000ul
#define DISK0 0x10001000ul
#define DISK1 0x10002000ul

#define MAGIC_VALUE 0x000
#define VERSION 0x004
#define DEVICE_ID 0x008
#define DEVICE_FEATURES 0x010
#define DEVICE_FEATURES_SEL 0x014
#define DRIVER_FEATURES 0x020
#define DRIVER_FEATURES_SEL 0x024
#define QUEUE_SEL 0x030
#define QUEUE_NUM_MAX 0x034
#define QUEUE_NUM 0x038
#define QUEUE_READY 0x044
#define QUEUE_NOTIFY 0x050
#define INTERRUPT_STATUS 0x060
#define INTERRUPT_ACK 0x064
#define STATUS 0x070
#define QUEUE_DESC_LOW 0x080
#define QUEUE_DESC_HIGH 0x084
#define QUEUE_DRIVER_LOW 0x090
#define QUEUE_DRIVER_HIGH 0x094
#define QUEUE_DEVICE_LOW 0x0a0
#define QUEUE_DEVICE_HIGH 0x0a4
#define CONFIG 0x100

#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

#define T_IN 0
#define T_OUT 1

#define QSZ 8

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static struct desc desc[QSZ + 1] __attribute__((aligned(16)));
static struct desc itable[4] __attribute__((aligned(16)));
static struct {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[QSZ];
} avail __attribute__((aligned(4)));
static struct {
    uint16_t flags;
    uint16_t idx;
    struct {
        uint32_t id;
        uint32_t len;
    } ring[QSZ];
} used __attribute__((aligned(4)));
static struct {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
} hdr;
static uint8_t data[512];
static volatile uint8_t status_byte;
static int failures;

void *memset(void *p, int c, unsigned long n)
{
    volatile uint8_t *b = p;
    while (n--)
        *b++ = (uint8_t)c;
    return p;
}

static void putc_(char c)
{
    volatile uint8_t *u = (volatile uint8_t *)UART;
    while (!(u[5] & 0x20))
        ;
    u[0] = (uint8_t)c;
}

static void puts_(const char *s)
{
    while (*s)
        putc_(*s++);
}

static void puthex(uint64_t v)
{
    char buf[19];
    int i = 18;
    buf[i] = 0;
    do {
        buf[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    buf[--i] = 'x';
    buf[--i] = '0';
    puts_(&buf[i]);
}

static uint32_t rd(uintptr_t dev, unsigned off)
{
    return *(volatile uint32_t *)(dev + off);
}

static void wr(uintptr_t dev, unsigned off, uint32_t v)
{
    __sync_synchronize();
    *(volatile uint32_t *)(dev + off) = v;
    __sync_synchronize();
}

static void fail(const char *what)
{
    puts_("FAIL ");
    puts_(what);
    puts_("\n");
    failures++;
}

/* Resets the device and sets queue 0 up with `qsize` entries and the given
 * rings, accepting VERSION_1, INDIRECT_DESC, SEG_MAX, RO and FLUSH. Returns
 * the device status afterwards. */
static uint32_t setup(uintptr_t dev, uint32_t qsize, uint64_t d, uint64_t a, uint64_t u)
{
    wr(dev, STATUS, 0);
    memset(desc, 0, sizeof desc);
    memset(&avail, 0, sizeof avail);
    memset(&used, 0, sizeof used);
    wr(dev, STATUS, S_ACKNOWLEDGE);
    wr(dev, STATUS, S_ACKNOWLEDGE | S_DRIVER);
    wr(dev, DEVICE_FEATURES_SEL, 0);
    uint32_t lo = rd(dev, DEVICE_FEATURES);
    wr(dev, DEVICE_FEATURES_SEL, 1);
    uint32_t hi = rd(dev, DEVICE_FEATURES);
    wr(dev, DRIVER_FEATURES_SEL, 0);
    wr(dev, DRIVER_FEATURES, lo & ((1u << 28) | (1u << 9) | (1u << 5) | (1u << 2)));
    wr(dev, DRIVER_FEATURES_SEL, 1);
    wr(dev, DRIVER_FEATURES, hi & 1);
    wr(dev, STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    if (!(rd(dev, STATUS) & S_FEATURES_OK))
        fail("the device refused VERSION_1");
    wr(dev, QUEUE_SEL, 0);
    if (rd(dev, QUEUE_NUM_MAX) < QSZ)
        fail("queue 0 is too small");
    wr(dev, QUEUE_NUM, qsize);
    wr(dev, QUEUE_DESC_LOW, (uint32_t)d);
    wr(dev, QUEUE_DESC_HIGH, (uint32_t)(d >> 32));
    wr(dev, QUEUE_DRIVER_LOW, (uint32_t)a);
    wr(dev, QUEUE_DRIVER_HIGH, (uint32_t)(a >> 32));
    wr(dev, QUEUE_DEVICE_LOW, (uint32_t)u);
    wr(dev, QUEUE_DEVICE_HIGH, (uint32_t)(u >> 32));
    wr(dev, QUEUE_READY, 1);
    wr(dev, STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    return rd(dev, STATUS);
}

static uint32_t setup_default(uintptr_t dev)
{
    return setup(dev, QSZ, (uintptr_t)desc, (uintptr_t)&avail, (uintptr_t)&used);
}

static void set_desc(int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    desc[i].addr = addr;
    desc[i].len = len;
    desc[i].flags = flags;
    desc[i].next = next;
}

/* Makes chain `head` available and notifies. */
static void submit(uintptr_t dev, uint16_t head)
{
    avail.ring[avail.idx % QSZ] = head;
    __sync_synchronize();
    avail.idx++;
    wr(dev, QUEUE_NOTIFY, 0);
}

/* A well-formed request in descriptors 0..2; returns its status byte, or
 * 0x100 if it did not complete. */
static unsigned request(uintptr_t dev, uint32_t type, uint64_t sector)
{
    uint16_t before = used.idx;
    hdr.type = type;
    hdr.sector = sector;
    status_byte = 0xff;
    set_desc(0, (uintptr_t)&hdr, 16, F_NEXT, 1);
    set_desc(1, (uintptr_t)data, sizeof data, (type == T_IN ? F_WRITE : 0) | F_NEXT, 2);
    set_desc(2, (uintptr_t)&status_byte, 1, F_WRITE, 0);
    submit(dev, 0);
    if (used.idx != (uint16_t)(before + 1))
        return 0x100;
    return status_byte;
}

/* A request the spec lets fail: it must complete with `want`, and the
 * device must keep working. */
static void expect_status(const char *name, uintptr_t dev, uint32_t type, uint64_t sector,
                          unsigned want)
{
    unsigned got = request(dev, type, sector);
    uint32_t st = rd(dev, STATUS);
    puts_("case ");
    puts_(name);
    puts_(": request status ");
    puthex(got);
    puts_(", device status ");
    puthex(st);
    puts_("\n");
    if (got != want)
        fail(name);
    if (st & S_NEEDS_RESET)
        fail("the device broke on a request that only fails");
}

/* After a malformed queue or chain: the device must say it needs a reset,
 * and have completed nothing. */
static void expect_broken(const char *name, uintptr_t dev, uint16_t used_before)
{
    uint32_t st = rd(dev, STATUS);
    uint32_t isr = rd(dev, INTERRUPT_STATUS);
    puts_("case ");
    puts_(name);
    puts_(": device status ");
    puthex(st);
    puts_(st & S_NEEDS_RESET ? " (DEVICE_NEEDS_RESET)" : " (working)");
    puts_(", interrupt status ");
    puthex(isr);
    puts_("\n");
    if (!(st & S_NEEDS_RESET))
        fail(name);
    if (used.idx != used_before)
        fail("a malformed chain completed");
    /* A notification now must be ignored, not crash anything. */
    wr(dev, QUEUE_NOTIFY, 0);
    wr(dev, INTERRUPT_ACK, isr);
}

int main(void)
{
    if (rd(DISK0, MAGIC_VALUE) != 0x74726976 || rd(DISK0, VERSION) != 2 ||
        rd(DISK0, DEVICE_ID) != 2 || rd(DISK1, DEVICE_ID) != 2) {
        fail("no virtio-blk version 2 devices at 0x10001000 and 0x10002000");
        return 1;
    }
    uint64_t capacity = rd(DISK0, CONFIG) | (uint64_t)rd(DISK0, CONFIG + 4) << 32;
    puts_("disk 0: ");
    puthex(capacity);
    puts_(" sectors\n");

    /* Well-formed requests work. */
    setup_default(DISK0);
    unsigned st = request(DISK0, T_IN, 0);
    puts_("read sector 0: status ");
    puthex(st);
    puts_(", data '");
    for (int i = 0; i < 23; i++)
        putc_((char)data[i]);
    puts_("'\n");
    if (st != 0 || data[0] != 'R')
        fail("a well-formed read");
    expect_status("read past the end", DISK0, T_IN, capacity, 1);
    expect_status("sector overflow", DISK0, T_IN, 0x0100000000000000ull, 1);
    expect_status("unknown request type", DISK0, 0x77, 0, 2);

    /* A descriptor loop: 0 -> 1 -> 0 (all device-readable, so the loop is the
     * only thing wrong). */
    setup_default(DISK0);
    hdr.type = T_IN;
    hdr.sector = 0;
    set_desc(0, (uintptr_t)&hdr, 16, F_NEXT, 1);
    set_desc(1, (uintptr_t)data, sizeof data, F_NEXT, 0);
    submit(DISK0, 0);
    expect_broken("descriptor loop", DISK0, 0);

    /* A chain through every descriptor of the queue and on: longer than it. */
    setup_default(DISK0);
    set_desc(0, (uintptr_t)&hdr, 16, F_NEXT, 1);
    for (int i = 1; i < QSZ; i++)
        set_desc(i, (uintptr_t)data, 64, F_NEXT, (uint16_t)((i + 1) % QSZ));
    submit(DISK0, 0);
    expect_broken("chain longer than the queue", DISK0, 0);

    /* A loop inside an indirect table. */
    setup_default(DISK0);
    itable[0] = (struct desc){(uintptr_t)&hdr, 16, F_NEXT, 1};
    itable[1] = (struct desc){(uintptr_t)data, 512, F_NEXT, 0};
    set_desc(0, (uintptr_t)itable, 2 * sizeof(struct desc), F_INDIRECT, 0);
    submit(DISK0, 0);
    expect_broken("indirect table loop", DISK0, 0);

    /* A buffer below RAM. */
    setup_default(DISK0);
    set_desc(0, 0x1000, 16, F_NEXT, 1);
    set_desc(1, (uintptr_t)&status_byte, 1, F_WRITE, 0);
    submit(DISK0, 0);
    expect_broken("address outside RAM", DISK0, 0);

    /* An address whose end wraps around 2^64. */
    setup_default(DISK0);
    set_desc(0, (uintptr_t)&hdr, 16, F_NEXT, 1);
    set_desc(1, 0xfffffffffffff000ull, 0x2000, F_WRITE | F_NEXT, 2);
    set_desc(2, (uintptr_t)&status_byte, 1, F_WRITE, 0);
    submit(DISK0, 0);
    expect_broken("address wraps around", DISK0, 0);

    /* A length that runs far past the end of RAM. */
    setup_default(DISK0);
    set_desc(0, (uintptr_t)&hdr, 16, F_NEXT, 1);
    set_desc(1, (uintptr_t)data, 0xffffffffu, F_WRITE | F_NEXT, 2);
    set_desc(2, (uintptr_t)&status_byte, 1, F_WRITE, 0);
    submit(DISK0, 0);
    expect_broken("length past the end of RAM", DISK0, 0);

    /* Queue sizes that are not a power of two, or above the maximum. */
    setup(DISK0, 3, (uintptr_t)desc, (uintptr_t)&avail, (uintptr_t)&used);
    expect_broken("queue size 3", DISK0, 0);
    setup(DISK0, 512, (uintptr_t)desc, (uintptr_t)&avail, (uintptr_t)&used);
    expect_broken("queue size 512", DISK0, 0);

    /* A descriptor table that is not 16-byte aligned. */
    setup(DISK0, QSZ, (uintptr_t)desc + 8, (uintptr_t)&avail, (uintptr_t)&used);
    expect_broken("misaligned descriptor table", DISK0, 0);

    /* A header shorter than 16 bytes. */
    setup_default(DISK0);
    set_desc(0, (uintptr_t)&hdr, 8, F_NEXT, 1);
    set_desc(1, (uintptr_t)&status_byte, 1, F_WRITE, 0);
    submit(DISK0, 0);
    expect_broken("short header", DISK0, 0);

    /* An available index far ahead of the device. */
    setup_default(DISK0);
    avail.idx = 100;
    wr(DISK0, QUEUE_NOTIFY, 0);
    expect_broken("available index overrun", DISK0, 0);

    /* After a reset, the device works again. */
    setup_default(DISK0);
    st = request(DISK0, T_IN, 1);
    puts_("after reset: read sector 1: status ");
    puthex(st);
    puts_("\n");
    if (st != 0)
        fail("a read after the reset");

    /* A read-only disk says so and fails writes. */
    wr(DISK1, DEVICE_FEATURES_SEL, 0);
    if (!(rd(DISK1, DEVICE_FEATURES) & (1u << 5)))
        fail("disk 1 does not offer VIRTIO_BLK_F_RO");
    setup_default(DISK1);
    expect_status("write to a read-only disk", DISK1, T_OUT, 0, 1);
    expect_status("read from a read-only disk", DISK1, T_IN, 0, 0);

    if (failures)
        return 1;
    puts_("PASS virtio-blk-malformed\n");
    return 0;
}
