"""Combiners for TFT's numeric analyzers: min, max, sum, size, mean, var.

Imports only numpy and pyarrow; no TensorFlow, no Beam.

Semantics follow tensorflow_transform 1.21 (analyzers.py: _min_and_max, sum, size,
_mean_and_var, WeightedMeanAndVarCombiner; tf_utils.py: reduce_batch_minus_min_and_max,
reduce_batch_count, _reduce_batch_count_mean_and_var_dense). Inputs are dense numpy/pyarrow
arrays of shape [batch, ...]; for a VarLen (ragged/sparse) feature pass the flat values with
reduce_instance_dims=True (TFT's elementwise sparse/ragged variants are not covered).

reduce_instance_dims=True reduces everything to a scalar; False reduces over axis 0 only and
gives one value per instance position (output shape = input shape without the batch dim).
If no row was ever seen and `instance_shape` was not configured, an elementwise output has
shape (0,) (TFT knows the shape statically; pass `instance_shape` to get it here).

min / max (MinMaxCombiner, output dtype = input dtype; float16/32/64, int8/16/32/64,
uint8/16 as TFT; uint32/uint64 raise TypeError as in TFT):
  * NaN propagates: any NaN (at a position) makes both min and max NaN (TF >= 2.4
    tf.reduce_max propagates NaN and the Beam combiner uses np.max).
  * +-inf are ordinary values.
  * Empty input: float -> min=+inf, max=-inf; integer -> min=dtype.max, max=-dtype.max
    wrapped to the dtype (int64: -9223372036854775807; uint8/uint16: 1), exactly TFT's
    default accumulator (-dtype.max for both -min and max) cast back.
  * Signed zeros: TF's reduce_max returns whichever equal element comes last, so TFT's sign of
    a zero min/max depends on element order. Here it is order independent, as IEEE 754-2019
    minimum/maximum (-0 < +0): min is -0.0 if any -0.0 ties for the minimum, max is +0.0 if any
    +0.0 ties for the maximum. This agrees with TFT whenever all tied zeros have one sign.
    NaN outputs are the canonical quiet NaN.
  * Deliberate divergence: TFT negates integers to track -min, which wraps for the most
    negative value (int64 -2**63, int8 -128), giving a wrong min; here min is exact.

sum (SumCombiner): output dtype float16/float32 -> float32, float64 -> float64, signed ints ->
int64, unsigned -> uint64 (TFT's _SUM_OUTPUT_DTYPE_MAP). NaN and inf propagate as in IEEE
(NaN if any NaN or both +inf and -inf). Float sums are computed exactly and rounded once (to
float64, then cast to the output dtype), so they are order independent and at least as
accurate as TFT's float32/float64 running sums (which they may differ from in the last bits).
Integer sums wrap modulo 2**64 like np.sum. Empty -> 0. (TFT first reduces each batch in the
input dtype, so an int32 batch sum wraps at 2**31 and a float16 batch sum overflows at 65504;
here every value goes straight into the int64 / exact sum, which only differs in those cases.)

size (SizeCombiner): int64 count of all elements, NaN included (TFT sums ones_like(x));
elementwise: the number of rows at every position. Any dtype (strings too). Empty -> 0.

mean / var (MeanAndVarCombiner; population variance, ddof=0):
  * x is first cast to the output dtype, as TFT does: `output_dtype` if given, else float16 ->
    float16, float32 -> float32, float64 -> float64, any integer -> float32 (so int64 values
    beyond 2**24 lose precision exactly as in TFT).
  * NaN and +-inf are ignored (excluded from the count and the sums).
  * Nothing finite at all (including empty input) -> mean 0 and var 0 everywhere (TFT's
    divide_no_nan on the batch plus the combiner returning the all-zero accumulator).
  * Elementwise, when some position has finite values but another has none, that other
    position gets NaN mean and NaN var (TFT's combiner computes 0/0 there).
  * The sums of x and x*x are exact (tft_lite.analyzers._exact), mean = S/n and
    var = (n*Q - S*S) / n**2 are rounded once to float64 then cast to the output dtype (so a
    float32 result may be double rounded; it is still a deterministic function of the data).
    Why not Chan's count/mean/M2 merge: its float result depends on the merge order, and
    outputs must be bit-identical for any batch split/merge tree; exact sums give that and are
    also more stable (mean/var of 1e9 + small noise are correctly rounded). TFT computes in
    the output dtype (float32 for float32 input), so its float32 results can differ from ours
    by float32 rounding noise.

Cost: exact sums ingest ~20 ns per float32/float16 value (_exact.from_float32: float64 sums
per exponent bin, which are exact) and ~30-100 ns per float64 value; an accumulator holds a
few int64 "limbs" per position (more only if the data spans a huge exponent range), and each
add/merge is O(positions x limbs).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from tft_lite.analyzers import _exact
from tft_lite.analyzers.base import Combiner, as_numpy, single_input

__all__ = [
    "MaxCombiner",
    "MeanAndVarCombiner",
    "MeanCombiner",
    "MinCombiner",
    "MinMaxCombiner",
    "SizeCombiner",
    "SumCombiner",
    "VarCombiner",
]

_SIGNED = ("int8", "int16", "int32", "int64")
_UNSIGNED = ("uint8", "uint16", "uint32", "uint64")
_FLOATS = ("float16", "float32", "float64")

_MINMAX_DTYPES = _FLOATS + _SIGNED + ("uint8", "uint16")
_SUM_OUTPUT = {
    "float16": "float32",
    "float32": "float32",
    "float64": "float64",
    **{d: "int64" for d in _SIGNED},
    **{d: "uint64" for d in _UNSIGNED},
}
_MEAN_OUTPUT = {
    "float16": "float16",
    "float32": "float32",
    "float64": "float64",
    **{d: "float32" for d in _SIGNED + _UNSIGNED},
}


def _dtype_name(dtype) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"not a numpy dtype: {dtype!r}") from None


def _canonical_nan(arr) -> np.ndarray:
    """Replace every NaN (any sign/payload) with the canonical quiet NaN, for bit-identity."""
    arr = np.asarray(arr)
    if arr.dtype.kind == "f":
        arr = np.asarray(np.where(np.isnan(arr), np.array(np.nan, arr.dtype), arr), arr.dtype)
    return arr


class _Elementwise(Combiner):
    """Shared shape handling for the reduce_instance_dims True/False analyzers."""

    def _check_common_config(self):
        if not isinstance(self.reduce_instance_dims, (bool, np.bool_)):
            raise TypeError("reduce_instance_dims must be a bool")
        if self.instance_shape is not None:
            shape = tuple(self.instance_shape)
            if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
                raise ValueError(f"instance_shape must be non-negative ints, got {shape!r}")

    def _initial_shape(self):
        if self.reduce_instance_dims:
            return ()
        if self.instance_shape is not None:
            return tuple(int(d) for d in self.instance_shape)
        return None

    def _to_2d(self, x: np.ndarray):
        """(x as [rows, positions], instance shape)."""
        if self.reduce_instance_dims:
            return x.reshape(x.size, 1), ()
        if x.ndim == 0:
            raise ValueError("reduce_instance_dims=False needs an input with a batch dimension")
        shape = tuple(x.shape[1:])
        return x.reshape(x.shape[0], int(np.prod(shape, dtype=np.int64))), shape

    @staticmethod
    def _merge_shape(shape, other):
        if shape is None:
            return other
        if other is not None and tuple(other) != tuple(shape):
            raise ValueError(
                f"inconsistent instance shapes: {tuple(shape)} vs {tuple(other)} "
                "(reduce_instance_dims=False needs one fixed shape per feature)"
            )
        return shape

    @staticmethod
    def _out_shape(shape):
        return (0,) if shape is None else tuple(shape)

    @staticmethod
    def _num_positions(shape):
        return int(np.prod(shape, dtype=np.int64)) if shape is not None else 0


# ----------------------------------------------------------------------------- min / max


class MinMaxCombiner(_Elementwise):
    """TFT's _min_and_max: outputs (min, max), both of the input dtype."""

    def __init__(self, *, input_dtype, reduce_instance_dims=True, instance_shape=None):
        self.input_dtype = input_dtype
        self.reduce_instance_dims = reduce_instance_dims
        self.instance_shape = instance_shape
        self._check_common_config()
        if _dtype_name(input_dtype) not in _MINMAX_DTYPES:
            raise TypeError(f"min/max do not support input dtype {_dtype_name(input_dtype)}")

    def _identities(self, dtype):
        if dtype.kind == "f":
            return np.array(np.inf, dtype), np.array(-np.inf, dtype)
        info = np.iinfo(dtype)
        return np.array(info.max, dtype), np.array(info.min, dtype)

    def create_accumulator(self):
        shape = self._initial_shape()
        if shape is None:
            return (0, None, None, None)
        dtype = np.dtype(self.input_dtype)
        hi, lo = self._identities(dtype)
        p = self._num_positions(shape)
        return (0, shape, np.full(p, hi, dtype), np.full(p, lo, dtype))

    @staticmethod
    def _reduce(x2d: np.ndarray, is_max: bool) -> np.ndarray:
        """min or max over axis 0; NaN propagates; zero sign independent of element order."""
        out = x2d.max(axis=0) if is_max else x2d.min(axis=0)
        if x2d.dtype.kind == "f":
            zero = out == 0
            if zero.any():  # IEEE 754-2019 maximum/minimum: +0 > -0
                if is_max:  # -0 only when no +0 ties for the maximum
                    neg = ~((x2d == 0) & ~np.signbit(x2d)).any(axis=0)
                else:  # -0 as soon as a -0 ties for the minimum
                    neg = ((x2d == 0) & np.signbit(x2d)).any(axis=0)
                pos_zero = np.zeros((), x2d.dtype)
                out = np.where(zero, np.where(neg, -pos_zero, pos_zero), out)
        return out

    @staticmethod
    def _combine(a, b, is_max: bool):
        out = np.maximum(a, b) if is_max else np.minimum(a, b)
        if out.dtype.kind == "f":
            both_zero = (a == 0) & (b == 0)
            if both_zero.any():
                # max: -0 only if both are -0 (a + b); min: -0 if either is -0 (-(-a + -b)).
                out = np.where(both_zero, (a + b) if is_max else -((-a) + (-b)), out)
        return out

    def add_input(self, accumulator, batch):
        count, shape, mins, maxs = accumulator
        x = as_numpy(single_input(batch), self.input_dtype)
        x2d, inst = self._to_2d(x)
        shape = self._merge_shape(shape, inst)
        if x2d.shape[0] == 0 or x2d.shape[1] == 0:
            if mins is None:
                return self._fresh(shape, count + x2d.shape[0])
            return (count + x2d.shape[0], shape, mins, maxs)
        bmin = self._reduce(x2d, is_max=False)
        bmax = self._reduce(x2d, is_max=True)
        if mins is None:
            return (count + x2d.shape[0], shape, bmin, bmax)
        return (
            count + x2d.shape[0],
            shape,
            self._combine(mins, bmin, is_max=False),
            self._combine(maxs, bmax, is_max=True),
        )

    def _fresh(self, shape, count):
        dtype = np.dtype(self.input_dtype)
        hi, lo = self._identities(dtype)
        p = self._num_positions(shape)
        return (count, shape, np.full(p, hi, dtype), np.full(p, lo, dtype))

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        count, shape, mins, maxs = 0, None, None, None
        for c, s, mn, mx in accumulators:
            shape = self._merge_shape(shape, s)
            count += c
            if mn is None:
                continue
            if mins is None:
                mins, maxs = mn, mx
            else:
                mins = self._combine(mins, mn, is_max=False)
                maxs = self._combine(maxs, mx, is_max=True)
        if mins is None and shape is not None:
            return self._fresh(shape, count)
        return (count, shape, mins, maxs)

    def extract_output(self, accumulator):
        count, shape, mins, maxs = accumulator
        dtype = np.dtype(self.input_dtype)
        out_shape = self._out_shape(shape)
        if count == 0 or mins is None:
            # TFT's default accumulator: -min = max = -dtype.max (or -inf), cast back.
            if dtype.kind == "f":
                dmin, dmax = np.array(np.inf, dtype), np.array(-np.inf, dtype)
            else:
                big = int(np.iinfo(dtype).max)
                dmin = np.array(big, dtype)
                dmax = np.array(-big, np.int64).astype(dtype)  # wraps for uint8/uint16
            return (np.full(out_shape, dmin, dtype), np.full(out_shape, dmax, dtype))
        out_min = mins.reshape(out_shape).astype(dtype, copy=True)
        out_max = maxs.reshape(out_shape).astype(dtype, copy=True)
        if dtype.kind == "f":
            out_min, out_max = _canonical_nan(out_min), _canonical_nan(out_max)
        return (out_min, out_max)

    def output_dtypes(self):
        return (np.dtype(self.input_dtype), np.dtype(self.input_dtype))


