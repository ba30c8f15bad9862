/*
 * A persistent string -> index hash table for vocabulary lookups (tft_lite/kernels/lookup.py).
 *
 * Why C: applying a vocabulary to a batch must not rebuild a hash table per call (what
 * pyarrow.compute.index_in does), nor loop over tokens in Python. The table is built once
 * when a transform graph is loaded; each lookup walks Arrow's (offsets, data) buffers of a
 * whole column in one call, with the GIL released.
 *
 * Table: open addressing with linear probing, capacity a power of two >= 2 x tokens, 16-byte
 * slots. Vocabulary tokens are mostly short (Criteo's are 8 hex digits), so a token of at most
 * 8 bytes is stored in its slot, packed into a 64-bit word: one probe touches one cache line
 * and never the token bytes. A longer token's slot stores its 64-bit hash, and the bytes are
 * compared only on a hash and length match. Batch lookups in a table of more than 256 KiB
 * run as a software pipeline (hash and prefetch LAG values ahead of probing), so the cache
 * misses of a large vocabulary overlap; a small table is probed directly. The first
 * occurrence of a duplicated token wins (vocabularies hold unique tokens anyway).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SHORT_BYTES 8
#define SMALL_TABLE 16384 /* slots: 256 KiB, within L2 */
#define LAG 32 /* values hashed and prefetched ahead of probing (a power of two) */

static inline uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

static inline uint64_t load64(const uint8_t *s) {
  uint64_t w;
  memcpy(&w, s, 8);
  return w;
}

static inline uint64_t load32(const uint8_t *s) {
  uint32_t w;
  memcpy(&w, s, 4);
  return w;
}

/* A token of at most 8 bytes as one word; with its length, this identifies it exactly
 * (overlapping loads as in wyhash: bytes 0..3 and n-4..n-1 cover every byte for n <= 8). */
static inline uint64_t pack_short(const uint8_t *s, size_t n) {
  if (n >= 4) return load32(s) | (load32(s + n - 4) << 32);
  if (n > 0) return ((uint64_t)s[0] << 16) | ((uint64_t)s[n >> 1] << 8) | s[n - 1];
  return 0;
}

/* A fast non-cryptographic hash: murmur3's finalizer over 8-byte words. */
static inline uint64_t hash_long(const uint8_t *s, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
  while (n > 8) {
    h = (h ^ mix(load64(s))) * 0x9e3779b97f4a7c15ULL;
    s += 8;
    n -= 8;
  }
  /* n is now 1..8 and the token is longer than 8 bytes: its last 8 bytes are readable. */
  return mix(h ^ mix(load64(s + n - 8) ^ ((uint64_t)n << 56)));
}

/* The probe key of a token: its packed bytes if short, else its hash; and its slot hash. */
static inline uint64_t token_key(const uint8_t *s, size_t n, uint64_t *hash) {
  if (n <= SHORT_BYTES) {
    uint64_t key = pack_short(s, n);
    /* Fibonacci hashing: one multiply; home() takes the product's high bits, which depend
     * on every bit of the key (its low bits would not). */
    *hash = (key ^ ((uint64_t)n << 60)) * 0x9e3779b97f4a7c15ULL;
    return key;
  }
  *hash = hash_long(s, n);
  return *hash;
}

typedef struct {
  uint64_t key;   /* packed bytes (len <= 8) or hash (longer) */
  int32_t index;  /* -1: empty slot */
  uint32_t len;
} Slot;

typedef struct {
  PyObject_HEAD
  Slot *slots;
  uint64_t mask;
  int shift;         /* 64 - log2(capacity): home() keeps a hash's high bits */
  char *data;        /* the tokens' bytes, back to back */
  int64_t *offsets;  /* token i is data[offsets[i]:offsets[i + 1]] */
  Py_ssize_t size;
} Lookup;

/* The first slot probed for hash h: its high bits. */
static inline uint64_t home(const Lookup *t, uint64_t h) { return h >> t->shift; }

static inline int64_t find(const Lookup *t, const uint8_t *s, size_t n, uint64_t key,
                           uint64_t h) {
  for (uint64_t i = home(t, h);; i = (i + 1) & t->mask) {
    const Slot *slot = &t->slots[i];
    if (slot->index < 0) return -1;
    if (slot->key == key && slot->len == n &&
        (n <= SHORT_BYTES || memcmp(t->data + t->offsets[slot->index], s, n) == 0))
      return slot->index;
  }
}

