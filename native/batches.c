/* The records of an uncompressed Kafka v2 record batch in one C call (uniqcount/kafka_client/
   record_batches.py: decode_records is the pure-Python twin, and the fallback when this module is
   not built). Same fields, same slices (memoryviews of the batch's buffer), same verdicts: a
   malformed record raises ValueError with the twin's message, which the caller turns into
   kafka-python's CorruptRecordError. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
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
        unsigned long long raw;
        if (varint(b, size, &pos, &raw) < 0) { corrupt("record at byte %zd ends inside a record", pos); goto fail; }
        if ((raw & 1) || (raw >> 1) > (unsigned long long)(size - pos)) {
            corrupt("record at byte %zd has a bad length", pos); goto fail;
        }
        Py_ssize_t end = pos + (Py_ssize_t)(raw >> 1);
        pos += 1;  /* attributes: unused */
        while (pos < size && (b[pos] & 0x80)) pos++;  /* timestamp delta: unused */
        pos += 1;
        if (varint(b, size, &pos, &raw) < 0) { corrupt("record at byte %zd ends inside a record", pos); goto fail; }
        long long offset = base_offset + zigzag(raw);
        PyObject *key;
        if (pos >= size) { corrupt("record at byte %zd ends inside a record", pos); goto fail; }
        if (b[pos] == 1) {  /* zigzag -1: no key */
            key = Py_NewRef(Py_None);
            pos += 1;
        } else {
            if (varint(b, size, &pos, &raw) < 0) { corrupt("record at byte %zd ends inside a record", pos); goto fail; }
            long long key_length = zigzag(raw);
            if (key_length < 0) {
                key = Py_NewRef(Py_None);
            } else {
                if (key_length > end - pos) { corrupt("record key at byte %zd runs past its record", pos); goto fail; }
                key = slice(view, pos, (Py_ssize_t)key_length);
                if (key == NULL) goto fail;
                pos += (Py_ssize_t)key_length;
            }
        }
        if (varint(b, size, &pos, &raw) < 0) {
            Py_DECREF(key);
            corrupt("record at byte %zd ends inside a record", pos); goto fail;
        }
        long long value_length = zigzag(raw);
        if (value_length > end - pos) {
            Py_DECREF(key);
            corrupt("record value at byte %zd runs past its record", pos); goto fail;
        }
        PyObject *value = value_length < 0 ? Py_NewRef(Py_None) : slice(view, pos, (Py_ssize_t)value_length);
        PyObject *number = PyLong_FromLongLong(offset);
        PyObject *record = record_type->tp_alloc(record_type, 5);
        if (value == NULL || number == NULL || record == NULL) {
            Py_DECREF(key); Py_XDECREF(value); Py_XDECREF(number); Py_XDECREF(record);
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
        pos = end;
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
