"""Exact, order-independent sums of float64 values and of their squares (a superaccumulator).

Why: analyzer outputs must be bit-identical whatever the batch split and merge order. Float
addition is not associative, so any float running sum (even Kahan/Chan) depends on the order.
Here every finite float64 x is an exact integer multiple of 2**-1074, so
    x * 2**1074        (and x*x * 2**2148)
are integers; we add those integers exactly and round once, at the end.

Representation of an exact sum over P positions: a tuple (base, limbs) where limbs is an
int64 array [P, n] and the value at position p is
    sum_k limbs[p, k] * 2**(32 * (base + k)).
After `_normalize`, limbs[:, :-1] are in [0, 2**32) and the top limb is in [-2**31, 2**31),
and the form is canonical (trimmed), so equal sums have equal (base, limbs). Adding up to
2**30 normalized sums cannot overflow int64 (`add` works in groups of 2**20); values are
ingested in rounds of at most 2**24 (`from_values`). Only the limb range actually touched by
the data is stored, so memory stays small (typically a handful of limbs per position).

Imports only numpy.
"""
from __future__ import annotations

import numpy as np

_M32 = np.uint64(0xFFFFFFFF)
_SHIFT_ONE = 1074  # x * 2**1074 is an integer for every finite float64
_SHIFT_SQ = 2 * _SHIFT_ONE
_CHUNK = 1 << 24  # values per round: per-group int64 sums stay below 2**62
_MAX_ADD = 1 << 20  # normalized sums added at once: every limb stays below 2**53
_BLOCK = 1 << 16  # values per block in from_float32
_MAX_BIN_POSITIONS = 1 << 12  # from_float32 keeps 4 * 256 float64 bin sums per position

SCALE_ONE = _SHIFT_ONE
SCALE_SQ = _SHIFT_SQ


def empty(num_positions: int):
    return (0, np.zeros((num_positions, 0), dtype=np.int64))


def _normalize(base: int, limbs: np.ndarray):
    """Carry-propagate so that limbs[:, :-1] in [0, 2**32) and top limb in [-2**31, 2**31).

    Also trims all-zero low limbs and redundant top limbs, so the result is canonical: equal
    values give equal (base, limbs), whatever the order they were added in.
    """
    n = limbs.shape[1]
    if n == 0:
        return (0, limbs)
    for k in range(n - 1):
        col = limbs[:, k]
        carry = col >> 32  # arithmetic shift: floor division by 2**32
        if carry.any():
            limbs[:, k] = col - (carry << 32)
            limbs[:, k + 1] += carry
    while True:
        top = limbs[:, -1]
        if not ((top >= (1 << 31)) | (top < -(1 << 31))).any():
            break
        carry = top >> 32
        limbs[:, -1] = top - (carry << 32)
        limbs = np.concatenate([limbs, carry[:, None]], axis=1)
    # Drop redundant top limbs (pure sign extension of the limb below).
    while limbs.shape[1] > 1:
        top, below = limbs[:, -1], limbs[:, -2]
        if not (((top == 0) & (below < (1 << 31))) | ((top == -1) & (below >= (1 << 31)))).all():
            break
        limbs = limbs[:, :-1].copy()
        limbs[:, -1] = below + (top << 32)
    # Drop all-zero low limbs.
    nonzero_cols = np.flatnonzero(limbs.any(axis=0))
    if nonzero_cols.size == 0:
        return (0, np.zeros((limbs.shape[0], 0), dtype=np.int64))
    first = int(nonzero_cols[0])
    if first:
        limbs = limbs[:, first:]
        base += first
    return (base, np.ascontiguousarray(limbs))