/* Lookup(data, offsets): offsets an int64 buffer of size + 1 token boundaries in data. */
static int lookup_init(PyObject *self_obj, PyObject *args, PyObject *kwds) {
  Lookup *self = (Lookup *)self_obj;
  Py_buffer data, offs;
  (void)kwds;
  if (!PyArg_ParseTuple(args, "y*y*", &data, &offs)) return -1;
  Py_ssize_t size = offs.len / 8 - 1;
  int rc = -1;
  if (size < 0 || size >= INT32_MAX) {
    PyErr_SetString(PyExc_ValueError, "Lookup: offsets need size + 1 entries, size < 2**31");
    goto done;
  }
  uint64_t capacity = 16;
  int shift = 60;
  while (capacity < 2 * (uint64_t)size) {
    capacity *= 2;
    shift--;
  }
  self->slots = aligned_alloc(64, sizeof(Slot) * capacity); /* no slot straddles a line */
  self->data = malloc((size_t)data.len + 1);
  self->offsets = malloc((size_t)offs.len);
  if (!self->slots || !self->data || !self->offsets) {
    PyErr_NoMemory();
    goto done;
  }
  memcpy(self->data, data.buf, (size_t)data.len);
  memcpy(self->offsets, offs.buf, (size_t)offs.len);
  self->mask = capacity - 1;
  self->shift = shift;
  self->size = size;
  for (uint64_t i = 0; i < capacity; i++) self->slots[i] = (Slot){0, -1, 0};
  for (Py_ssize_t k = 0; k < size; k++) {
    int64_t lo = self->offsets[k], hi = self->offsets[k + 1];
    if (lo < 0 || hi < lo || hi > data.len || hi - lo > (int64_t)UINT32_MAX) {
      PyErr_SetString(PyExc_ValueError, "Lookup: token offsets out of range");
      goto done;
    }
    const uint8_t *s = (const uint8_t *)self->data + lo;
    size_t n = (size_t)(hi - lo);
    uint64_t h, key = token_key(s, n, &h);
    if (find(self, s, n, key, h) >= 0) continue; /* duplicate: first one wins */
    uint64_t i = home(self, h);
    while (self->slots[i].index >= 0) i = (i + 1) & self->mask;
    self->slots[i].key = key;
    self->slots[i].len = (uint32_t)n;
    self->slots[i].index = (int32_t)k;
  }
  rc = 0;
done:
  PyBuffer_Release(&data);
  PyBuffer_Release(&offs);
  return rc;
}

static inline int64_t offset_at(const void *offsets, int width, Py_ssize_t i) {
  return width == 4 ? ((const int32_t *)offsets)[i] : ((const int64_t *)offsets)[i];
}

/* With a validity bitmap, a null value is looked up as the empty token. */
#define NULL_IS_EMPTY(valid, k) ((valid) && !(((valid)[(k) >> 3] >> ((k) & 7)) & 1))

/* Looks up `count` values; absent values get `absent`. A large table is probed as a software
 * pipeline: value i is hashed and its slot prefetched LAG values before it is probed, so
 * the cache misses overlap (the bookkeeping costs ~20 % on a table that stays in cache, which
 * is probed directly). Returns 0, or -1 on offsets out of range. */
static inline __attribute__((always_inline)) int lookup_values(
    const Lookup *table, const uint8_t *base, Py_ssize_t data_len, const void *offsets,
    int width, Py_ssize_t count, int64_t absent, int64_t *result, const uint8_t *valid,
    Py_ssize_t bit_offset) {
  /* A local copy: stores to `result` cannot alias it, so the table's fields stay in
   * registers instead of being reloaded after every store. */
  const Lookup local = *table, *t = &local;
  uint64_t keys[LAG], hashes[LAG];
  int64_t starts[LAG], sizes[LAG];
  if (t->mask < SMALL_TABLE) { /* cache-resident table: nothing to prefetch */
    for (Py_ssize_t i = 0; i < count; i++) {
      int64_t lo = offset_at(offsets, width, i), hi = offset_at(offsets, width, i + 1);
      if (lo < 0 || hi < lo || hi > data_len) return -1;
      size_t n = NULL_IS_EMPTY(valid, bit_offset + i) ? 0 : (size_t)(hi - lo);
      uint64_t h, key = token_key(base + lo, n, &h);
      int64_t index = find(t, base + lo, n, key, h);
      result[i] = index < 0 ? absent : index;
    }
    return 0;
  }
  for (Py_ssize_t i = 0; i < count + LAG; i++) {
    int j = (int)(i & (LAG - 1)); /* ring position of value i, and of value i - LAG */
    if (i >= LAG) {
      int64_t index = find(t, base + starts[j], (size_t)sizes[j], keys[j], hashes[j]);
      result[i - LAG] = index < 0 ? absent : index;
    }
    if (i < count) {
      int64_t lo = offset_at(offsets, width, i), hi = offset_at(offsets, width, i + 1);
      if (lo < 0 || hi < lo || hi > data_len) return -1;
      starts[j] = lo;
      sizes[j] = NULL_IS_EMPTY(valid, bit_offset + i) ? 0 : hi - lo;
      keys[j] = token_key(base + lo, (size_t)sizes[j], &hashes[j]);
      __builtin_prefetch(&t->slots[home(t, hashes[j])]);
    }
  }
  return 0;
}

