#!/usr/bin/env python3
"""Generates the case tables of rv64f.S and rv64d.S (rv64f_cases.h, rv64d_cases.h).

The expected results and fflags come from an exact model of IEEE 754-2008
binary32/binary64 arithmetic with the RISC-V choices (F/D chapters of the
unprivileged ISA manual): results that are NaN are the canonical NaN; tininess
is detected after rounding; min/max follow minimumNumber/maximumNumber with
-0 < +0; the fused multiply-adds signal invalid for inf * 0 even with a quiet
NaN addend; conversions to integers saturate and signal invalid (not inexact)
on NaN and out-of-range values. Arithmetic is done on Python Fractions, so
every result is the exactly rounded one; nothing comes from an implementation.

Usage: python3 tests/asm/fpgen.py — rewrites rv64f_cases.h and rv64d_cases.h
beside it (included by rv64f.S and rv64d.S). Standard library only.
"""

import os
from fractions import Fraction
from math import isqrt

NV, DZ, OF, UF, NX = 0x10, 0x08, 0x04, 0x02, 0x01
RMS = ["rne", "rtz", "rdn", "rup", "rmm"]


class Fmt:
    def __init__(self, name, ebits, mbits):
        self.name, self.ebits, self.mbits = name, ebits, mbits
        self.width = ebits + mbits + 1
        self.bias = (1 << (ebits - 1)) - 1
        self.emin = 1 - self.bias
        self.emax = self.bias
        self.exp_mask = (1 << ebits) - 1
        self.qnan = (self.exp_mask << mbits) | (1 << (mbits - 1))
        self.sign_bit = 1 << (self.width - 1)

    def decode(self, bits):
        sign = bits >> (self.width - 1) & 1
        exp = (bits >> self.mbits) & self.exp_mask
        man = bits & ((1 << self.mbits) - 1)
        if exp == self.exp_mask:
            if man == 0:
                return ("inf", sign, None)
            return ("snan" if not (man >> (self.mbits - 1)) else "qnan", sign, None)
        if exp == 0:
            if man == 0:
                return ("zero", sign, Fraction(0))
            val = Fraction(man, 1 << self.mbits) * Fraction(2) ** self.emin
        else:
            val = Fraction((1 << self.mbits) | man, 1 << self.mbits) * Fraction(2) ** (exp - self.bias)
        return ("num", sign, -val if sign else val)

    def inf(self, sign):
        return (sign << (self.width - 1)) | (self.exp_mask << self.mbits)

    def zero(self, sign):
        return sign << (self.width - 1)

    def max_finite(self, sign):
        return (sign << (self.width - 1)) | ((self.exp_mask - 1) << self.mbits) | ((1 << self.mbits) - 1)

    def value(self, bits):
        kind, sign, val = self.decode(bits)
        assert kind in ("num", "zero")
        return val


S = Fmt("s", 8, 23)
D = Fmt("d", 11, 52)


def floor_log2(v):
    """Largest e with 2^e <= v, for a positive Fraction v."""
    e = v.numerator.bit_length() - v.denominator.bit_length()
    while Fraction(2) ** e > v:
        e -= 1
    while Fraction(2) ** (e + 1) <= v:
        e += 1
    return e


def round_int(q, negative, rm):
    """Round the non-negative Fraction q to an integer magnitude for a value of
    the given sign. Returns (n, inexact)."""
    n = q.numerator // q.denominator
    rem = q - n
    if rem == 0:
        return n, False
    half = Fraction(1, 2)
    if rm == "rne":
        up = rem > half or (rem == half and n % 2 == 1)
    elif rm == "rtz":
        up = False
    elif rm == "rdn":
        up = negative
    elif rm == "rup":
        up = not negative
    elif rm == "rmm":
        up = rem >= half
    else:
        raise ValueError(rm)
    return n + (1 if up else 0), True


