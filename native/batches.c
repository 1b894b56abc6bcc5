/* The records of an uncompressed Kafka v2 record batch in one C call (uniqcount/kafka_client/
   record_batches.py: decode_records is the pure-Python twin, and the fallback when this module is
   not built). Same fields, same slices (memoryviews of the batch's buffer), same verdicts: a
   malformed record raises ValueError with the twin's message, which the caller turns into
   kafka-python's CorruptRecordError. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include "native.h"

/* The raw (still zigzag-encoded) varint at *pos; -1 when it runs past the end or past 64 bits. */
static int varint(const unsigned char *b, Py_ssize_t size, Py_ssize_t *pos, unsigned long long *out) {
    unsigned long long value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= size) return -1;
        unsigned char c = b[(*pos)++];
        value |= (unsigned long long)(c & 0x7F) << shift;
        if (c < 0x80) { *out = value; return 0; }
    }
    return -1;
}

static long long zigzag(unsigned long long v) { return (long long)(v >> 1) ^ -(long long)(v & 1); }

static PyObject *corrupt(const char *message, Py_ssize_t at) {
    PyErr_Format(PyExc_ValueError, message, at);
    return NULL;
}

static PyObject *slice(PyObject *view, Py_ssize_t start, Py_ssize_t length) {
    return PySequence_GetSlice(view, start, start + length);
}

/* One record's fields: where its key and value are (length -1: null), its offset, where it ends. */
typedef struct {
    long long offset;
    Py_ssize_t key, key_length, value, value_length, end;
} Fields;

/* The record at *pos into *f, *pos moved past it; NULL, or the twin's message (a %zd: *pos). */
static const char *next_record(const unsigned char *b, Py_ssize_t size, Py_ssize_t *pos, long long base_offset,
                               Fields *f) {
    unsigned long long raw;
    if (varint(b, size, pos, &raw) < 0) return "record at byte %zd ends inside a record";
    if ((raw & 1) || (raw >> 1) > (unsigned long long)(size - *pos)) return "record at byte %zd has a bad length";
    f->end = *pos + (Py_ssize_t)(raw >> 1);
    *pos += 1;  /* attributes: unused */
    while (*pos < size && (b[*pos] & 0x80)) (*pos)++;  /* timestamp delta: unused */
    *pos += 1;
    if (varint(b, size, pos, &raw) < 0) return "record at byte %zd ends inside a record";
    f->offset = base_offset + zigzag(raw);
    if (*pos >= size) return "record at byte %zd ends inside a record";
    f->key = 0;
    f->key_length = -1;
    if (b[*pos] == 1) {  /* zigzag -1: no key */
        *pos += 1;
    } else {
        if (varint(b, size, pos, &raw) < 0) return "record at byte %zd ends inside a record";
        long long key_length = zigzag(raw);
        if (key_length >= 0) {
            if (key_length > f->end - *pos) return "record key at byte %zd runs past its record";
            f->key = *pos;
            f->key_length = (Py_ssize_t)key_length;
            *pos += (Py_ssize_t)key_length;
        }
    }
    if (varint(b, size, pos, &raw) < 0) return "record at byte %zd ends inside a record";
    long long value_length = zigzag(raw);
    if (value_length > f->end - *pos) return "record value at byte %zd runs past its record";
    f->value = *pos;
    f->value_length = value_length < 0 ? -1 : (Py_ssize_t)value_length;
    *pos = f->end;
    return NULL;
}