/* lookup(data, offsets, width, absent=-1, out=None, validity=None, bit_offset=0) -> out, or
 * new bytes of int64 indices.
 *   offsets: Arrow offsets of the values (width 4 for int32, 8 for int64), count + 1.
 *   absent: the index written for values not in the vocabulary.
 *   out: optional writable buffer of count int64s to fill (the result is then `out`).
 *   validity: optional Arrow validity bitmap (value i is bit bit_offset + i): a null value is
 *     looked up as the empty token, whatever bytes its slot spans (fill_null(b"") first). */
static PyObject *lookup_lookup(PyObject *self_obj, PyObject *args) {
  Lookup *self = (Lookup *)self_obj;
  Py_buffer data, offs, outbuf = {0}, validbuf = {0};
  int width;
  long long absent = -1;
  PyObject *out_obj = Py_None, *valid_obj = Py_None;
  Py_ssize_t bit_offset = 0;
  if (!PyArg_ParseTuple(args, "y*y*i|LOOn", &data, &offs, &width, &absent, &out_obj,
                        &valid_obj, &bit_offset))
    return NULL;
  PyObject *out = NULL;
  int64_t *result;
  if (width != 4 && width != 8) {
    PyErr_SetString(PyExc_ValueError, "lookup: offset width must be 4 or 8");
    goto done;
  }
  Py_ssize_t count = offs.len / width - 1;
  if (count < 0) count = 0;
  if (out_obj == Py_None) {
    out = PyBytes_FromStringAndSize(NULL, count * 8);
    if (!out) goto done;
    result = (int64_t *)PyBytes_AS_STRING(out);
  } else {
    if (PyObject_GetBuffer(out_obj, &outbuf, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS)) goto done;
    if (outbuf.len != count * 8) {
      PyErr_SetString(PyExc_ValueError, "lookup: out must hold one int64 per value");
      goto done;
    }
    result = (int64_t *)outbuf.buf;
    Py_INCREF(out_obj);
    out = out_obj;
  }
  if (valid_obj != Py_None) {
    if (PyObject_GetBuffer(valid_obj, &validbuf, PyBUF_SIMPLE)) {
      Py_CLEAR(out);
      goto done;
    }
    if (bit_offset < 0 || (bit_offset + count + 7) / 8 > validbuf.len) {
      Py_CLEAR(out);
      PyErr_SetString(PyExc_ValueError, "lookup: validity bitmap too short");
      goto done;
    }
  }
  int bad;
  const uint8_t *valid = (const uint8_t *)validbuf.buf;
  Py_BEGIN_ALLOW_THREADS
  /* Each combination its own copy of the loop (constant width, bitmap or none). */
#define LOOKUP(w, v, off)                                                                   \
  lookup_values(self, (const uint8_t *)data.buf, data.len, offs.buf, w, count,             \
                (int64_t)absent, result, v, off)
  if (width == 4)
    bad = valid ? LOOKUP(4, valid, bit_offset) : LOOKUP(4, NULL, 0);
  else
    bad = valid ? LOOKUP(8, valid, bit_offset) : LOOKUP(8, NULL, 0);
#undef LOOKUP
  Py_END_ALLOW_THREADS
  if (bad) {
    Py_CLEAR(out);
    PyErr_SetString(PyExc_ValueError, "lookup: value offsets out of range");
  }
done:
  if (outbuf.obj) PyBuffer_Release(&outbuf);
  if (validbuf.obj) PyBuffer_Release(&validbuf);
  PyBuffer_Release(&data);
  PyBuffer_Release(&offs);
  return out;
}