def round_to(fmt, v, rm):
    """Round the nonzero Fraction v to fmt. Returns (bits, flags)."""
    negative = v < 0
    sign = 1 if negative else 0
    a = -v if negative else v
    e = floor_log2(a)
    # Rounding with an unbounded exponent range (for tininess after rounding).
    n_unb, _ = round_int(a / Fraction(2) ** (e - fmt.mbits), negative, rm)
    r_unb = n_unb * Fraction(2) ** (e - fmt.mbits)
    tiny = r_unb < Fraction(2) ** fmt.emin
    # Rounding in the format.
    q_exp = max(e, fmt.emin) - fmt.mbits
    n, inexact = round_int(a / Fraction(2) ** q_exp, negative, rm)
    r = n * Fraction(2) ** q_exp
    flags = NX if inexact else 0
    if tiny and inexact:
        flags |= UF
    if r == 0:
        return fmt.zero(sign), flags
    re = floor_log2(r)
    if re > fmt.emax:
        flags |= OF | NX
        to_inf = {"rne": True, "rmm": True, "rtz": False, "rdn": negative, "rup": not negative}[rm]
        return (fmt.inf(sign) if to_inf else fmt.max_finite(sign)), flags
    if re < fmt.emin:
        man = r / Fraction(2) ** (fmt.emin - fmt.mbits)
        assert man.denominator == 1
        return (sign << (fmt.width - 1)) | man.numerator, flags
    man = r / Fraction(2) ** (re - fmt.mbits)
    assert man.denominator == 1
    bits = (sign << (fmt.width - 1)) | ((re + fmt.bias) << fmt.mbits) | (man.numerator - (1 << fmt.mbits))
    return bits, flags


def nan_result(fmt, *ops):
    """If any operand is a NaN: (canonical NaN, NV if any is signalling)."""
    kinds = [fmt.decode(x)[0] for x in ops]
    if any(k in ("snan", "qnan") for k in kinds):
        return fmt.qnan, (NV if "snan" in kinds else 0)
    return None


def exact_zero_sign(rm, signs_equal_sign=None):
    return signs_equal_sign if signs_equal_sign is not None else (1 if rm == "rdn" else 0)


def add(fmt, a, b, rm):
    r = nan_result(fmt, a, b)
    if r:
        return r
    ka, sa, va = fmt.decode(a)
    kb, sb, vb = fmt.decode(b)
    if ka == "inf" and kb == "inf":
        return (fmt.inf(sa), 0) if sa == sb else (fmt.qnan, NV)
    if ka == "inf":
        return fmt.inf(sa), 0
    if kb == "inf":
        return fmt.inf(sb), 0
    s = va + vb
    if s == 0:
        if ka == "zero" and kb == "zero" and sa == sb:
            return fmt.zero(sa), 0
        return fmt.zero(1 if rm == "rdn" else 0), 0
    return round_to(fmt, s, rm)


def neg(fmt, x):
    return x ^ fmt.sign_bit


def sub(fmt, a, b, rm):
    r = nan_result(fmt, a, b)
    if r:
        return r
    return add(fmt, a, neg(fmt, b), rm)


def mul(fmt, a, b, rm):
    r = nan_result(fmt, a, b)
    if r:
        return r
    ka, sa, va = fmt.decode(a)
    kb, sb, vb = fmt.decode(b)
    sign = sa ^ sb
    if (ka == "inf" and kb == "zero") or (ka == "zero" and kb == "inf"):
        return fmt.qnan, NV
    if ka == "inf" or kb == "inf":
        return fmt.inf(sign), 0
    if ka == "zero" or kb == "zero":
        return fmt.zero(sign), 0
    return round_to(fmt, va * vb, rm)