def _terms_to_limbs(pos, value, bit, num_positions):
    """Exact sum per position of value * 2**bit (value: int64, |value| < 2**63; bit >= 0)."""
    if value.size == 0:
        return empty(num_positions)
    sign = np.where(value < 0, -1, 1).astype(np.int64)
    mag = np.abs(value).astype(np.uint64)  # < 2**63
    ks, vs = [], []
    # Each 32-bit chunk c of |value|, placed at bit b = 32*k + r, contributes
    # (c << r) & (2**32-1) to limb k and (c << r) >> 32 to limb k + 1 (both < 2**32).
    for chunk, off in ((mag & _M32, 0), (mag >> np.uint64(32), 32)):
        b = bit + off
        k = b >> 5
        w = chunk << (b & 31).astype(np.uint64)  # < 2**63
        ks += [k, k + 1]
        vs += [(w & _M32).astype(np.int64) * sign, (w >> np.uint64(32)).astype(np.int64) * sign]
    base = int(min(k.min() for k in ks))
    width = int(max(k.max() for k in ks)) - base + 2  # +1 highest limb, +1 carry headroom
    flat = np.zeros(num_positions * width, dtype=np.int64)
    for k, v in zip(ks, vs):
        np.add.at(flat, pos * width + (k - base), v)
    return _normalize(base, flat.reshape(num_positions, width))


def _group_ids(positions, shift, num_positions):
    """Group id per value for the key (position, shift), and each group's (position, shift).

    Dense ids (position * span + shift offset) when that table is small, else np.unique ids.
    Groups that receive no value simply sum to zero and are dropped later.
    """
    smin = int(shift.min())
    span = int(shift.max()) - smin + 1
    key = positions * span + (shift - smin)
    if num_positions * span <= max(4 * key.size, 1 << 20):
        ids = np.arange(num_positions * span, dtype=np.int64)
        return key, ids // span, ids % span + smin
    uniq, gid = np.unique(key, return_inverse=True)
    return gid.reshape(-1), uniq // span, uniq % span + smin