/* decode_records(view, pos, count, base_offset, topic, partition, record_type) -> list */
PyObject *decode_records(PyObject *self, PyObject *args) {
    PyObject *view, *topic, *partition, *base;
    Py_ssize_t pos, count;
    PyTypeObject *record_type;
    if (!PyArg_ParseTuple(args, "OnnOOOO!", &view, &pos, &count, &base, &topic, &partition, &PyType_Type,
                          &record_type))
        return NULL;
    long long base_offset = PyLong_AsLongLong(base);
    if (base_offset == -1 && PyErr_Occurred()) return NULL;
    Py_buffer buffer;
    if (PyObject_GetBuffer(view, &buffer, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *b = buffer.buf;
    Py_ssize_t size = buffer.len;
    PyObject *out = PyList_New(0);
    if (out == NULL) goto fail;
    for (Py_ssize_t n = 0; n < count; n++) {
        Fields f;
        const char *error = next_record(b, size, &pos, base_offset, &f);
        if (error != NULL) { corrupt(error, pos); goto fail; }
        PyObject *key = f.key_length < 0 ? Py_NewRef(Py_None) : slice(view, f.key, f.key_length);
        PyObject *value = f.value_length < 0 ? Py_NewRef(Py_None) : slice(view, f.value, f.value_length);
        PyObject *number = PyLong_FromLongLong(f.offset);
        PyObject *record = record_type->tp_alloc(record_type, 5);
        if (key == NULL || value == NULL || number == NULL || record == NULL) {
            Py_XDECREF(key); Py_XDECREF(value); Py_XDECREF(number); Py_XDECREF(record);
            goto fail;
        }
        PyTuple_SET_ITEM(record, 0, Py_NewRef(topic));
        PyTuple_SET_ITEM(record, 1, Py_NewRef(partition));
        PyTuple_SET_ITEM(record, 2, number);
        PyTuple_SET_ITEM(record, 3, key);
        PyTuple_SET_ITEM(record, 4, value);
        int appended = PyList_Append(out, record);
        Py_DECREF(record);
        if (appended < 0) goto fail;
    }
    if (pos != size) {
        corrupt("%zd bytes left after the batch's records", size - pos);
        goto fail;
    }
    PyBuffer_Release(&buffer);
    return out;
fail:
    Py_XDECREF(out);
    PyBuffer_Release(&buffer);
    return NULL;
}

/* scan_batch(view, pos, count, base_offset) -> (offsets, keys, values, hashes, times, unsure, value_bytes):
   the same walk as decode_records, but columns instead of Records, and each value scanned as
   scan_frames does (frames.c). offsets, hashes, times: bytes of 64-bit ints a record; keys, values:
   bytes of two 64-bit ints a record (start in the view, length; -1: null); unsure: the indices of
   the records the scan left to Python (a null value among them). It lets go of the GIL while it
   walks and scans: nothing in between touches a Python object. */
PyObject *scan_batch(PyObject *self, PyObject *args) {
    PyObject *view, *base;
    Py_ssize_t pos, count;
    if (!PyArg_ParseTuple(args, "OnnO", &view, &pos, &count, &base)) return NULL;
    long long base_offset = PyLong_AsLongLong(base);
    if (base_offset == -1 && PyErr_Occurred()) return NULL;
    if (count < 0) count = 0;
    Py_buffer buffer;
    if (PyObject_GetBuffer(view, &buffer, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *b = buffer.buf;
    Py_ssize_t size = buffer.len;
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, count * 8), *keys = PyBytes_FromStringAndSize(NULL, count * 16),
             *values = PyBytes_FromStringAndSize(NULL, count * 16), *hashes = PyBytes_FromStringAndSize(NULL, count * 8),
             *times = PyBytes_FromStringAndSize(NULL, count * 8), *unsure = PyList_New(0);
    Py_ssize_t *unsure_at = PyMem_RawMalloc((size_t)(count > 0 ? count : 1) * sizeof(Py_ssize_t)), unsure_count = 0;
    if (!offsets || !keys || !values || !hashes || !times || !unsure || !unsure_at) {
        if (!unsure_at) PyErr_NoMemory();
        goto fail;
    }
    long long *offset_out = (long long *)PyBytes_AS_STRING(offsets), *key_out = (long long *)PyBytes_AS_STRING(keys),
              *value_out = (long long *)PyBytes_AS_STRING(values), *ts_out = (long long *)PyBytes_AS_STRING(times);
    uint64_t *hash_out = (uint64_t *)PyBytes_AS_STRING(hashes);
    long long value_bytes = 0;
    const char *error = NULL;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t n = 0; n < count; n++) {
        Fields f;
        error = next_record(b, size, &pos, base_offset, &f);
        if (error != NULL) break;
        offset_out[n] = f.offset;
        key_out[2 * n] = f.key;
        key_out[2 * n + 1] = f.key_length;
        value_out[2 * n] = f.value_length < 0 ? 0 : f.value;
        value_out[2 * n + 1] = f.value_length;
        hash_out[n] = 0;
        ts_out[n] = 0;
        if (f.value_length >= 0) value_bytes += f.value_length;
        if (f.value_length < 0 || !scan_frame(b + f.value, (size_t)f.value_length, &hash_out[n], &ts_out[n])) {
            hash_out[n] = 0;
            ts_out[n] = 0;
            unsure_at[unsure_count++] = n;
        }
    }
    Py_END_ALLOW_THREADS
    if (error != NULL) { corrupt(error, pos); goto fail; }
    if (pos != size) {
        corrupt("%zd bytes left after the batch's records", size - pos);
        goto fail;
    }
    for (Py_ssize_t i = 0; i < unsure_count; i++) {
        PyObject *index = PyLong_FromSsize_t(unsure_at[i]);
        if (index == NULL || PyList_Append(unsure, index) < 0) { Py_XDECREF(index); goto fail; }
        Py_DECREF(index);
    }
    PyMem_RawFree(unsure_at);
    PyBuffer_Release(&buffer);
    return Py_BuildValue("(NNNNNNL)", offsets, keys, values, hashes, times, unsure, value_bytes);
fail:
    Py_XDECREF(offsets); Py_XDECREF(keys); Py_XDECREF(values); Py_XDECREF(hashes); Py_XDECREF(times);
    Py_XDECREF(unsure);
    PyMem_RawFree(unsure_at);
    PyBuffer_Release(&buffer);
    return NULL;
}
