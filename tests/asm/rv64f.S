/* rv64f.S — every RV64F instruction, fcsr/frm/fflags, and mstatus.FS/SD.
 *
 * Hand-written checks (cases 1-99):
 *   FLW/FSW, FMV.X.W (sign-extends) and FMV.W.X (NaN-boxes), NaN-boxing of
 *   inputs (an improperly boxed single is the canonical NaN), all 32 f
 *   registers, the fcsr / frm / fflags CSRs and their pseudo-instructions,
 *   accrual of flags, dynamic rounding in each mode, reserved rounding modes
 *   (static 5/6 and dynamic 5/6/7) raising illegal instruction, and FS: Off
 *   makes F instructions and the F CSRs illegal, a write to F state makes FS
 *   Dirty and sets SD.
 * Generated checks (rv64f_cases.h, from fpgen.py's exact IEEE model): FADD FSUB
 *   FMUL FDIV FSQRT FMADD FMSUB FNMSUB FNMADD in all five static rounding
 *   modes, FSGNJ/FSGNJN/FSGNJX, FMIN/FMAX, FEQ/FLT/FLE, FCLASS, FCVT.{W,WU,L,LU}.S
 *   and FCVT.S.{W,WU,L,LU} in all five modes — with NaNs (quiet, signalling,
 *   with payloads), infinities, subnormals, signed zeros, overflow and
 *   underflow — each checking the result bits and fflags. */
#include "fp.h"

TEST_BEGIN(rv64f)

    /* ---- Loads, stores, moves ---- */
    TEST_CASE(1)                /* flw NaN-boxes */
    la a1, fdata
    flw fa0, 0(a1)
    CHECK_FS(fa0, 0x3f800000)
    flw fa0, 4(a1)
    CHECK_FS(fa0, 0xff800001)   /* a signalling NaN is loaded unchanged */
    TEST_CASE(2)                /* fsw stores the low 32 bits only */
    la a2, fbuf
    li t0, -1
    sd t0, 0(a2)
    li t0, 0x123456789abcdef0   /* not a boxed single: fsw ignores the upper half */
    fmv.d.x fa0, t0
    fsw fa0, 0(a2)
    ld a0, 0(a2)
    CHECK_EQ(a0, 0xffffffff9abcdef0)
    fsw fa0, 4(a2)
    ld a0, 0(a2)
    CHECK_EQ(a0, 0x9abcdef09abcdef0)
    TEST_CASE(3)                /* fmv.x.w sign-extends the low 32 bits */
    LOAD_S(fa0, 0x80000000)
    fmv.x.w a0, fa0
    CHECK_EQ(a0, 0xffffffff80000000)
    LOAD_S(fa0, 0x7fc00000)
    fmv.x.w a0, fa0
    CHECK_EQ(a0, 0x7fc00000)
    li t0, 0x123456789abcdef0
    fmv.d.x fa0, t0
    fmv.x.w a0, fa0
    CHECK_EQ(a0, 0xffffffff9abcdef0)
    TEST_CASE(4)                /* fmv.w.x uses the low 32 bits and NaN-boxes */
    li t0, 0x1234567800000001
    fmv.w.x fa0, t0
    CHECK_FS(fa0, 0x00000001)
    CHECK_FFLAGS(0)

    /* ---- Improperly NaN-boxed inputs are the canonical NaN ---- */
    TEST_CASE(10)
    li t0, 0x000000003f800000   /* 1.0f, but not boxed */
    fmv.d.x fa1, t0
    LOAD_S(fa2, 0x3f800000)
    csrwi fflags, 0
    fadd.s fa0, fa1, fa2
    CHECK_FS(fa0, 0x7fc00000)
    CHECK_FFLAGS(0)
    TEST_CASE(11)
    LOAD_S(fa2, 0xbf800000)
    fsgnj.s fa0, fa1, fa2       /* magnitude of the canonical NaN, sign of -1 */
    CHECK_FS(fa0, 0xffc00000)
    LOAD_S(fa2, 0x3f800000)
    fsgnjn.s fa0, fa2, fa1      /* sign of the canonical NaN (+), inverted */
    CHECK_FS(fa0, 0xbf800000)
    TEST_CASE(12)
    feq.s a0, fa1, fa1
    CHECK_EQ(a0, 0)
    CHECK_FFLAGS(0)             /* a quiet NaN: no invalid */
    fclass.s a0, fa1
    CHECK_EQ(a0, 1 << 9)        /* quiet NaN */
    TEST_CASE(13)
    li t0, 0x00000000ff800001   /* an unboxed "signalling NaN" is just the canonical NaN */
    fmv.d.x fa1, t0
    fcvt.d.s fa0, fa1
    CHECK_FD(fa0, 0x7ff8000000000000)
    CHECK_FFLAGS(0)
    TEST_CASE(14)
    li t0, 0xffffffff3f800000   /* properly boxed 1.0f */
    fmv.d.x fa1, t0
    fadd.s fa0, fa1, fa1
    CHECK_FS(fa0, 0x40000000)

    /* ---- All 32 registers ---- */
    TEST_CASE(20)
