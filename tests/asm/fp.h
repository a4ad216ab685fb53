/* fp.h — floating-point check macros for rv64f.S and rv64d.S (and the case
 * tables fpgen.py generates for them). Operands are given as bit patterns;
 * each check clears fflags, runs one instruction, then compares the result's
 * bits (single results must be NaN-boxed) and the accrued fflags. */
#ifndef REWIND_FP_H
#define REWIND_FP_H

#include "test.h"

/* fflags bits */
#define NV 0x10
#define DZ 0x08
#define OF 0x04
#define UF 0x02
#define NX 0x01

/* frm values */
#define FRM_RNE 0
#define FRM_RTZ 1
#define FRM_RDN 2
#define FRM_RUP 3
#define FRM_RMM 4

#define LOAD_S(freg, bits)                      \
    li t0, bits;                                \
    fmv.w.x freg, t0

#define LOAD_D(freg, bits)                      \
    li t0, bits;                                \
    fmv.d.x freg, t0

/* ---- single precision ---- */
#define TEST_FP_OP1_S(n, inst, rm, a, result, flags) \
    TEST_CASE(n);                               \
    LOAD_S(fa1, a);                             \
    csrwi fflags, 0;                            \
    inst fa0, fa1, rm;                          \
    CHECK_FS(fa0, result);                      \
    CHECK_FFLAGS(flags)

#define TEST_FP_OP2_S(n, inst, rm, a, b, result, flags) \
    TEST_CASE(n);                               \
    LOAD_S(fa1, a);                             \
    LOAD_S(fa2, b);                             \
    csrwi fflags, 0;                            \
    inst fa0, fa1, fa2, rm;                     \
    CHECK_FS(fa0, result);                      \
    CHECK_FFLAGS(flags)

/* Operations without a rounding mode (sign injection, min, max). */
#define TEST_FP_OP2_NORM_S(n, inst, a, b, result, flags) \
    TEST_CASE(n);                               \
    LOAD_S(fa1, a);                             \
    LOAD_S(fa2, b);                             \
    csrwi fflags, 0;                            \
    inst fa0, fa1, fa2;                         \
    CHECK_FS(fa0, result);                      \
    CHECK_FFLAGS(flags)

#define TEST_FP_OP3_S(n, inst, rm, a, b, c, result, flags) \
    TEST_CASE(n);                               \
    LOAD_S(fa1, a);                             \
    LOAD_S(fa2, b);                             \
    LOAD_S(fa3, c);                             \
    csrwi fflags, 0;                            \
    inst fa0, fa1, fa2, fa3, rm;                \
    CHECK_FS(fa0, result);                      \
    CHECK_FFLAGS(flags)

#define TEST_FP_CMP_S(n, inst, a, b, result, flags) \
    TEST_CASE(n);                               \
    LOAD_S(fa1, a);                             \
    LOAD_S(fa2, b);                             \
    csrwi fflags, 0;                            \
    inst a0, fa1, fa2;                          \
    CHECK_EQ(a0, result);                       \
    CHECK_FFLAGS(flags)

#define TEST_FP_CLASS_S(n, a, result)           \
    TEST_CASE(n);                               \
    LOAD_S(fa1, a);                             \
    csrwi fflags, 0;                            \
    fclass.s a0, fa1;                           \
    CHECK_EQ(a0, result);                       \
    CHECK_FFLAGS(0)

#define TEST_FP_TO_INT_S(n, inst, rm, a, result, flags) \
    TEST_CASE(n);                               \
    LOAD_S(fa1, a);                             \
    csrwi fflags, 0;                            \
    inst a0, fa1, rm;                           \
    CHECK_EQ(a0, result);                       \
    CHECK_FFLAGS(flags)

#define TEST_INT_TO_FP_S(n, inst, rm, x, result, flags) \
    TEST_CASE(n);                               \
    li a1, x;                                   \
    csrwi fflags, 0;                            \
    inst fa0, a1, rm;                           \
    CHECK_FS(fa0, result);                      \
    CHECK_FFLAGS(flags)