/* get(token: bytes) -> int index or -1: the single-instance path, no arrays involved. */
static PyObject *lookup_get(PyObject *self_obj, PyObject *arg) {
  Lookup *self = (Lookup *)self_obj;
  char *s;
  Py_ssize_t n;
  if (PyBytes_AsStringAndSize(arg, &s, &n)) return NULL;
  uint64_t h, key = token_key((const uint8_t *)s, (size_t)n, &h);
  return PyLong_FromLongLong(find(self, (const uint8_t *)s, (size_t)n, key, h));
}

static void lookup_dealloc(PyObject *self_obj) {
  Lookup *self = (Lookup *)self_obj;
  free(self->slots);
  free(self->data);
  free(self->offsets);
  Py_TYPE(self_obj)->tp_free(self_obj);
}

static Py_ssize_t lookup_len(PyObject *self_obj) { return ((Lookup *)self_obj)->size; }

static PyMethodDef lookup_methods[] = {
    {"lookup", lookup_lookup, METH_VARARGS, "Indices of Arrow binary values (-1 if absent)."},
    {"get", lookup_get, METH_O, "Index of one bytes token (-1 if absent)."},
    {NULL, NULL, 0, NULL}};

static PySequenceMethods lookup_as_sequence = {.sq_length = lookup_len};

static PyTypeObject LookupType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tft_lite.kernels._lookup.Lookup",
    .tp_basicsize = sizeof(Lookup),
    .tp_dealloc = lookup_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Persistent bytes -> index hash table.",
    .tp_methods = lookup_methods,
    .tp_init = lookup_init,
    .tp_new = PyType_GenericNew,
    .tp_as_sequence = &lookup_as_sequence,
};

/* Inverted validity bits of items i .. i + 7 (bit k set: item i + k is null), of `count`. */
static inline unsigned null_bits(const uint8_t *bitmap, Py_ssize_t bit_offset, Py_ssize_t i,
                                 Py_ssize_t count, Py_ssize_t bitmap_len) {
  Py_ssize_t b = bit_offset + i, byte = b >> 3;
  unsigned shift = (unsigned)(b & 7), bits = bitmap[byte];
  if (shift && byte + 1 < bitmap_len) bits |= (unsigned)bitmap[byte + 1] << 8;
  unsigned nulls = ~(bits >> shift) & 0xFFu;
  if (count - i < 8) nulls &= (1u << (count - i)) - 1;
  return nulls;
}

/* fill_nulls(values, bitmap, bit_offset, default, out): out[i] = values[i] where bit
 * bit_offset + i of the Arrow validity bitmap is set, else default (one item of the same
 * size). values and out hold count items of default's size (1, 2, 4 or 8 bytes). */
static PyObject *fill_nulls(PyObject *module, PyObject *args) {
  Py_buffer vals, bits, def, out;
  Py_ssize_t bit_offset;
  (void)module;
  if (!PyArg_ParseTuple(args, "y*y*ny*w*", &vals, &bits, &bit_offset, &def, &out)) return NULL;
  PyObject *rc = NULL;
  Py_ssize_t size = def.len;
  if ((size != 1 && size != 2 && size != 4 && size != 8) || vals.len != out.len ||
      vals.len % size || bit_offset < 0 ||
      (bit_offset + vals.len / size + 7) / 8 > bits.len) {
    PyErr_SetString(PyExc_ValueError, "fill_nulls: buffer sizes disagree");
    goto done;
  }
  Py_ssize_t count = vals.len / size;
  const uint8_t *bm = (const uint8_t *)bits.buf;
  Py_BEGIN_ALLOW_THREADS
  /* Copy everything, then patch the null slots: a byte of the bitmap at a time. */
  memcpy(out.buf, vals.buf, (size_t)vals.len);
#define FILL(T)                                                                  \
  {                                                                              \
    T *o = (T *)out.buf, d;                                                      \
    memcpy(&d, def.buf, sizeof(T));                                              \
    for (Py_ssize_t i = 0; i < count; i += 8)                                    \
      for (unsigned n = null_bits(bm, bit_offset, i, count, bits.len); n; n &= n - 1) \
        o[i + __builtin_ctz(n)] = d;                                             \
  }
  if (size == 8) FILL(uint64_t) else if (size == 4) FILL(uint32_t)
  else if (size == 2) FILL(uint16_t) else FILL(uint8_t)
#undef FILL
  Py_END_ALLOW_THREADS
  rc = Py_None;
  Py_INCREF(rc);
done:
  PyBuffer_Release(&vals);
  PyBuffer_Release(&bits);
  PyBuffer_Release(&def);
  PyBuffer_Release(&out);
  return rc;
}