#define SET_F(i) li t0, 0x4000000000000000 + i; fmv.d.x f##i, t0
#define CHECK_F(i) CHECK_FD(f##i, 0x4000000000000000 + i)
    SET_F(0);  SET_F(1);  SET_F(2);  SET_F(3);  SET_F(4);  SET_F(5);  SET_F(6);  SET_F(7)
    SET_F(8);  SET_F(9);  SET_F(10); SET_F(11); SET_F(12); SET_F(13); SET_F(14); SET_F(15)
    SET_F(16); SET_F(17); SET_F(18); SET_F(19); SET_F(20); SET_F(21); SET_F(22); SET_F(23)
    SET_F(24); SET_F(25); SET_F(26); SET_F(27); SET_F(28); SET_F(29); SET_F(30); SET_F(31)
    CHECK_F(0);  CHECK_F(1);  CHECK_F(2);  CHECK_F(3);  CHECK_F(4);  CHECK_F(5)
    CHECK_F(6);  CHECK_F(7);  CHECK_F(8);  CHECK_F(9);  CHECK_F(10); CHECK_F(11)
    CHECK_F(12); CHECK_F(13); CHECK_F(14); CHECK_F(15); CHECK_F(16); CHECK_F(17)
    CHECK_F(18); CHECK_F(19); CHECK_F(20); CHECK_F(21); CHECK_F(22); CHECK_F(23)
    CHECK_F(24); CHECK_F(25); CHECK_F(26); CHECK_F(27); CHECK_F(28); CHECK_F(29)
    CHECK_F(30); CHECK_F(31)

    /* ---- fcsr, frm, fflags ---- */
    TEST_CASE(30)
    csrwi fcsr, 0
    li t0, 0xff
    csrw fcsr, t0
    CHECK_CSR(fcsr, 0xff)
    CHECK_CSR(frm, 7)
    CHECK_CSR(fflags, 0x1f)
    TEST_CASE(31)               /* fcsr bits 31:8 read zero */
    li t0, 0xffffffff
    csrw fcsr, t0
    CHECK_CSR(fcsr, 0xff)
    TEST_CASE(32)               /* frm and fflags are fields of fcsr */
    csrwi fcsr, 0
    csrwi frm, FRM_RUP
    CHECK_CSR(fcsr, FRM_RUP << 5)
    csrwi fflags, NV | NX
    CHECK_CSR(fcsr, (FRM_RUP << 5) | NV | NX)
    li t0, 0xffffffffffffffe0   /* fflags keeps 5 bits */
    csrw fflags, t0
    CHECK_CSR(fflags, 0)
    CHECK_CSR(frm, FRM_RUP)
    TEST_CASE(33)               /* pseudo-instructions */
    li a1, FRM_RTZ
    fsrm a0, a1
    CHECK_EQ(a0, FRM_RUP)
    frrm a0
    CHECK_EQ(a0, FRM_RTZ)
    li a1, DZ
    fsflags a0, a1
    CHECK_EQ(a0, 0)
    frflags a0
    CHECK_EQ(a0, DZ)
    li a1, 0
    fscsr a0, a1
    CHECK_EQ(a0, (FRM_RTZ << 5) | DZ)
    frcsr a0
    CHECK_EQ(a0, 0)
    TEST_CASE(34)               /* flags accrue */
    LOAD_S(fa1, 0x3f800000)
    LOAD_S(fa2, 0x00000000)
    fdiv.s fa0, fa1, fa2        /* DZ */
    LOAD_S(fa2, 0x40400000)
    fdiv.s fa0, fa1, fa2        /* NX */
    fsqrt.s fa0, fa0            /* NX again */
    CHECK_FFLAGS(DZ | NX)
    feq.s a0, fa0, fa0          /* no flags: accrued flags stay cleared */
    CHECK_FFLAGS(0)

    /* ---- Dynamic rounding mode ---- */