def div(fmt, a, b, rm):
    r = nan_result(fmt, a, b)
    if r:
        return r
    ka, sa, va = fmt.decode(a)
    kb, sb, vb = fmt.decode(b)
    sign = sa ^ sb
    if ka == "inf" and kb == "inf":
        return fmt.qnan, NV
    if ka == "zero" and kb == "zero":
        return fmt.qnan, NV
    if ka == "inf":
        return fmt.inf(sign), 0
    if kb == "inf":
        return fmt.zero(sign), 0
    if kb == "zero":
        return fmt.inf(sign), DZ
    if ka == "zero":
        return fmt.zero(sign), 0
    return round_to(fmt, va / vb, rm)


def sqrt(fmt, a, rm):
    r = nan_result(fmt, a)
    if r:
        return r
    ka, sa, va = fmt.decode(a)
    if ka == "zero":
        return a, 0
    if sa:
        return fmt.qnan, NV
    if ka == "inf":
        return a, 0
    # sqrt(va) to 2^-k absolute precision plus a sticky half-step: far finer
    # than any rounding boundary of either format.
    k = 1300
    scaled = va * Fraction(4) ** k
    fl = scaled.numerator // scaled.denominator
    s = isqrt(fl)
    exact = s * s == scaled
    approx = Fraction(2 * s + (0 if exact else 1), 2 ** (k + 1))
    return round_to(fmt, approx, rm)


def fma(fmt, a, b, c, rm, negate_product=False, negate_addend=False):
    """(+/-)(a*b) (+/-) c with one rounding."""
    ka, sa, va = fmt.decode(a)
    kb, sb, vb = fmt.decode(b)
    kc, sc, vc = fmt.decode(c)
    inf_times_zero = (ka == "inf" and kb == "zero") or (ka == "zero" and kb == "inf")
    kinds = [ka, kb, kc]
    if "snan" in kinds or inf_times_zero:
        return fmt.qnan, NV
    if "qnan" in kinds:
        return fmt.qnan, 0
    psign = sa ^ sb ^ (1 if negate_product else 0)
    csign = sc ^ (1 if negate_addend else 0)
    if negate_addend and vc is not None:
        vc = -vc
    pinf = ka == "inf" or kb == "inf"
    if pinf and kc == "inf":
        return (fmt.inf(psign), 0) if psign == csign else (fmt.qnan, NV)
    if pinf:
        return fmt.inf(psign), 0
    if kc == "inf":
        return fmt.inf(csign), 0
    p = va * vb
    if negate_product:
        p = -p
    s = p + vc
    if s == 0:
        pzero = ka == "zero" or kb == "zero"
        if pzero and kc == "zero" and psign == csign:
            return fmt.zero(psign), 0
        return fmt.zero(1 if rm == "rdn" else 0), 0
    return round_to(fmt, s, rm)


def minmax(fmt, a, b, want_max):
    ka, sa, va = fmt.decode(a)
    kb, sb, vb = fmt.decode(b)
    flags = NV if "snan" in (ka, kb) else 0
    a_nan = ka in ("snan", "qnan")
    b_nan = kb in ("snan", "qnan")
    if a_nan and b_nan:
        return fmt.qnan, flags
    if a_nan:
        return b, flags
    if b_nan:
        return a, flags

    def key(k, s, v):
        if k == "inf":
            return (Fraction(-1 if s else 1) * 10**400, 0)
        return (v, -1 if (k == "zero" and s) else 0)

    ka_, kb_ = key(ka, sa, va), key(kb, sb, vb)
    if want_max:
        return (a if ka_ >= kb_ else b), flags
    return (a if ka_ <= kb_ else b), flags


def compare(fmt, a, b, op):
    ka, sa, va = fmt.decode(a)
    kb, sb, vb = fmt.decode(b)
    nan = ka in ("snan", "qnan") or kb in ("snan", "qnan")
    if nan:
        if op == "feq":
            return 0, (NV if "snan" in (ka, kb) else 0)
        return 0, NV

    def val(k, s, v):
        if k == "inf":
            return Fraction(-1 if s else 1) * 10**400
        return v

    x, y = val(ka, sa, va), val(kb, sb, vb)
    return int({"feq": x == y, "flt": x < y, "fle": x <= y}[op]), 0


