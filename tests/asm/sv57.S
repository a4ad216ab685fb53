/* sv57.S — Sv57 paging: the checks of paging.h with 5 levels, plus 512 GiB
 * and 256 TiB superpages: aligned ones read through, misaligned ones fault. */
#define VM_LEVELS 5
#define VM_SATP_MODE SATP_MODE_SV57
#define VM_NAME sv57

#define VA_TERA     0x8000000000        /* 512 GiB page -> physical 0 */
#define VA_BAD_TERA 0x10000000000       /* 512 GiB page -> 1 GiB: misaligned */
#define VA_PETA     0x1000000000000     /* 256 TiB page -> physical 0 */
#define VA_BAD_PETA 0x2000000000000     /* 256 TiB page -> 2 GiB: misaligned */

#define VM_EXTRA_MAPS                                           \
    MAP_LEAF(VA_TERA, 0, PTE_V | PTE_R | PTE_A, 3);             \
    MAP_LEAF(VA_BAD_TERA, 0x40000000, PTE_V | PTE_R | PTE_A, 3); \
    MAP_LEAF(VA_PETA, 0, PTE_V | PTE_R | PTE_A, 4);             \
    MAP_LEAF(VA_BAD_PETA, RAM_BASE, PTE_V | PTE_R | PTE_A, 4)

#define VM_EXTRA_CHECKS                                         \
    TEST_CASE(55);                                              \
    la a1, page_b;                                              \
    li t0, VA_TERA;                                             \
    add a2, a1, t0;                                             \
    ld a4, 0(a2);                                               \
    CHECK_EQ(a4, MARK_B);                                       \
    EXPECT_STORE_PF(VA_TERA + RAM_BASE);                        \
    TEST_CASE(56);                                              \
    EXPECT_LOAD_PF(VA_BAD_TERA + RAM_BASE);                     \
    TEST_CASE(57);                                              \
    la a1, page_b;                                              \
    li t0, VA_PETA;                                             \
    add a2, a1, t0;                                             \
    ld a4, 0(a2);                                               \
    CHECK_EQ(a4, MARK_B);                                       \
    EXPECT_STORE_PF(VA_PETA + RAM_BASE);                        \
    TEST_CASE(58);                                              \
    EXPECT_LOAD_PF(VA_BAD_PETA)

#include "paging.h"
