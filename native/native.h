/* What the module (module.c) exports, one file per job. */
#ifndef UNIQCOUNT_NATIVE_H
#define UNIQCOUNT_NATIVE_H
#include <Python.h>
#include <stdint.h>

PyObject *decode_records(PyObject *self, PyObject *args); /* batches.c */
PyObject *scan_batch(PyObject *self, PyObject *args);     /* batches.c */
PyObject *scan_frames(PyObject *self, PyObject *values);  /* frames.c */
PyObject *scan_lines(PyObject *self, PyObject *args);     /* lines.c */
PyObject *open_run(PyObject *self, PyObject *args);       /* minutes.c */
/* 1 and the uid's hash and the ts of a frame the scan is sure of, else 0 (frames.c) */
int scan_frame(const unsigned char *p, size_t n, uint64_t *hash, long long *ts);

#endif