def fclass(fmt, a):
    k, s, v = fmt.decode(a)
    if k == "inf":
        return 1 << (0 if s else 7)
    if k == "zero":
        return 1 << (3 if s else 4)
    if k == "snan":
        return 1 << 8
    if k == "qnan":
        return 1 << 9
    subnormal = abs(v) < Fraction(2) ** fmt.emin
    if s:
        return 1 << (2 if subnormal else 1)
    return 1 << (5 if subnormal else 6)


def to_int(fmt, a, rm, bits, signed):
    """fcvt.{w,wu,l,lu}.{s,d}: returns (rd as 64-bit unsigned, flags)."""
    k, s, v = fmt.decode(a)
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if k in ("snan", "qnan"):
        res, flags = hi, NV
    elif k == "inf":
        res, flags = (lo if s else hi), NV
    else:
        n, inexact = round_int(abs(v), v < 0, rm)
        n = -n if v < 0 else n
        if n < lo or n > hi:
            res, flags = (lo if v < 0 else hi), NV
        else:
            res, flags = n, (NX if inexact else 0)
    if bits == 32:  # results are sign-extended from 32 bits
        res &= 0xFFFFFFFF
        if res >> 31:
            res |= 0xFFFFFFFF00000000
    return res & 0xFFFFFFFFFFFFFFFF, flags


def from_int(fmt, x, rm, bits, signed):
    """fcvt.{s,d}.{w,wu,l,lu}: x is the 64-bit register value."""
    x &= (1 << bits) - 1
    if signed and x >> (bits - 1):
        x -= 1 << bits
    if x == 0:
        return 0, 0
    return round_to(fmt, Fraction(x), rm)


def convert(src, dst, a, rm):
    """fcvt between formats."""
    k, s, v = src.decode(a)
    if k in ("snan", "qnan"):
        return dst.qnan, (NV if k == "snan" else 0)
    if k == "inf":
        return dst.inf(s), 0
    if k == "zero":
        return dst.zero(s), 0
    return round_to(dst, v, rm)


# ---------------------------------------------------------------------------
# Operand sets.