#define TEST_DYN_ADD(n, mode, a, b, result)      \
    TEST_CASE(n);                               \
    csrwi frm, mode;                            \
    LOAD_S(fa1, a);                             \
    LOAD_S(fa2, b);                             \
    fadd.s fa0, fa1, fa2, dyn;                  \
    CHECK_FS(fa0, result);                      \
    CHECK_FFLAGS(NX)
    /* 1 + 2^-24 and -1 - 2^-24 are halfway between two singles. */
    TEST_DYN_ADD(40, FRM_RNE, 0x3f800000, 0x33800000, 0x3f800000)
    TEST_DYN_ADD(41, FRM_RTZ, 0x3f800000, 0x33800000, 0x3f800000)
    TEST_DYN_ADD(42, FRM_RDN, 0x3f800000, 0x33800000, 0x3f800000)
    TEST_DYN_ADD(43, FRM_RUP, 0x3f800000, 0x33800000, 0x3f800001)
    TEST_DYN_ADD(44, FRM_RMM, 0x3f800000, 0x33800000, 0x3f800001)
    TEST_DYN_ADD(45, FRM_RNE, 0xbf800000, 0xb3800000, 0xbf800000)
    TEST_DYN_ADD(46, FRM_RTZ, 0xbf800000, 0xb3800000, 0xbf800000)
    TEST_DYN_ADD(47, FRM_RDN, 0xbf800000, 0xb3800000, 0xbf800001)
    TEST_DYN_ADD(48, FRM_RUP, 0xbf800000, 0xb3800000, 0xbf800000)
    TEST_DYN_ADD(49, FRM_RMM, 0xbf800000, 0xb3800000, 0xbf800001)
