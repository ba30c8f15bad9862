/*
 * A persistent string -> index hash table for vocabulary lookups (tft_lite/kernels/lookup.py).
 *
 * Why C: applying a vocabulary to a batch must not rebuild a hash table per call (what
 * pyarrow.compute.index_in does), nor loop over tokens in Python. The table is built once
 * when a transform graph is loaded; each lookup walks Arrow's (offsets, data) buffers of a
 * whole column in one call, with the GIL released.
 *
 * Table: open addressing with linear probing, capacity a power of two >= 2 x tokens; each slot
 * stores the token's 64-bit hash and index, so a probe compares bytes only on a hash match.
 * The first occurrence of a duplicated token wins (vocabularies hold unique tokens anyway).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

/* A fast non-cryptographic hash (8 bytes at a time, murmur3's finalizer). */
static inline uint64_t hash_bytes(const uint8_t *s, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ mix(w)) * 0x9e3779b97f4a7c15ULL;
    s += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  memcpy(&tail, s, n);
  return mix(h ^ mix(tail ^ ((uint64_t)n << 56)));
}

typedef struct {
  uint64_t hash;
  int64_t index; /* -1: empty slot */
} Slot;

typedef struct {
  PyObject_HEAD
  Slot *slots;
  uint64_t mask;
  char *data;        /* the tokens' bytes, back to back */
  int64_t *offsets;  /* token i is data[offsets[i]:offsets[i + 1]] */
  Py_ssize_t size;
} Lookup;

static int64_t find(const Lookup *t, const uint8_t *s, size_t n) {
  uint64_t h = hash_bytes(s, n);
  for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
    const Slot *slot = &t->slots[i];
    if (slot->index < 0) return -1;
    if (slot->hash == h) {
      int64_t lo = t->offsets[slot->index], hi = t->offsets[slot->index + 1];
      if ((size_t)(hi - lo) == n && memcmp(t->data + lo, s, n) == 0) return slot->index;
    }
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
  if (size < 0) {
    PyErr_SetString(PyExc_ValueError, "Lookup: offsets need size + 1 entries");
    goto done;
  }
  uint64_t capacity = 16;
  while (capacity < 2 * (uint64_t)size) capacity *= 2;
  self->slots = malloc(sizeof(Slot) * capacity);
  self->data = malloc((size_t)data.len + 1);
  self->offsets = malloc((size_t)offs.len);
  if (!self->slots || !self->data || !self->offsets) {
    PyErr_NoMemory();
    goto done;
  }
  memcpy(self->data, data.buf, (size_t)data.len);
  memcpy(self->offsets, offs.buf, (size_t)offs.len);
  self->mask = capacity - 1;
  self->size = size;
  for (uint64_t i = 0; i < capacity; i++) self->slots[i].index = -1;
  for (Py_ssize_t k = 0; k < size; k++) {
    int64_t lo = self->offsets[k], hi = self->offsets[k + 1];
    if (lo < 0 || hi < lo || hi > data.len) {
      PyErr_SetString(PyExc_ValueError, "Lookup: token offsets out of range");
      goto done;
    }
    const uint8_t *s = (const uint8_t *)self->data + lo;
    if (find(self, s, (size_t)(hi - lo)) >= 0) continue; /* duplicate: first one wins */
    uint64_t h = hash_bytes(s, (size_t)(hi - lo));
    uint64_t i = h & self->mask;
    while (self->slots[i].index >= 0) i = (i + 1) & self->mask;
    self->slots[i].hash = h;
    self->slots[i].index = k;
  }
  rc = 0;
done:
  PyBuffer_Release(&data);
  PyBuffer_Release(&offs);
  return rc;
}

/* lookup(data, offsets, width) -> bytes of int64 indices (-1 when absent).
 *   offsets: Arrow offsets of the values (width 4 for int32, 8 for int64), count + 1. */
static PyObject *lookup_lookup(PyObject *self_obj, PyObject *args) {
  Lookup *self = (Lookup *)self_obj;
  Py_buffer data, offs;
  int width;
  if (!PyArg_ParseTuple(args, "y*y*i", &data, &offs, &width)) return NULL;
  PyObject *out = NULL;
  if (width != 4 && width != 8) {
    PyErr_SetString(PyExc_ValueError, "lookup: offset width must be 4 or 8");
    goto done;
  }
  Py_ssize_t count = offs.len / width - 1;
  if (count < 0) count = 0;
  out = PyBytes_FromStringAndSize(NULL, count * 8);
  if (!out) goto done;
  int64_t *result = (int64_t *)PyBytes_AS_STRING(out);
  const uint8_t *base = (const uint8_t *)data.buf;
  int bad = 0;
  Py_BEGIN_ALLOW_THREADS
  for (Py_ssize_t i = 0; i < count; i++) {
    int64_t lo, hi;
    if (width == 4) {
      lo = ((const int32_t *)offs.buf)[i];
      hi = ((const int32_t *)offs.buf)[i + 1];
    } else {
      lo = ((const int64_t *)offs.buf)[i];
      hi = ((const int64_t *)offs.buf)[i + 1];
    }
    if (lo < 0 || hi < lo || hi > data.len) {
      bad = 1;
      break;
    }
    result[i] = find(self, base + lo, (size_t)(hi - lo));
  }
  Py_END_ALLOW_THREADS
  if (bad) {
    Py_CLEAR(out);
    PyErr_SetString(PyExc_ValueError, "lookup: value offsets out of range");
  }
done:
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
  return PyLong_FromLongLong(find(self, (const uint8_t *)s, (size_t)n));
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

static struct PyModuleDef lookup_module = {PyModuleDef_HEAD_INIT, "_lookup",
                                           "Vocabulary hash table.", -1, NULL,
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
