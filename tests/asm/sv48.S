/* sv48.S — Sv48 paging: the checks of paging.h with 4 levels, plus 512 GiB
 * "terapages": one aligned (reads through it), one misaligned (page fault). */
#define VM_LEVELS 4
#define VM_SATP_MODE SATP_MODE_SV48
#define VM_NAME sv48

#define VA_TERA     0x8000000000        /* 512 GiB page -> physical 0 */
#define VA_BAD_TERA 0x10000000000       /* 512 GiB page -> 1 GiB: misaligned */

#define VM_EXTRA_MAPS                                           \
    MAP_LEAF(VA_TERA, 0, PTE_V | PTE_R | PTE_A, 3);             \
    MAP_LEAF(VA_BAD_TERA, 0x40000000, PTE_V | PTE_R | PTE_A, 3)

#define VM_EXTRA_CHECKS                                         \
    TEST_CASE(55);                                              \
    la a1, page_b;                                              \
    li t0, VA_TERA;                                             \
    add a2, a1, t0;                                             \
    ld a4, 0(a2);                                               \
    CHECK_EQ(a4, MARK_B);                                       \
    EXPECT_STORE_PF(VA_TERA + RAM_BASE);                        \
    TEST_CASE(56);                                              \
    EXPECT_LOAD_PF(VA_BAD_TERA + RAM_BASE)

#include "paging.h"