#define TEST_DYN_CVT(n, mode, a, result)         \
    TEST_CASE(n);                               \
    csrwi frm, mode;                            \
    LOAD_S(fa1, a);                             \
    fcvt.w.s a0, fa1, dyn;                      \
    CHECK_EQ(a0, result);                       \
    CHECK_FFLAGS(NX)
    TEST_DYN_CVT(50, FRM_RNE, 0xc0200000, -2)   /* -2.5 */
    TEST_DYN_CVT(51, FRM_RTZ, 0xc0200000, -2)
    TEST_DYN_CVT(52, FRM_RDN, 0xc0200000, -3)
    TEST_DYN_CVT(53, FRM_RUP, 0xc0200000, -2)
    TEST_DYN_CVT(54, FRM_RMM, 0xc0200000, -3)
    TEST_CASE(55)               /* a static mode overrides frm */
    csrwi frm, FRM_RUP
    LOAD_S(fa1, 0x3f800000)
    LOAD_S(fa2, 0x33800000)
    fadd.s fa0, fa1, fa2, rne
    CHECK_FS(fa0, 0x3f800000)
    CHECK_FFLAGS(NX)
    csrwi frm, FRM_RNE

    /* ---- Reserved rounding modes ---- */
    TEST_CASE(60)               /* static rm = 5 and 6: illegal */
    EXPECT_ILLEGAL_WORD(0x00c5d553)     /* fadd.s fa0, fa1, fa2, rm=5 */
    EXPECT_ILLEGAL_WORD(0x00c5e553)     /* fadd.s fa0, fa1, fa2, rm=6 */
    EXPECT_ILLEGAL_WORD(0x4205d553)     /* fcvt.d.s fa0, fa1, rm=5 (rm unused, still decoded) */
    TEST_CASE(61)               /* frm = 5, 6, 7 are writable, but dynamic rounding is then illegal */
    csrwi frm, 5
    CHECK_CSR(frm, 5)
    EXPECT_ILLEGAL_WORD(0x00c5f553)     /* fadd.s fa0, fa1, fa2, dyn */
    csrwi frm, 6
    EXPECT_ILLEGAL_WORD(0x00c5f553)
    csrwi frm, 7
    EXPECT_ILLEGAL_WORD(0x00c5f553)
    EXPECT_ILLEGAL_WORD(0xc005f553)     /* fcvt.w.s a0, fa1, dyn */
    TEST_CASE(62)               /* ... while instructions without rm still work */
    fsgnj.s fa0, fa1, fa1
    fmv.x.w a0, fa1
    feq.s a0, fa1, fa1
    csrwi frm, FRM_RNE
    CHECK_FFLAGS(0)

    /* ---- mstatus.FS and SD ---- */
    TEST_CASE(70)               /* FS = Off: F instructions and CSRs are illegal */
    li s1, MSTATUS_FS
    csrc mstatus, s1
    EXPECT_ILLEGAL_WORD(0x00c5f553)     /* fadd.s fa0, fa1, fa2 */
    EXPECT_ILLEGAL_WORD(0x0005a507)     /* flw fa0, 0(a1) */
    EXPECT_ILLEGAL_WORD(0x00a5a027)     /* fsw fa0, 0(a1) */
    EXPECT_ILLEGAL_WORD(0xe0058553)     /* fmv.x.w a0, fa1 */
    EXPECT_ILLEGAL_WORD(0xf0058553)     /* fmv.w.x fa0, a1 */
    EXPECT_ILLEGAL_WORD(0x00102573)     /* csrr a0, fflags */
    EXPECT_ILLEGAL_WORD(0x00202573)     /* csrr a0, frm */
    EXPECT_ILLEGAL_WORD(0x00302573)     /* csrr a0, fcsr */
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_FS | MSTATUS_SD, 0)
    TEST_CASE(71)               /* Initial -> Dirty on an F register write; SD follows */
    li t0, MSTATUS_FS_INITIAL
    csrs mstatus, t0
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_INITIAL)
    fmv.w.x fa0, zero
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD)
    csrr a0, sstatus
    CHECK_MASKED(a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD)
    TEST_CASE(72)               /* Clean -> Dirty on a load */
    csrc mstatus, s1
    li t0, MSTATUS_FS_CLEAN
    csrs mstatus, t0
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_CLEAN)
    la a1, fdata
    flw fa0, 0(a1)
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD)
    TEST_CASE(73)               /* Clean -> Dirty on a write to fflags */
    csrc mstatus, s1
    li t0, MSTATUS_FS_CLEAN
    csrs mstatus, t0
    csrwi fflags, 0
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_FS, MSTATUS_FS_DIRTY)
    TEST_CASE(74)               /* the same FS in S-mode: Off is illegal there too */
    csrc mstatus, s1
    GOTO_S
    EXPECT_ILLEGAL_WORD(0x00c5f553)
    GOTO_M
    li t0, MSTATUS_FS_INITIAL
    csrs mstatus, t0
    csrwi fcsr, 0

    /* ---- Generated cases ---- */
#include "rv64f_cases.h"

TEST_END

    .data
    .balign 8
fdata:
    .word 0x3f800000, 0xff800001
fbuf:
    .dword 0