def values(fmt):
    if fmt is S:
        return dict(
            p0=0x00000000, n0=0x80000000, one=0x3F800000, none=0xBF800000, two=0x40000000,
            half=0x3F000000, three=0x40400000, onep=0x3F800001, oneulpm=0x3F7FFFFF,
            pi=0x40490FDB, third=0x3EAAAAAB, max=0x7F7FFFFF, nmax=0xFF7FFFFF,
            minn=0x00800000, maxsub=0x007FFFFF, minsub=0x00000001, nminsub=0x80000001,
            inf=0x7F800000, ninf=0xFF800000, qnan=0x7FC00000, qnanp=0x7FC12345,
            nqnan=0xFFC00001, snan=0x7F800001, snanp=0x7FA00000, nsnan=0xFF800001,
            halfulp=0x33800000,  # 2^-24: half an ulp of 1.0
            tq=0x33C00000,  # 3 * 2^-25: three quarters of an ulp of 1.0
            maxhalfulp=0x73000000,  # 2^103: half an ulp of max
            twoP24=0x4B800000, twoP31=0x4F000000, twoP32=0x4F800000, twoP63=0x5F000000,
            twoP64=0x5F800000, m2p31=0xCF000000, m2p63=0xDF000000,
            v2_5=0x40200000, nv2_5=0xC0200000, v1_5=0x3FC00000, nv1_5=0xBFC00000,
            v0_5=0x3F000000, nv0_5=0xBF000000, nearlyhalf=0x3EFFFFFF, v3_5=0x40600000,
            ten=0x41200000, four=0x40800000, big=0x4EFFFFFF,  # 2^31 - 128
            minn_p=0x00800001, below1=0x3F7FFFFE, seven=0x40E00000,
        )
    return dict(
        p0=0x0000000000000000, n0=0x8000000000000000, one=0x3FF0000000000000,
        none=0xBFF0000000000000, two=0x4000000000000000, half=0x3FE0000000000000,
        three=0x4008000000000000, onep=0x3FF0000000000001, oneulpm=0x3FEFFFFFFFFFFFFF,
        pi=0x400921FB54442D18, third=0x3FD5555555555555, max=0x7FEFFFFFFFFFFFFF,
        nmax=0xFFEFFFFFFFFFFFFF, minn=0x0010000000000000, maxsub=0x000FFFFFFFFFFFFF,
        minsub=0x0000000000000001, nminsub=0x8000000000000001, inf=0x7FF0000000000000,
        ninf=0xFFF0000000000000, qnan=0x7FF8000000000000, qnanp=0x7FF8000000012345,
        nqnan=0xFFF8000000000001, snan=0x7FF0000000000001, snanp=0x7FF4000000000000,
        nsnan=0xFFF0000000000001,
        halfulp=0x3CA0000000000000,  # 2^-53
        tq=0x3CA8000000000000,  # 3 * 2^-54
        maxhalfulp=0x7C90000000000000,  # 2^970
        twoP24=0x4170000000000000, twoP31=0x41E0000000000000, twoP32=0x41F0000000000000,
        twoP63=0x43E0000000000000, twoP64=0x43F0000000000000, m2p31=0xC1E0000000000000,
        m2p63=0xC3E0000000000000, v2_5=0x4004000000000000, nv2_5=0xC004000000000000,
        v1_5=0x3FF8000000000000, nv1_5=0xBFF8000000000000, v0_5=0x3FE0000000000000,
        nv0_5=0xBFE0000000000000, nearlyhalf=0x3FDFFFFFFFFFFFFF, v3_5=0x400C000000000000,
        ten=0x4024000000000000, four=0x4010000000000000,
        big=0x41DFFFFFFFC00000,  # 2^31 - 1, exact
        minn_p=0x0010000000000001, below1=0x3FEFFFFFFFFFFFFE, seven=0x401C000000000000,
    )


def flagstr(f):
    names = [(NV, "NV"), (DZ, "DZ"), (OF, "OF"), (UF, "UF"), (NX, "NX")]
    parts = [n for bit, n in names if f & bit]
    return "|".join(parts) if parts else "0"


class Out:
    def __init__(self, start):
        self.n = start
        self.lines = []

    def case(self, text):
        self.lines.append("    " + text.replace("@N", str(self.n)))
        self.n += 1

    def comment(self, text):
        self.lines.append("")
        self.lines.append("    /* " + text + " */")
        # Start each group at a round number so cases are easy to find.
        self.n = (self.n + 99) // 100 * 100 if self.n % 100 else self.n


def h(x):
    return "0x%x" % x