class _OneOutput:
    """Keeps one output of a two-output combiner: TFT computes min and max (mean and var)
    together and its tft.min / tft.max (tft.mean / tft.var) return one of them."""

    _keep = slice(None)

    def extract_output(self, accumulator):
        return super().extract_output(accumulator)[self._keep]

    def output_dtypes(self):
        return super().output_dtypes()[self._keep]


class MinCombiner(_OneOutput, MinMaxCombiner):
    """TFT's tft.min: outputs (min,)."""

    _keep = slice(0, 1)


class MaxCombiner(_OneOutput, MinMaxCombiner):
    """TFT's tft.max: outputs (max,)."""

    _keep = slice(1, 2)


# ----------------------------------------------------------------------------- sum

_NAN, _POS_INF, _NEG_INF = 1, 2, 4


def _mantissa_bits(dtype) -> int:
    """Significant bits that suffice for every value of a float dtype (float16/32 fit in 24)."""
    return 24 if np.dtype(dtype).itemsize <= 4 else 53


def _finite_values_and_positions(x2d: np.ndarray, finite: np.ndarray):
    """Flattened finite values of x2d (as float64) and their position (column) index."""
    if finite.all():
        vals = x2d.reshape(-1)
        pos = np.tile(np.arange(x2d.shape[1], dtype=np.int64), x2d.shape[0])
    else:
        rows, pos = np.nonzero(finite)
        vals = x2d[rows, pos]
    return vals.astype(np.float64), pos.astype(np.int64)