/* ---- double precision ---- */
#define TEST_FP_OP1_D(n, inst, rm, a, result, flags) \
    TEST_CASE(n);                               \
    LOAD_D(fa1, a);                             \
    csrwi fflags, 0;                            \
    inst fa0, fa1, rm;                          \
    CHECK_FD(fa0, result);                      \
    CHECK_FFLAGS(flags)

#define TEST_FP_OP2_D(n, inst, rm, a, b, result, flags) \
    TEST_CASE(n);                               \
    LOAD_D(fa1, a);                             \
    LOAD_D(fa2, b);                             \
    csrwi fflags, 0;                            \
    inst fa0, fa1, fa2, rm;                     \
    CHECK_FD(fa0, result);                      \
    CHECK_FFLAGS(flags)

#define TEST_FP_OP2_NORM_D(n, inst, a, b, result, flags) \
    TEST_CASE(n);                               \
    LOAD_D(fa1, a);                             \
    LOAD_D(fa2, b);                             \
    csrwi fflags, 0;                            \
    inst fa0, fa1, fa2;                         \
    CHECK_FD(fa0, result);                      \
    CHECK_FFLAGS(flags)

#define TEST_FP_OP3_D(n, inst, rm, a, b, c, result, flags) \
    TEST_CASE(n);                               \
    LOAD_D(fa1, a);                             \
    LOAD_D(fa2, b);                             \
    LOAD_D(fa3, c);                             \
    csrwi fflags, 0;                            \
    inst fa0, fa1, fa2, fa3, rm;                \
    CHECK_FD(fa0, result);                      \
    CHECK_FFLAGS(flags)

#define TEST_FP_CMP_D(n, inst, a, b, result, flags) \
    TEST_CASE(n);                               \
    LOAD_D(fa1, a);                             \
    LOAD_D(fa2, b);                             \
    csrwi fflags, 0;                            \
    inst a0, fa1, fa2;                          \
    CHECK_EQ(a0, result);                       \
    CHECK_FFLAGS(flags)

#define TEST_FP_CLASS_D(n, a, result)           \
    TEST_CASE(n);                               \
    LOAD_D(fa1, a);                             \
    csrwi fflags, 0;                            \
    fclass.d a0, fa1;                           \
    CHECK_EQ(a0, result);                       \
    CHECK_FFLAGS(0)

#define TEST_FP_TO_INT_D(n, inst, rm, a, result, flags) \
    TEST_CASE(n);                               \
    LOAD_D(fa1, a);                             \
    csrwi fflags, 0;                            \
    inst a0, fa1, rm;                           \
    CHECK_EQ(a0, result);                       \
    CHECK_FFLAGS(flags)

#define TEST_INT_TO_FP_D(n, inst, rm, x, result, flags) \
    TEST_CASE(n);                               \
    li a1, x;                                   \
    csrwi fflags, 0;                            \
    inst fa0, a1, rm;                           \
    CHECK_FD(fa0, result);                      \
    CHECK_FFLAGS(flags)

/* Exact conversions (fcvt.d.w, fcvt.d.wu) take no rounding mode. */
#define TEST_INT_TO_FP_EXACT_D(n, inst, x, result, flags) \
    TEST_CASE(n);                               \
    li a1, x;                                   \
    csrwi fflags, 0;                            \
    inst fa0, a1;                               \
    CHECK_FD(fa0, result);                      \
    CHECK_FFLAGS(flags)

#define TEST_FP_D_TO_S(n, rm, a, result, flags) \
    TEST_CASE(n);                               \
    LOAD_D(fa1, a);                             \
    csrwi fflags, 0;                            \
    fcvt.s.d fa0, fa1, rm;                      \
    CHECK_FS(fa0, result);                      \
    CHECK_FFLAGS(flags)

#define TEST_FP_S_TO_D(n, a, result, flags)     \
    TEST_CASE(n);                               \
    LOAD_S(fa1, a);                             \
    csrwi fflags, 0;                            \
    fcvt.d.s fa0, fa1;                          \
    CHECK_FD(fa0, result);                      \
    CHECK_FFLAGS(flags)

#endif
