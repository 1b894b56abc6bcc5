/* The module uniqcount_native: uniqcount's hot path in C, each function with a pure-Python twin that
   runs when this is not built (said at start). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "native.h"

static PyMethodDef methods[] = {
    {"decode_records", decode_records, METH_VARARGS, "The records of an uncompressed v2 batch body."},
    {"scan_batch", scan_batch, METH_VARARGS, "decode_records as columns, each value scanned as scan_frames does."},
    {"scan_frames", scan_frames, METH_O, "The top-level uid hash and ts of each JSON frame, or unsure."},
    {"scan_lines", scan_lines, METH_VARARGS, "The JSON lines of head + block as columns, each scanned as scan_frames does."},
    {"open_run", open_run, METH_VARARGS, "add_many's bulk: the frames of open minutes added, up to the first that is not."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "uniqcount_native", NULL, -1, methods};

PyMODINIT_FUNC PyInit_uniqcount_native(void) { return PyModule_Create(&module); }