def _exact_sums(x2d: np.ndarray, finite: np.ndarray, squares: bool):
    """Exact per-column sums of the finite values of x2d (and of their squares)."""
    if x2d.dtype.itemsize <= 4:  # float16/float32: exact in float32, the exponent-bin path
        x32 = x2d.astype(np.float32, copy=False)
        if not finite.all():
            x32 = np.where(finite, x32, np.float32(0))
        return _exact.from_float32(x32, squares=squares)
    vals, pos = _finite_values_and_positions(x2d, finite)
    return _exact.from_values(vals, pos, x2d.shape[1], squares=squares,
                              mantissa_bits=_mantissa_bits(x2d.dtype))


class SumCombiner(_Elementwise):
    """TFT's tft.sum: outputs (sum,) with TFT's output dtype (see module docstring)."""

    def __init__(self, *, input_dtype, reduce_instance_dims=True, instance_shape=None):
        self.input_dtype = input_dtype
        self.reduce_instance_dims = reduce_instance_dims
        self.instance_shape = instance_shape
        self._check_common_config()
        if _dtype_name(input_dtype) not in _SUM_OUTPUT:
            raise TypeError(f"sum does not support input dtype {_dtype_name(input_dtype)}")

    def _is_float(self):
        return np.dtype(self.input_dtype).kind == "f"

    def _out_dtype(self):
        return np.dtype(_SUM_OUTPUT[_dtype_name(self.input_dtype)])

    def _empty_payload(self, p):
        if self._is_float():
            return (_exact.empty(p), np.zeros(p, np.int8))
        return (np.zeros(p, self._out_dtype()),)

    def create_accumulator(self):
        shape = self._initial_shape()
        if shape is None:
            return (None, None)
        return (shape, self._empty_payload(self._num_positions(shape)))

    def add_input(self, accumulator, batch):
        shape, payload = accumulator
        x = as_numpy(single_input(batch), self.input_dtype)
        x2d, inst = self._to_2d(x)
        shape = self._merge_shape(shape, inst)
        p = x2d.shape[1]
        if payload is None:
            payload = self._empty_payload(p)
        if x2d.shape[0] == 0 or p == 0:
            return (shape, payload)
        if not self._is_float():
            total = payload[0] + x2d.astype(self._out_dtype()).sum(axis=0, dtype=self._out_dtype())
            return (shape, (total,))
        exact, flags = payload
        finite = np.isfinite(x2d)
        new_flags = flags.copy()
        if not finite.all():
            new_flags |= np.isnan(x2d).any(axis=0).astype(np.int8) * _NAN
            new_flags |= (x2d == np.inf).any(axis=0).astype(np.int8) * _POS_INF
            new_flags |= (x2d == -np.inf).any(axis=0).astype(np.int8) * _NEG_INF
        batch_exact, _ = _exact_sums(x2d, finite, squares=False)
        return (shape, (_exact.merge([exact, batch_exact], p), new_flags))

    def merge_accumulators(self, accumulators):
        shape, payloads = None, []
        for s, pl in accumulators:
            shape = self._merge_shape(shape, s)
            if pl is not None:
                payloads.append(pl)
        if not payloads:
            if shape is None:
                return (None, None)
            return (shape, self._empty_payload(self._num_positions(shape)))
        if not self._is_float():
            total = payloads[0][0].copy()
            for pl in payloads[1:]:
                total += pl[0]
            return (shape, (total,))
        p = payloads[0][1].shape[0]
        flags = np.zeros(p, np.int8)
        for pl in payloads:
            flags |= pl[1]
        return (shape, (_exact.merge([pl[0] for pl in payloads], p), flags))

    def extract_output(self, accumulator):
        shape, payload = accumulator
        out_dtype = self._out_dtype()
        out_shape = self._out_shape(shape)
        if payload is None:
            return (np.zeros(out_shape, out_dtype),)
        if not self._is_float():
            return (payload[0].reshape(out_shape).astype(out_dtype),)
        exact, flags = payload
        values = []
        denominator = 1 << _exact.SCALE_ONE
        for v, f in zip(_exact.to_ints(exact), flags.tolist()):
            if f & _NAN or (f & _POS_INF and f & _NEG_INF):
                values.append(float("nan"))
            elif f & _POS_INF:
                values.append(float("inf"))
            elif f & _NEG_INF:
                values.append(float("-inf"))
            else:
                values.append(_exact.ratio_to_float(v, denominator))
        with np.errstate(over="ignore"):
            out = np.array(values, dtype=np.float64).astype(out_dtype)
        return (_canonical_nan(out.reshape(out_shape)),)

    def output_dtypes(self):
        return (self._out_dtype(),)