/* fill_nulls_float32(values, bitmap, bit_offset, default, out): out[i] = (float)values[i]
 * (int64 values) where bit bit_offset + i of the validity bitmap is set (all of them when
 * bitmap is None), else (float)default: fill_nulls then astype(float32), in one pass (the C
 * conversion is numpy's, round to nearest). */
static PyObject *fill_nulls_float32(PyObject *module, PyObject *args) {
  Py_buffer vals, out, bits = {0};
  PyObject *bits_obj;
  Py_ssize_t bit_offset;
  long long def;
  (void)module;
  if (!PyArg_ParseTuple(args, "y*OnLw*", &vals, &bits_obj, &bit_offset, &def, &out))
    return NULL;
  PyObject *rc = NULL;
  Py_ssize_t count = vals.len / 8;
  if (bits_obj != Py_None && PyObject_GetBuffer(bits_obj, &bits, PyBUF_SIMPLE)) goto done;
  if (vals.len % 8 || out.len != count * 4 || bit_offset < 0 ||
      (bits.obj && (bit_offset + count + 7) / 8 > bits.len)) {
    PyErr_SetString(PyExc_ValueError, "fill_nulls_float32: buffer sizes disagree");
    goto done;
  }
  const int64_t *v = (const int64_t *)vals.buf;
  float *o = (float *)out.buf, d = (float)def;
  const uint8_t *bm = (const uint8_t *)bits.buf;
  Py_BEGIN_ALLOW_THREADS
  for (Py_ssize_t i = 0; i < count; i++) o[i] = (float)v[i];
  if (bm)
    for (Py_ssize_t i = 0; i < count; i += 8)
      for (unsigned n = null_bits(bm, bit_offset, i, count, bits.len); n; n &= n - 1)
        o[i + __builtin_ctz(n)] = d;
  Py_END_ALLOW_THREADS
  rc = Py_None;
  Py_INCREF(rc);
done:
  if (bits.obj) PyBuffer_Release(&bits);
  PyBuffer_Release(&vals);
  PyBuffer_Release(&out);
  return rc;
}

/* nulls_empty(bitmap, bit_offset, offsets, width) -> bool: every null slot of an Arrow
 * binary array (offsets: its count + 1 offsets of `width` bytes) holds no bytes. */
static PyObject *nulls_empty(PyObject *module, PyObject *args) {
  Py_buffer bits, offs;
  Py_ssize_t bit_offset;
  int width;
  (void)module;
  if (!PyArg_ParseTuple(args, "y*ny*i", &bits, &bit_offset, &offs, &width)) return NULL;
  PyObject *rc = NULL;
  Py_ssize_t count = (width == 4 || width == 8) ? offs.len / width - 1 : -1;
  if (count < 0 || bit_offset < 0 || (bit_offset + count + 7) / 8 > bits.len) {
    PyErr_SetString(PyExc_ValueError, "nulls_empty: buffer sizes disagree");
    goto done;
  }
  const uint8_t *bm = (const uint8_t *)bits.buf;
  int ok = 1;
  Py_BEGIN_ALLOW_THREADS
  int bad = 0; /* only the null slots' offsets are compared: a byte of the bitmap at a time */
  for (Py_ssize_t i = 0; i < count && !bad; i += 8)
    for (unsigned n = null_bits(bm, bit_offset, i, count, bits.len); n; n &= n - 1) {
      Py_ssize_t k = i + __builtin_ctz(n);
      bad |= offset_at(offs.buf, width, k) != offset_at(offs.buf, width, k + 1);
    }
  ok = !bad;
  Py_END_ALLOW_THREADS
  rc = PyBool_FromLong(ok);
done:
  PyBuffer_Release(&bits);
  PyBuffer_Release(&offs);
  return rc;
}

static PyMethodDef module_methods[] = {
    {"fill_nulls", fill_nulls, METH_VARARGS, "Copy values, default where the bitmap is 0."},
    {"fill_nulls_float32", fill_nulls_float32, METH_VARARGS,
     "int64 -> float32 with nulls filled, in one pass."},
    {"nulls_empty", nulls_empty, METH_VARARGS, "Whether every null slot holds no bytes."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef lookup_module = {PyModuleDef_HEAD_INIT, "_lookup",
                                           "Vocabulary hash table.", -1, module_methods,
                                           NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__lookup(void) {
  if (PyType_Ready(&LookupType) < 0) return NULL;
  PyObject *m = PyModule_Create(&lookup_module);
  if (!m) return NULL;
  Py_INCREF(&LookupType);
  if (PyModule_AddObject(m, "Lookup", (PyObject *)&LookupType)) {
    Py_DECREF(&LookupType);
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
