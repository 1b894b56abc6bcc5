/* What the module (module.c) exports, one file per job. */
#ifndef UNIQCOUNT_NATIVE_H
#define UNIQCOUNT_NATIVE_H
#include <Python.h>

PyObject *decode_records(PyObject *self, PyObject *args); /* batches.c */
PyObject *scan_frames(PyObject *self, PyObject *values);  /* frames.c */

#endif