# ----------------------------------------------------------------------------- size


class SizeCombiner(_Elementwise):
    """TFT's tft.size: outputs (size,) as int64 (elements counted, NaN included)."""

    def __init__(self, *, reduce_instance_dims=True, instance_shape=None):
        self.reduce_instance_dims = reduce_instance_dims
        self.instance_shape = instance_shape
        self._check_common_config()

    def create_accumulator(self):
        return (self._initial_shape(), 0)

    def add_input(self, accumulator, batch):
        shape, count = accumulator
        x = single_input(batch)
        if isinstance(x, np.ndarray):
            xshape = x.shape
        elif isinstance(x, (pa.Array, pa.ChunkedArray)):
            xshape = (len(x),)
        else:
            xshape = np.shape(x)
        if self.reduce_instance_dims:
            return (shape, count + int(np.prod(xshape, dtype=np.int64)))
        if len(xshape) == 0:
            raise ValueError("reduce_instance_dims=False needs an input with a batch dimension")
        return (self._merge_shape(shape, tuple(xshape[1:])), count + int(xshape[0]))

    def merge_accumulators(self, accumulators):
        shape, count = None, 0
        for s, c in accumulators:
            shape = self._merge_shape(shape, s)
            count += c
        return (shape, count)

    def extract_output(self, accumulator):
        shape, count = accumulator
        return (np.full(self._out_shape(shape), count, dtype=np.int64),)

    def output_dtypes(self):
        return (np.dtype(np.int64),)