def generate(fmt):
    v = values(fmt)
    P = fmt.name.upper()
    o = Out(1)

    add_pairs = [
        ("one", "two"), ("one", "halfulp"), ("onep", "halfulp"), ("one", "tq"),
        ("none", "halfulp"), ("none", "tq"), ("max", "max"), ("max", "maxhalfulp"),
        ("nmax", "nmax"), ("inf", "ninf"), ("inf", "one"), ("ninf", "max"),
        ("qnan", "one"), ("one", "qnanp"), ("snan", "one"), ("nqnan", "nsnan"),
        ("one", "none"), ("n0", "n0"), ("n0", "p0"), ("p0", "p0"), ("minsub", "minsub"),
        ("minn", "nminsub"), ("maxsub", "minsub"), ("pi", "third"), ("third", "none"),
    ]
    o.comment("fadd: exact, halfway and above-halfway cases, overflow, infinities, NaNs, signed zeros, subnormals")
    for a, b in add_pairs:
        for rm in RMS:
            r, f = add(fmt, v[a], v[b], rm)
            o.case(f"TEST_FP_OP2_{P}(@N, fadd.{fmt.name}, {rm}, {h(v[a])}, {h(v[b])}, {h(r)}, {flagstr(f)})")

    sub_pairs = [
        ("one", "one"), ("n0", "p0"), ("p0", "n0"), ("one", "halfulp"), ("none", "halfulp"),
        ("inf", "inf"), ("ninf", "inf"), ("nmax", "max"), ("minn", "minsub"), ("three", "pi"),
        ("snanp", "inf"), ("qnanp", "snan"),
    ]
    o.comment("fsub")
    for a, b in sub_pairs:
        for rm in RMS:
            r, f = sub(fmt, v[a], v[b], rm)
            o.case(f"TEST_FP_OP2_{P}(@N, fsub.{fmt.name}, {rm}, {h(v[a])}, {h(v[b])}, {h(r)}, {flagstr(f)})")

    mul_pairs = [
        ("two", "three"), ("onep", "onep"), ("pi", "third"), ("none", "third"), ("max", "two"),
        ("nmax", "two"), ("minn", "half"), ("minn_p", "half"), ("below1", "minn_p"),
        ("minsub", "half"), ("nminsub", "half"), ("maxsub", "oneulpm"), ("inf", "p0"), ("n0", "inf"),
        ("ninf", "none"), ("n0", "three"), ("snan", "p0"), ("qnanp", "inf"), ("minn", "minn"),
    ]
    o.comment("fmul: rounding, overflow, underflow (tininess after rounding), inf*0, NaNs")
    for a, b in mul_pairs:
        for rm in RMS:
            r, f = mul(fmt, v[a], v[b], rm)
            o.case(f"TEST_FP_OP2_{P}(@N, fmul.{fmt.name}, {rm}, {h(v[a])}, {h(v[b])}, {h(r)}, {flagstr(f)})")

    div_pairs = [
        ("one", "three"), ("none", "three"), ("two", "three"), ("seven", "two"), ("one", "p0"),
        ("none", "p0"), ("one", "n0"), ("p0", "p0"), ("inf", "inf"), ("inf", "n0"), ("three", "ninf"),
        ("max", "half"), ("minn", "three"), ("minsub", "two"), ("snan", "one"), ("qnan", "p0"),
        ("pi", "pi"), ("maxsub", "max"),
    ]
    o.comment("fdiv: rounding, divide by zero, 0/0, inf/inf, overflow, underflow, NaNs")
    for a, b in div_pairs:
        for rm in RMS:
            r, f = div(fmt, v[a], v[b], rm)
            o.case(f"TEST_FP_OP2_{P}(@N, fdiv.{fmt.name}, {rm}, {h(v[a])}, {h(v[b])}, {h(r)}, {flagstr(f)})")

    sqrt_ops = ["four", "two", "three", "p0", "n0", "inf", "ninf", "none", "minsub", "maxsub", "max",
                "snan", "qnanp", "oneulpm", "third"]
    o.comment("fsqrt: exact, inexact in each mode, -0, negative (invalid), infinities, subnormals, NaNs")
    for a in sqrt_ops:
        for rm in RMS:
            r, f = sqrt(fmt, v[a], rm)
            o.case(f"TEST_FP_OP1_{P}(@N, fsqrt.{fmt.name}, {rm}, {h(v[a])}, {h(r)}, {flagstr(f)})")

    fma_triples = [
        ("two", "three", "one"), ("onep", "onep", "none"), ("pi", "third", "none"),
        ("third", "three", "none"), ("inf", "p0", "qnan"), ("p0", "inf", "one"),
        ("inf", "one", "ninf"), ("max", "two", "nmax"), ("one", "p0", "n0"), ("n0", "one", "n0"),
        ("one", "one", "none"), ("minn", "half", "minsub"), ("snan", "one", "one"),
        ("one", "one", "qnanp"), ("max", "max", "ninf"), ("below1", "minn_p", "p0"),
    ]
    for name, np_, na in [("fmadd", False, False), ("fmsub", False, True),
                          ("fnmsub", True, False), ("fnmadd", True, True)]:
        o.comment(f"{name}: one rounding, signed zeros, inf*0 with a quiet NaN addend, NaNs")
        for a, b, c in fma_triples:
            for rm in RMS:
                r, f = fma(fmt, v[a], v[b], v[c], rm, np_, na)
                o.case(f"TEST_FP_OP3_{P}(@N, {name}.{fmt.name}, {rm}, {h(v[a])}, {h(v[b])}, {h(v[c])}, {h(r)}, {flagstr(f)})")

    sgn_pairs = [("one", "none"), ("none", "one"), ("none", "none"), ("qnanp", "n0"), ("nsnan", "p0"),
                 ("inf", "ninf"), ("n0", "n0")]
    for name in ["fsgnj", "fsgnjn", "fsgnjx"]:
        o.comment(f"{name}: sign bits only; NaNs are not canonicalised, no flags")
        for a, b in sgn_pairs:
            x, y = v[a], v[b]
            sa, sb = x & fmt.sign_bit, y & fmt.sign_bit
            mag = x & ~fmt.sign_bit
            sign = {"fsgnj": sb, "fsgnjn": sb ^ fmt.sign_bit, "fsgnjx": sa ^ sb}[name]
            o.case(f"TEST_FP_OP2_NORM_{P}(@N, {name}.{fmt.name}, {h(x)}, {h(y)}, {h(mag | sign)}, 0)")

    mm_pairs = [("one", "two"), ("none", "one"), ("p0", "n0"), ("n0", "p0"), ("qnan", "one"),
                ("one", "qnanp"), ("snan", "one"), ("two", "nsnan"), ("qnan", "snan"), ("qnanp", "nqnan"),
                ("inf", "max"), ("ninf", "nmax"), ("minsub", "nminsub")]
    for name, want_max in [("fmin", False), ("fmax", True)]:
        o.comment(f"{name}: -0 < +0; a NaN operand yields the other; sNaN signals invalid")
        for a, b in mm_pairs:
            r, f = minmax(fmt, v[a], v[b], want_max)
            o.case(f"TEST_FP_OP2_NORM_{P}(@N, {name}.{fmt.name}, {h(v[a])}, {h(v[b])}, {h(r)}, {flagstr(f)})")

    cmp_pairs = [("one", "two"), ("two", "one"), ("one", "one"), ("p0", "n0"), ("qnan", "one"),
                 ("one", "qnanp"), ("snan", "one"), ("ninf", "nmax"), ("inf", "inf"), ("minsub", "p0")]
    for name in ["feq", "flt", "fle"]:
        o.comment(f"{name}: " + ("quiet: only sNaN signals" if name == "feq" else "signalling: any NaN signals"))
        for a, b in cmp_pairs:
            r, f = compare(fmt, v[a], v[b], name)
            o.case(f"TEST_FP_CMP_{P}(@N, {name}.{fmt.name}, {h(v[a])}, {h(v[b])}, {r}, {flagstr(f)})")

    o.comment("fclass: each of the ten classes")
    for a in ["ninf", "none", "nminsub", "n0", "p0", "maxsub", "one", "inf", "snan", "qnan", "nsnan", "nqnan"]:
        o.case(f"TEST_FP_CLASS_{P}(@N, {h(v[a])}, {h(fclass(fmt, v[a]))})")

    cvt_ops = ["v2_5", "nv2_5", "v1_5", "nv1_5", "v0_5", "nv0_5", "nearlyhalf", "v3_5", "p0", "n0",
               "third", "big", "twoP31", "m2p31", "twoP32", "twoP63", "m2p63", "twoP64", "max", "nmax",
               "inf", "ninf", "qnan", "snan", "nqnan", "minsub"]
    for name, bits, signed in [("w", 32, True), ("wu", 32, False), ("l", 64, True), ("lu", 64, False)]:
        o.comment(f"fcvt.{name}.{fmt.name}: rounding in each mode, saturation and invalid, NaN -> maximum, sign extension")
        for a in cvt_ops:
            for rm in RMS:
                r, f = to_int(fmt, v[a], rm, bits, signed)
                o.case(f"TEST_FP_TO_INT_{P}(@N, fcvt.{name}.{fmt.name}, {rm}, {h(v[a])}, {h(r)}, {flagstr(f)})")

    int_vals = [0, 1, 0xFFFFFFFFFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x1FFFFFF,
                0x123456789ABCDEF1, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFF00000003,
                0x00000001FFFFFFFF, 0x20000001, 0x8000008000000001]
    for name, bits, signed in [("w", 32, True), ("wu", 32, False), ("l", 64, True), ("lu", 64, False)]:
        o.comment(f"fcvt.{fmt.name}.{name}: rounding in each mode" + ("; only the low 32 bits count" if bits == 32 else ""))
        for x in int_vals:
            for rm in RMS:
                r, f = from_int(fmt, x, rm, bits, signed)
                if fmt is D and bits == 32:
                    if rm != "rne":
                        continue  # exact: no rounding mode operand
                    o.case(f"TEST_INT_TO_FP_EXACT_{P}(@N, fcvt.{fmt.name}.{name}, {h(x)}, {h(r)}, {flagstr(f)})")
                else:
                    o.case(f"TEST_INT_TO_FP_{P}(@N, fcvt.{fmt.name}.{name}, {rm}, {h(x)}, {h(r)}, {flagstr(f)})")

    if fmt is D:
        vs = values(S)
        o.comment("fcvt.s.d: narrowing in each mode, overflow, underflow, NaNs canonicalised")
        for a in ["one", "third", "pi", "max", "nmax", "minn", "minsub", "n0", "inf", "qnanp", "snan",
                  "onep", "big"]:
            for rm in RMS:
                r, f = convert(D, S, v[a], rm)
                o.case(f"TEST_FP_D_TO_S(@N, {rm}, {h(v[a])}, {h(r)}, {flagstr(f)})")
        # Values exactly halfway / near single-precision boundaries.
        for x in [0x3FF0000010000000, 0x3FF0000030000000, 0x3FF0000010000001, 0x47EFFFFFF0000000,
                  0x47EFFFFFE0000000, 0x36A0000000000000, 0x3690000000000000, 0x3810000000000000,
                  0x380FFFFFF0000000]:
            for rm in RMS:
                r, f = convert(D, S, x, rm)
                o.case(f"TEST_FP_D_TO_S(@N, {rm}, {h(x)}, {h(r)}, {flagstr(f)})")
        o.comment("fcvt.d.s: exact widening, NaNs canonicalised (sNaN signals)")
        for a in ["one", "third", "pi", "max", "minsub", "maxsub", "n0", "ninf", "qnanp", "snan", "nqnan"]:
            r, f = convert(S, D, vs[a], "rne")
            o.case(f"TEST_FP_S_TO_D(@N, {h(vs[a])}, {h(r)}, {flagstr(f)})")

    return "\n".join(o.lines)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    for fmt, name in [(S, "rv64f_cases.h"), (D, "rv64d_cases.h")]:
        with open(os.path.join(here, name), "w") as f:
            f.write("/* %s — GENERATED by tests/asm/fpgen.py: do not edit; run\n" % name)
            f.write(" * `python3 tests/asm/fpgen.py` to regenerate. Included by %s. */\n"
                    % ("rv64f.S" if fmt is S else "rv64d.S"))
            f.write(generate(fmt))
            f.write("\n")
