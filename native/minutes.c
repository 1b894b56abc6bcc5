/* open_run(users, times, index, minutes, max_ts) -> the index where the run stops: the bulk of
   core/partition.py's add_many in one call. From `index` on, each frame whose minute is open (a key
   of `minutes`, an OpenMinute) and whose ts is no new maximum (<= max_ts) is added: its user to the
   minute's `users` set, one to its `frames`. The first frame that is not stops the run; Python
   decides it (a new minute, a new maximum, a late or suspect frame) and calls again. users, times:
   buffers of 64-bit ints (the scans' columns) or sequences of ints (a batch with frames parsed in
   Python). The pure-Python twin is core/minutes.py: open_run. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include "native.h"

typedef struct {
    PyObject *fast;     /* a sequence's items, or NULL for a buffer */
    Py_buffer buffer;   /* of 8-byte ints */
    Py_ssize_t length;
} Column;

static int column_open(PyObject *object, Column *c) {
    c->fast = NULL;
    if (PyObject_CheckBuffer(object) && PyObject_GetBuffer(object, &c->buffer, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) == 0) {
        if (c->buffer.itemsize == 8 && c->buffer.format != NULL && (c->buffer.format[0] == 'Q' || c->buffer.format[0] == 'q')
            && c->buffer.format[1] == '\0') {
            c->length = c->buffer.len / 8;
            return 0;
        }
        PyBuffer_Release(&c->buffer);
    }
    PyErr_Clear();
    c->fast = PySequence_Fast(object, "open_run takes buffers or sequences of ints");
    if (c->fast == NULL) return -1;
    c->length = PySequence_Fast_GET_SIZE(c->fast);
    return 0;
}

static void column_close(Column *c) {
    if (c->fast != NULL) Py_DECREF(c->fast);
    else PyBuffer_Release(&c->buffer);
}

/* Item i as a new reference (a Python int). */
static PyObject *column_item(Column *c, Py_ssize_t i, int is_unsigned) {
    if (c->fast != NULL) return Py_NewRef(PySequence_Fast_GET_ITEM(c->fast, i));
    if (is_unsigned) return PyLong_FromUnsignedLongLong(((const unsigned long long *)c->buffer.buf)[i]);
    return PyLong_FromLongLong(((const long long *)c->buffer.buf)[i]);
}

static int column_ts(Column *c, Py_ssize_t i, long long *ts) {
    if (c->fast == NULL) { *ts = ((const long long *)c->buffer.buf)[i]; return 0; }
    int overflow;
    *ts = PyLong_AsLongLongAndOverflow(PySequence_Fast_GET_ITEM(c->fast, i), &overflow);
    if (*ts == -1 && PyErr_Occurred()) return -1;
    return overflow ? 1 : 0;  /* 1: not a 64-bit int: left to Python */
}

/* minute.frames += added */
static int add_frames(PyObject *minute, Py_ssize_t added) {
    if (minute == NULL || added == 0) return 0;
    PyObject *frames = PyObject_GetAttrString(minute, "frames");
    if (frames == NULL) return -1;
    PyObject *more = PyLong_FromSsize_t(added), *sum = more ? PyNumber_Add(frames, more) : NULL;
    Py_DECREF(frames);
    Py_XDECREF(more);
    if (sum == NULL) return -1;
    int result = PyObject_SetAttrString(minute, "frames", sum);
    Py_DECREF(sum);
    return result;
}

PyObject *open_run(PyObject *self, PyObject *args) {
    PyObject *users_object, *times_object, *minutes;
    Py_ssize_t index;
    long long max_ts;
    if (!PyArg_ParseTuple(args, "OOnO!L", &users_object, &times_object, &index, &PyDict_Type, &minutes, &max_ts))
        return NULL;
    Column users, times;
    if (column_open(users_object, &users) < 0) return NULL;
    if (column_open(times_object, &times) < 0) { column_close(&users); return NULL; }
    Py_ssize_t n = users.length < times.length ? users.length : times.length, added = 0;
    int is_unsigned = users.fast == NULL && users.buffer.format[0] == 'Q';
    long long current = 0;
    PyObject *minute = NULL, *set = NULL;  /* the current minute (borrowed from `minutes`) and its users */
    int failed = 0;
    if (index < 0) index = 0;
    if (index > n) index = n;
    for (; index < n; index++) {
        long long ts;
        int odd = column_ts(&times, index, &ts);
        if (odd < 0) { failed = 1; break; }
        if (odd > 0 || ts > max_ts) break;
        long long start = ts - ((ts % 60) + 60) % 60;  /* Python's ts - ts % 60 */
        if (minute == NULL || start != current) {
            if (add_frames(minute, added) < 0) { failed = 1; minute = NULL; break; }
            added = 0;
            Py_CLEAR(set);
            PyObject *key = PyLong_FromLongLong(start);
            if (key == NULL) { failed = 1; minute = NULL; break; }
            minute = PyDict_GetItemWithError(minutes, key);
            Py_DECREF(key);
            if (minute == NULL) { failed = PyErr_Occurred() != NULL; break; }
            set = PyObject_GetAttrString(minute, "users");
            if (set == NULL || !PySet_Check(set)) {
                if (set != NULL) PyErr_SetString(PyExc_TypeError, "an open minute's users must be a set");
                failed = 1; minute = NULL; break;
            }
            current = start;
        }
        PyObject *user = column_item(&users, index, is_unsigned);
        if (user == NULL || PySet_Add(set, user) < 0) { Py_XDECREF(user); failed = 1; break; }
        Py_DECREF(user);
        added++;
    }
    if (add_frames(minute, added) < 0) failed = 1;
    Py_XDECREF(set);
    column_close(&users);
    column_close(&times);
    if (failed) return NULL;
    return PyLong_FromSsize_t(index);
}