# ----------------------------------------------------------------------------- mean / var


class MeanAndVarCombiner(_Elementwise):
    """TFT's _mean_and_var: outputs (mean, var) in the output dtype (see module docstring)."""

    def __init__(
        self, *, input_dtype, reduce_instance_dims=True, output_dtype=None, instance_shape=None
    ):
        self.input_dtype = input_dtype
        self.reduce_instance_dims = reduce_instance_dims
        self.output_dtype = output_dtype
        self.instance_shape = instance_shape
        self._check_common_config()
        if output_dtype is None and _dtype_name(input_dtype) not in _MEAN_OUTPUT:
            raise TypeError(f"mean/var do not support input dtype {_dtype_name(input_dtype)}")
        if output_dtype is not None and np.dtype(output_dtype).kind != "f":
            raise TypeError(f"mean/var output_dtype must be a float dtype, got {output_dtype!r}")

    def _out_dtype(self):
        if self.output_dtype is not None:
            return np.dtype(self.output_dtype)
        return np.dtype(_MEAN_OUTPUT[_dtype_name(self.input_dtype)])

    @staticmethod
    def _empty_payload(p):
        return (np.zeros(p, np.int64), _exact.empty(p), _exact.empty(p))

    def create_accumulator(self):
        shape = self._initial_shape()
        if shape is None:
            return (None, None)
        return (shape, self._empty_payload(self._num_positions(shape)))

    def add_input(self, accumulator, batch):
        shape, payload = accumulator
        x = as_numpy(single_input(batch), self.input_dtype)
        with np.errstate(over="ignore"):
            x = x.astype(self._out_dtype(), copy=False)  # TFT casts x to the output dtype
        x2d, inst = self._to_2d(x)
        shape = self._merge_shape(shape, inst)
        p = x2d.shape[1]
        if payload is None:
            payload = self._empty_payload(p)
        if x2d.shape[0] == 0 or p == 0:
            return (shape, payload)
        counts, s1, s2 = payload
        finite = np.isfinite(x2d)
        b1, b2 = _exact_sums(x2d, finite, squares=True)
        return (
            shape,
            (
                counts + finite.sum(axis=0, dtype=np.int64),
                _exact.merge([s1, b1], p),
                _exact.merge([s2, b2], p),
            ),
        )

    def merge_accumulators(self, accumulators):
        shape, payloads = None, []
        for s, pl in accumulators:
            shape = self._merge_shape(shape, s)
            if pl is not None:
                payloads.append(pl)
        if not payloads:
            if shape is None:
                return (None, None)
            return (shape, self._empty_payload(self._num_positions(shape)))
        p = payloads[0][0].shape[0]
        counts = payloads[0][0].copy()
        for pl in payloads[1:]:
            counts += pl[0]
        return (
            shape,
            (
                counts,
                _exact.merge([pl[1] for pl in payloads], p),
                _exact.merge([pl[2] for pl in payloads], p),
            ),
        )

    def extract_output(self, accumulator):
        shape, payload = accumulator
        out_dtype = self._out_dtype()
        out_shape = self._out_shape(shape)
        if payload is None or int(payload[0].sum()) == 0:
            return (np.zeros(out_shape, out_dtype), np.zeros(out_shape, out_dtype))
        counts, s1, s2 = payload
        means, variances = [], []
        one, sq = 1 << _exact.SCALE_ONE, 1 << _exact.SCALE_SQ
        for n, v, q in zip(counts.tolist(), _exact.to_ints(s1), _exact.to_ints(s2)):
            if n == 0:
                means.append(float("nan"))
                variances.append(float("nan"))
                continue
            means.append(_exact.ratio_to_float(v, n * one))
            variances.append(_exact.ratio_to_float(n * q - v * v, n * n * sq))
        with np.errstate(over="ignore"):
            mean = np.array(means, np.float64).astype(out_dtype).reshape(out_shape)
            var = np.array(variances, np.float64).astype(out_dtype).reshape(out_shape)
        return (_canonical_nan(mean), _canonical_nan(var))

    def output_dtypes(self):
        return (self._out_dtype(), self._out_dtype())


class MeanCombiner(_OneOutput, MeanAndVarCombiner):
    """TFT's tft.mean: outputs (mean,)."""

    _keep = slice(0, 1)


class VarCombiner(_OneOutput, MeanAndVarCombiner):
    """TFT's tft.var: outputs (var,) (population variance)."""

    _keep = slice(1, 2)