def from_values(values, positions, num_positions: int, *, squares: bool = True,
                mantissa_bits: int = 53):
    """Exact sums per position of `values` (finite, 1-D) and, if `squares`, of their squares.

    Returns (sum, sum_of_squares or None), scaled by 2**SCALE_ONE and 2**SCALE_SQ.
    positions[i] in [0, num_positions) says where values[i] goes. mantissa_bits may be 24
    when every value is exactly a float32 (or float16), which saves work.

    Method: x = m * 2**(shift - 1074) with a signed integer mantissa |m| < 2**mantissa_bits.
    Values sharing (position, shift) are summed in int64 per group: m itself (24 bits) or its
    two 27-bit halves (53 bits), and for squares the pairwise products of 12/18-bit limbs of
    |m|. With at most 2**24 values per round every group sum stays below 2**62, so it is
    exact; only the per-group sums are then spread onto the accumulator's 32-bit limbs.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    positions = np.asarray(positions, dtype=np.int64).reshape(-1)
    if values.size > _CHUNK:
        parts = [
            from_values(values[i:i + _CHUNK], positions[i:i + _CHUNK], num_positions,
                        squares=squares, mantissa_bits=mantissa_bits)
            for i in range(0, values.size, _CHUNK)
        ]
        return (merge([p[0] for p in parts], num_positions),
                merge([p[1] for p in parts], num_positions) if squares else None)
    keep = values != 0
    if not keep.all():
        values, positions = values[keep], positions[keep]
    if values.size == 0:
        return empty(num_positions), (empty(num_positions) if squares else None)
    if mantissa_bits not in (24, 53):
        raise ValueError("mantissa_bits must be 24 or 53")
    m, e = np.frexp(values)
    mi = (m * float(1 << mantissa_bits)).astype(np.int64)  # exact: m has <= mantissa_bits bits
    shift = e.astype(np.int64) + (_SHIFT_ONE - mantissa_bits)
    sub = shift < 0  # float64 subnormals: the low bits of mi are zero, shift them out exactly
    if sub.any():
        mi[sub] = mi[sub] >> (-shift[sub])
        shift[sub] = 0

    gid, g_pos, g_shift = _group_ids(positions, shift, num_positions)
    n_groups = g_pos.size

    def group_sum(v):
        out = np.zeros(n_groups, dtype=np.int64)
        np.add.at(out, gid, v)
        return out

    # Sum of x: m (< 2**24), or m = hi * 2**27 + lo with hi, lo signed and < 2**27.
    if mantissa_bits == 24:
        parts = [(group_sum(mi), 0)]
    else:
        hi = mi >> 27  # floor
        lo = mi - (hi << 27)  # in [0, 2**27)
        parts = [(group_sum(hi), 27), (group_sum(lo), 0)]
    total = _spread(parts, g_pos, g_shift, 1, num_positions)
    if not squares:
        return total, None
    mag = np.abs(mi)
    limb_bits = 12 if mantissa_bits == 24 else 18
    n_limbs = 2 if mantissa_bits == 24 else 3
    mask = (1 << limb_bits) - 1
    limbs = [(mag >> (i * limb_bits)) & mask if i < n_limbs - 1 else mag >> (i * limb_bits)
             for i in range(n_limbs)]
    parts = []
    for i in range(n_limbs):
        for j in range(i, n_limbs):
            prod = limbs[i] * limbs[j]  # < 2**36
            if i != j:
                prod <<= 1
            parts.append((group_sum(prod), (i + j) * limb_bits))
    return total, _spread(parts, g_pos, g_shift, 2, num_positions)


def from_float32(x2d, *, squares: bool = True):
    """Exact per-column sums of a finite float32 array [rows, P], and of its squares.

    The same (sum, sum_of_squares or None) as from_values(x2d.ravel(), column index, P),
    found with far fewer passes over the data. Method (exponent bins): a float32 with
    exponent field E is an integer multiple of u = 2**(max(E, 1) - 150) below 2**24 * u, so
    float64 adds up to 2**29 values of one (column, E) bin exactly, in any order; one
    np.bincount per part gives the per-bin sums. For squares, x = xh + xl (xh: x with the
    low 12 mantissa bits cleared) and x*x = xh*xh + 2*xh*xl + xl*xl, three parts that each
    span 24 bits within a bin, so they sum exactly the same way. Only the few hundred
    per-bin float64 sums are then spread onto the integer limbs (at most _CHUNK rows per
    round, far below 2**28).
    """
    x = np.ascontiguousarray(x2d, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"from_float32 takes a 2-D array, got shape {x.shape}")
    rows, num_positions = x.shape
    if num_positions > _MAX_BIN_POSITIONS:  # 256 bins per position would not pay off
        return from_values(x.reshape(-1), np.tile(np.arange(num_positions), rows),
                           num_positions, squares=squares, mantissa_bits=24)
    if rows * num_positions > _CHUNK and rows > 1:
        step = max(1, _CHUNK // max(num_positions, 1))
        parts = [from_float32(x[i:i + step], squares=squares) for i in range(0, rows, step)]
        return (merge([p[0] for p in parts], num_positions),
                merge([p[1] for p in parts], num_positions) if squares else None)
    if x.size == 0:
        return empty(num_positions), (empty(num_positions) if squares else None)
    num_bins = num_positions << 8
    sums = np.zeros((4 if squares else 1, num_bins))
    # Blocks of ~64k values keep the temporaries in cache and off the page-fault path; the
    # float64 bin sums stay exact across blocks (at most _CHUNK values in all).
    step = max(1, _BLOCK // max(num_positions, 1))
    column_bins = np.arange(num_positions, dtype=np.uint32) << np.uint32(8)
    for start in range(0, rows, step):
        _add_bin_sums(sums, x[start:start + step], column_bins, squares)
    bin_pos = np.arange(num_bins, dtype=np.int64) >> 8
    total = _float_sums_to_limbs(sums[:1], bin_pos, SCALE_ONE, num_positions)
    if not squares:
        return total, None
    return total, _float_sums_to_limbs(sums[1:], bin_pos, SCALE_SQ, num_positions)


def _add_bin_sums(sums, block, column_bins, squares):
    """Adds the per-(column, exponent) sums of x (and of the square parts) to `sums`."""
    bits = block.view(np.uint32)
    key = (bits >> np.uint32(23)) & np.uint32(0xFF)
    if column_bins.size > 1:
        key = key + column_bins
    key = key.reshape(-1).astype(np.intp)
    num_bins = sums.shape[1]
    flat = block.reshape(-1)
    sums[0] += np.bincount(key, weights=flat, minlength=num_bins)
    if not squares:
        return
    high = (bits & np.uint32(0xFFFFF000)).view(np.float32).reshape(-1)
    low = (flat - high).astype(np.float64)  # exact: the 12 low mantissa bits
    high = high.astype(np.float64)
    sums[1] += np.bincount(key, weights=high * high, minlength=num_bins)
    sums[2] += np.bincount(key, weights=2.0 * high * low, minlength=num_bins)
    sums[3] += np.bincount(key, weights=low * low, minlength=num_bins)


def _float_sums_to_limbs(sums, bin_pos, scale, num_positions):
    """Exact per-position sum of the float64 values `sums` (arrays over bins), times 2**scale."""
    values = np.concatenate(sums)
    positions = np.tile(bin_pos, len(sums))
    nz = np.flatnonzero(values)
    m, e = np.frexp(values[nz])
    mantissa = (m * float(1 << 53)).astype(np.int64)  # exact: 53 significant bits
    return _terms_to_limbs(positions[nz], mantissa, e.astype(np.int64) + (scale - 53),
                           num_positions)


def _spread(parts, g_pos, g_shift, shift_factor, num_positions):
    """Exact per-position sum of group_sum * 2**(shift_factor * shift + offset) over parts."""
    pos_terms, val_terms, bit_terms = [], [], []
    for sums, offset in parts:
        nz = np.flatnonzero(sums)
        pos_terms.append(g_pos[nz])
        val_terms.append(sums[nz])
        bit_terms.append(shift_factor * g_shift[nz] + offset)
    return _terms_to_limbs(np.concatenate(pos_terms), np.concatenate(val_terms),
                           np.concatenate(bit_terms), num_positions)


def add(accs):
    """Exact sum of several exact sums (same number of positions)."""
    accs = [a for a in accs if a[1].shape[1]]
    if not accs:
        return None
    if len(accs) == 1:
        return accs[0]
    if len(accs) > _MAX_ADD:
        return add([add(accs[i:i + _MAX_ADD]) for i in range(0, len(accs), _MAX_ADD)])
    lo = min(a[0] for a in accs)
    hi = max(a[0] + a[1].shape[1] for a in accs)
    out = np.zeros((accs[0][1].shape[0], hi - lo + 1), dtype=np.int64)
    for base, limbs in accs:
        out[:, base - lo: base - lo + limbs.shape[1]] += limbs
    return _normalize(lo, out)


def merge(accs, num_positions: int):
    total = add(accs)
    return total if total is not None else empty(num_positions)


def to_ints(acc) -> list:
    """The exact (scaled) value at each position, as Python ints."""
    base, limbs = acc
    num_positions, n = limbs.shape
    if n == 0:
        return [0] * num_positions
    out = []
    low = np.ascontiguousarray(limbs[:, :-1]).astype("<u4")
    top_shift = 32 * (n - 1)
    for p in range(num_positions):
        v = int.from_bytes(low[p].tobytes(), "little") + (int(limbs[p, -1]) << top_shift)
        out.append(v << (32 * base) if base >= 0 else v >> (-32 * base))
    return out


def ratio_to_float(num: int, den: int) -> float:
    """num/den correctly rounded to float64 (Python int division is correctly rounded)."""
    try:
        return num / den
    except OverflowError:
        return float("inf") if (num < 0) == (den < 0) else float("-inf")
