/*
 * A bare-metal UART echo (tests/virtio_consoles.rs): prints "ready", then
 * echoes every byte it receives in upper case, and powers off after a '.'.
 * It polls the line status register, so it needs no interrupts; between
 * polls it does nothing else, and Rewind delivers input only at round
 * boundaries, so the echo shows input arriving through the backend under
 * test.
 */
#include <stdint.h>

#define UART ((volatile uint8_t *)0x10000000ul)

static void putc_(char c)
{
    while (!(UART[5] & 0x20))
        ;
    UART[0] = (uint8_t)c;
}

int main(void)
{
    for (const char *s = "ready\n"; *s; s++)
        putc_(*s);
    for (;;) {
        while (!(UART[5] & 1))
            ;
        char c = (char)UART[0];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        putc_(c);
        if (c == '.') {
            putc_('\n');
            return 0;
        }
    }
}
