/* scan_lines(head, block) -> (values, hashes, times, unsure, blank, value_bytes, first): the whole
   JSON lines of head + block as columns, each line scanned as scan_frames does (frames.c), without
   joining the two: head (file mode: the end of the block before, cut inside a line) has no '\n', so
   only the first line spans both, and only it is copied (into `first`, bytes; None without a head).
   Every line but perhaps the input's last ends with '\n'. A line is what sources.py's Python twin
   makes of it: its '\n' cut, then every '\r' at its end; a line that is then empty or only
   whitespace (bytes.isspace) is blank: counted, not kept. values: bytes of two 64-bit ints a kept
   line (start in block, or -1 for `first`; length); hashes, times: bytes of a 64-bit int a kept
   line (0 for an unsure one); unsure: the indices of the kept lines the scan left to Python. It
   lets go of the GIL while it walks and scans. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "native.h"

static inline int is_space(unsigned char b) {  /* bytes.isspace */
    return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\x0b' || b == '\x0c';
}

typedef struct {
    long long *values, *times;
    uint64_t *hashes;
    Py_ssize_t *unsure_at, kept, unsure_count, blank;
    long long value_bytes;
} Columns;

/* One line (its '\n' already cut), kept at `start` or counted as blank. */
static void take_line(Columns *c, const unsigned char *line, size_t end, long long start) {
    while (end > 0 && line[end - 1] == '\r') end--;
    size_t i = 0;
    while (i < end && is_space(line[i])) i++;
    if (i == end) {
        c->blank++;
        return;
    }
    Py_ssize_t k = c->kept++;
    c->values[2 * k] = start;
    c->values[2 * k + 1] = (long long)end;
    c->value_bytes += (long long)end;
    if (!scan_frame(line, end, &c->hashes[k], &c->times[k])) {
        c->hashes[k] = 0;
        c->times[k] = 0;
        c->unsure_at[c->unsure_count++] = k;
    }
}

PyObject *scan_lines(PyObject *self, PyObject *args) {
    PyObject *head_object, *block_object, *values = NULL, *hashes = NULL, *times = NULL, *unsure = NULL,
             *first = NULL;
    if (!PyArg_ParseTuple(args, "OO", &head_object, &block_object)) return NULL;
    Py_buffer head, block;
    if (PyObject_GetBuffer(head_object, &head, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(block_object, &block, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&head); return NULL; }
    const unsigned char *b = block.buf;
    size_t size = (size_t)block.len, most = 1, start = 0;
    for (const unsigned char *p = b; (p = memchr(p, '\n', size - (size_t)(p - b))) != NULL; p++) most++;
    Columns c = {0};
    values = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(most * 16));
    hashes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(most * 8));
    times = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(most * 8));
    c.unsure_at = PyMem_RawMalloc(most * sizeof(Py_ssize_t));
    if (!values || !hashes || !times || !c.unsure_at) {
        if (!c.unsure_at) PyErr_NoMemory();
        goto fail;
    }
    c.values = (long long *)PyBytes_AS_STRING(values);
    c.times = (long long *)PyBytes_AS_STRING(times);
    c.hashes = (uint64_t *)PyBytes_AS_STRING(hashes);
    if (head.len > 0) {  /* the line that spans head and block, copied whole */
        const unsigned char *newline = memchr(b, '\n', size);
        size_t end = newline ? (size_t)(newline - b) : size;
        first = PyBytes_FromStringAndSize(NULL, head.len + (Py_ssize_t)end);
        if (first == NULL) goto fail;
        memcpy(PyBytes_AS_STRING(first), head.buf, (size_t)head.len);
        memcpy(PyBytes_AS_STRING(first) + head.len, b, end);
        take_line(&c, (const unsigned char *)PyBytes_AS_STRING(first), (size_t)head.len + end, -1);
        start = newline ? end + 1 : size;
    }
    Py_BEGIN_ALLOW_THREADS
    while (start < size) {
        const unsigned char *newline = memchr(b + start, '\n', size - start);
        size_t end = newline ? (size_t)(newline - b) : size;
        take_line(&c, b + start, end - start, (long long)start);
        start = newline ? end + 1 : size;
    }
    Py_END_ALLOW_THREADS
    unsure = PyList_New(c.unsure_count);
    if (unsure == NULL) goto fail;
    for (Py_ssize_t i = 0; i < c.unsure_count; i++) {
        PyObject *index = PyLong_FromSsize_t(c.unsure_at[i]);
        if (index == NULL) goto fail;
        PyList_SET_ITEM(unsure, i, index);
    }
    if (_PyBytes_Resize(&values, c.kept * 16) < 0 || _PyBytes_Resize(&hashes, c.kept * 8) < 0 ||
        _PyBytes_Resize(&times, c.kept * 8) < 0) goto fail;
    PyMem_RawFree(c.unsure_at);
    PyBuffer_Release(&head);
    PyBuffer_Release(&block);
    if (first == NULL) first = Py_NewRef(Py_None);
    return Py_BuildValue("(NNNNnLN)", values, hashes, times, unsure, c.blank, c.value_bytes, first);
fail:
    Py_XDECREF(values); Py_XDECREF(hashes); Py_XDECREF(times); Py_XDECREF(unsure); Py_XDECREF(first);
    PyMem_RawFree(c.unsure_at);
    PyBuffer_Release(&head);
    PyBuffer_Release(&block);
    return NULL;
}
