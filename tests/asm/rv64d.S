/* rv64d.S — every RV64D instruction.
 *
 * Hand-written checks (cases 1-99): FLD/FSD, FMV.X.D/FMV.D.X, that single
 * results written by D-extension conversions are NaN-boxed, dynamic rounding
 * in each mode, reserved rounding modes, and FS becoming Dirty.
 * Generated checks (rv64d_cases.h, from fpgen.py's exact IEEE model): FADD FSUB
 *   FMUL FDIV FSQRT FMADD FMSUB FNMSUB FNMADD in all five static rounding
 *   modes, FSGNJ/FSGNJN/FSGNJX, FMIN/FMAX, FEQ/FLT/FLE, FCLASS,
 *   FCVT.{W,WU,L,LU}.D, FCVT.D.{W,WU,L,LU}, FCVT.S.D and FCVT.D.S — with NaNs
 *   (quiet, signalling, with payloads), infinities, subnormals, signed zeros,
 *   overflow and underflow — each checking the result bits and fflags. */
#include "fp.h"

TEST_BEGIN(rv64d)

    /* ---- Loads, stores, moves ---- */
    TEST_CASE(1)
    la a1, ddata
    fld fa0, 0(a1)
    CHECK_FD(fa0, 0x400921fb54442d18)
    fld fa0, 8(a1)
    CHECK_FD(fa0, 0xfff0000000000001)   /* a signalling NaN is loaded unchanged */
    TEST_CASE(2)
    la a2, dbuf
    fsd fa0, 8(a2)
    ld a0, 8(a2)
    CHECK_EQ(a0, 0xfff0000000000001)
    LOAD_D(fa0, 0x8000000000000000)
    fsd fa0, -8+16(a2)
    ld a0, 8(a2)
    CHECK_EQ(a0, 0x8000000000000000)
    TEST_CASE(3)                /* fmv.x.d / fmv.d.x move all 64 bits unchanged */
    li t0, 0x7ff4000000000123
    fmv.d.x fa0, t0
    fmv.x.d a0, fa0
    CHECK_EQ(a0, 0x7ff4000000000123)
    CHECK_FFLAGS(0)
    TEST_CASE(4)                /* D operations see a boxed single as a (NaN) double */
    LOAD_S(fa1, 0x3f800000)     /* bits 0xffffffff3f800000: a negative quiet NaN as a double */
    LOAD_D(fa2, 0x3ff0000000000000)
    fadd.d fa0, fa1, fa2
    CHECK_FD(fa0, 0x7ff8000000000000)
    CHECK_FFLAGS(0)
    TEST_CASE(5)                /* fcvt.s.d writes a NaN-boxed single */
    LOAD_D(fa1, 0x4000000000000000)
    fcvt.s.d fa0, fa1
    CHECK_FS(fa0, 0x40000000)

    /* ---- Dynamic rounding mode ---- */
#define TEST_DYN_DIV(n, mode, a, b, result)     \
    TEST_CASE(n);                               \
    csrwi frm, mode;                            \
    LOAD_D(fa1, a);                             \
    LOAD_D(fa2, b);                             \
    fdiv.d fa0, fa1, fa2, dyn;                  \
    CHECK_FD(fa0, result);                      \
    CHECK_FFLAGS(NX)
    /* 1/3 = 0x3fd5555555555555 + 1/3 ulp; -1/3 likewise */
    TEST_DYN_DIV(40, FRM_RNE, 0x3ff0000000000000, 0x4008000000000000, 0x3fd5555555555555)
    TEST_DYN_DIV(41, FRM_RTZ, 0x3ff0000000000000, 0x4008000000000000, 0x3fd5555555555555)
    TEST_DYN_DIV(42, FRM_RDN, 0x3ff0000000000000, 0x4008000000000000, 0x3fd5555555555555)
    TEST_DYN_DIV(43, FRM_RUP, 0x3ff0000000000000, 0x4008000000000000, 0x3fd5555555555556)
    TEST_DYN_DIV(44, FRM_RMM, 0x3ff0000000000000, 0x4008000000000000, 0x3fd5555555555555)
    TEST_DYN_DIV(45, FRM_RNE, 0xbff0000000000000, 0x4008000000000000, 0xbfd5555555555555)
    TEST_DYN_DIV(46, FRM_RTZ, 0xbff0000000000000, 0x4008000000000000, 0xbfd5555555555555)
    TEST_DYN_DIV(47, FRM_RDN, 0xbff0000000000000, 0x4008000000000000, 0xbfd5555555555556)
    TEST_DYN_DIV(48, FRM_RUP, 0xbff0000000000000, 0x4008000000000000, 0xbfd5555555555555)
    TEST_DYN_DIV(49, FRM_RMM, 0xbff0000000000000, 0x4008000000000000, 0xbfd5555555555555)
#define TEST_DYN_CVT(n, mode, a, result)        \
    TEST_CASE(n);                               \
    csrwi frm, mode;                            \
    LOAD_D(fa1, a);                             \
    fcvt.l.d a0, fa1, dyn;                      \
    CHECK_EQ(a0, result);                       \
    CHECK_FFLAGS(NX)
    TEST_DYN_CVT(50, FRM_RNE, 0x4004000000000000, 2)    /* 2.5 */
    TEST_DYN_CVT(51, FRM_RTZ, 0x4004000000000000, 2)
    TEST_DYN_CVT(52, FRM_RDN, 0x4004000000000000, 2)
    TEST_DYN_CVT(53, FRM_RUP, 0x4004000000000000, 3)
    TEST_DYN_CVT(54, FRM_RMM, 0x4004000000000000, 3)
    csrwi frm, FRM_RNE

    /* ---- Reserved rounding modes ---- */
    TEST_CASE(60)
    EXPECT_ILLEGAL_WORD(0x02c5d553)     /* fadd.d fa0, fa1, fa2, rm=5 */
    EXPECT_ILLEGAL_WORD(0x02c5e553)     /* fadd.d fa0, fa1, fa2, rm=6 */
    csrwi frm, 7
    EXPECT_ILLEGAL_WORD(0x02c5f553)     /* fadd.d fa0, fa1, fa2, dyn */
    EXPECT_ILLEGAL_WORD(0x4015f553)     /* fcvt.s.d fa0, fa1, dyn */
    csrwi frm, FRM_RNE

    /* ---- FS ---- */
    TEST_CASE(70)
    li s1, MSTATUS_FS
    csrc mstatus, s1
    EXPECT_ILLEGAL_WORD(0x0005b507)     /* fld fa0, 0(a1) */
    EXPECT_ILLEGAL_WORD(0xe2058553)     /* fmv.x.d a0, fa1 */
    li t0, MSTATUS_FS_CLEAN
    csrs mstatus, t0
    LOAD_D(fa0, 0)
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD)

    /* ---- Generated cases ---- */
#include "rv64d_cases.h"

TEST_END

    .data
    .balign 8
ddata:
    .dword 0x400921fb54442d18, 0xfff0000000000001
dbuf:
    .dword 0, 0
