/* The top-level uid and ts of many JSON frames in one C call (uniqcount/core/frames.py: parse_batch).

   A frame is *sure* when it is an RFC 8259 object that msgspec reads too, with exactly one top-level
   "uid" (a non-empty string without escapes, valid UTF-8) and one top-level "ts" (a plain integer,
   or a string of digits, in [0, MAX_TS)), and no top-level key with an escape (it could spell uid or
   ts). Of a sure frame it gives the uid's xxh3-64 hash (what core/userset.py's uid_hash gives) and
   the ts. Anything else is *unsure* and left to frames.py's msgspec path, which gives the verdict and
   the reason: so the two paths cannot disagree on what a frame is, only on how fast it is read.

   As msgspec does, the strings it skips are not checked for UTF-8 (a uid is); escapes are, and a
   \u escape of a surrogate half is unsure. Nesting has no limit in msgspec; past MAX_DEPTH a frame is
   unsure. Strings are skipped 16 bytes at a time with SSE2 where the machine has it. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#define XXH_INLINE_ALL
#include "xxhash.h"
#include "native.h"

#define MAX_TS 253402300800LL /* frames.py: MAX_TS */
#define MAX_DEPTH 1024

typedef struct {
    const unsigned char *p;
    size_t n, pos;
} Cursor;

static inline void skip_space(Cursor *c) {
    while (c->pos < c->n) {
        unsigned char b = c->p[c->pos];
        if (b != ' ' && b != '\n' && b != '\r' && b != '\t') return;
        c->pos++;
    }
}

static inline int hex(unsigned char b) {
    if (b >= '0' && b <= '9') return b - '0';
    b |= 0x20;
    return b >= 'a' && b <= 'f' ? b - 'a' + 10 : -1;
}

/* The position of the next '"', '\\' or control byte at or after pos (n when none). */
static inline size_t next_special(const unsigned char *p, size_t n, size_t pos) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), control = _mm_set1_epi8(0x1F);
    while (pos + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + pos));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                   _mm_cmpeq_epi8(_mm_max_epu8(v, control), control));
        int mask = _mm_movemask_epi8(hit);
        if (mask) return pos + (size_t)__builtin_ctz((unsigned)mask);
        pos += 16;
    }
#endif
    for (; pos < n; pos++) {
        unsigned char b = p[pos];
        if (b == '"' || b == '\\' || b < 0x20) return pos;
    }
    return n;
}

/* Past a string whose opening quote is at pos. 1: done (*escaped says if it held an escape), 0: not
   JSON or unsure. */
static int skip_string(Cursor *c, int *escaped) {
    size_t pos = c->pos + 1;
    *escaped = 0;
    for (;;) {
        pos = next_special(c->p, c->n, pos);
        if (pos >= c->n) return 0;
        unsigned char b = c->p[pos];
        if (b == '"') { c->pos = pos + 1; return 1; }
        if (b < 0x20) return 0;
        *escaped = 1;  /* a backslash */
        if (pos + 1 >= c->n) return 0;
        b = c->p[pos + 1];
        if (b == 'u') {
            if (pos + 6 > c->n) return 0;
            int code = 0;
            for (int i = 2; i < 6; i++) {
                int digit = hex(c->p[pos + i]);
                if (digit < 0) return 0;
                code = code << 4 | digit;
            }
            if (code >= 0xD800 && code <= 0xDFFF) return 0;  /* surrogate halves: msgspec pairs them */
            pos += 6;
        } else if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' || b == 't') {
            pos += 2;
        } else {
            return 0;
        }
    }
}

static inline int is_digit(unsigned char b) { return b >= '0' && b <= '9'; }

static int skip_number(Cursor *c) {
    const unsigned char *p = c->p;
    size_t pos = c->pos, n = c->n;
    if (pos < n && p[pos] == '-') pos++;
    if (pos >= n) return 0;
    if (p[pos] == '0') pos++;
    else if (is_digit(p[pos])) while (pos < n && is_digit(p[pos])) pos++;
    else return 0;
    if (pos < n && p[pos] == '.') {
        pos++;
        if (pos >= n || !is_digit(p[pos])) return 0;
        while (pos < n && is_digit(p[pos])) pos++;
    }
    if (pos < n && (p[pos] == 'e' || p[pos] == 'E')) {
        pos++;
        if (pos < n && (p[pos] == '+' || p[pos] == '-')) pos++;
        if (pos >= n || !is_digit(p[pos])) return 0;
        while (pos < n && is_digit(p[pos])) pos++;
    }
    c->pos = pos;
    return 1;
}

static int skip_literal(Cursor *c, const char *word, size_t length) {
    if (c->n - c->pos < length || memcmp(c->p + c->pos, word, length) != 0) return 0;
    c->pos += length;
    return 1;
}

/* A key and its colon, the cursor at the key's opening quote; *end: the key's closing quote. */
static int skip_key(Cursor *c, int *escaped, size_t *end) {
    if (c->pos >= c->n || c->p[c->pos] != '"' || !skip_string(c, escaped)) return 0;
    *end = c->pos - 1;
    skip_space(c);
    if (c->pos >= c->n || c->p[c->pos] != ':') return 0;
    c->pos++;
    skip_space(c);
    return 1;
}

/* Past one JSON value of any depth (no recursion: a stack of open containers). */
static int skip_value(Cursor *c) {
    char stack[MAX_DEPTH];  /* '{' or '[' */
    int depth = 0, escaped;
    size_t end;
    for (;;) {
        if (c->pos >= c->n) return 0;
        unsigned char b = c->p[c->pos];
        int ok;
        if (b == '"') ok = skip_string(c, &escaped);
        else if (b == '{' || b == '[') {
            if (depth == MAX_DEPTH) return 0;
            c->pos++;
            skip_space(c);
            if (c->pos < c->n && c->p[c->pos] == (b == '{' ? '}' : ']')) {
                c->pos++;
                ok = 1;
            } else {
                stack[depth++] = (char)b;
                if (b == '{' && !skip_key(c, &escaped, &end)) return 0;
                continue;
            }
        } else if (b == 't') ok = skip_literal(c, "true", 4);
        else if (b == 'f') ok = skip_literal(c, "false", 5);
        else if (b == 'n') ok = skip_literal(c, "null", 4);
        else ok = skip_number(c);
        if (!ok) return 0;
        for (;;) {  /* after a value: the next member, or the ends of containers */
            if (depth == 0) return 1;
            skip_space(c);
            if (c->pos >= c->n) return 0;
            b = c->p[c->pos++];
            if (b == ',') {
                skip_space(c);
                if (stack[depth - 1] == '{' && !skip_key(c, &escaped, &end)) return 0;
                break;
            }
            if (b != (stack[depth - 1] == '{' ? '}' : ']')) return 0;
            depth--;
        }
    }
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF): what Python decodes. */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        if (b < 0x80) { i++; continue; }
        size_t extra;
        unsigned char low = 0x80, high = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) extra = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            extra = 2;
            if (b == 0xE0) low = 0xA0;
            if (b == 0xED) high = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            extra = 3;
            if (b == 0xF0) low = 0x90;
            if (b == 0xF4) high = 0x8F;
        } else return 0;
        if (i + extra >= n) return 0;
        if (s[i + 1] < low || s[i + 1] > high) return 0;
        for (size_t k = 2; k <= extra; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += extra + 1;
    }
    return 1;
}

/* A ts of 1 to 12 digits (no sign, fraction or exponent) in [0, MAX_TS); -1 otherwise. A number may
   not start with 0 unless it is 0; a string may (Python's int() reads "007" as 7). */
static long long digits(const unsigned char *s, size_t n, int leading_zero_ok) {
    if (n == 0 || n > 12 || (!leading_zero_ok && n > 1 && s[0] == '0')) return -1;
    long long value = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i])) return -1;
        value = value * 10 + (s[i] - '0');
    }
    return value < MAX_TS ? value : -1;
}

/* The uid's string value at the cursor: its hash, or 0 (unsure). */
static int read_uid(Cursor *c, uint64_t *hash) {
    int escaped;
    size_t start = c->pos;
    if (start >= c->n || c->p[start] != '"' || !skip_string(c, &escaped) || escaped) return 0;
    const unsigned char *s = c->p + start + 1;
    size_t length = c->pos - start - 2;
    if (length == 0 || !valid_utf8(s, length)) return 0;
    *hash = XXH3_64bits(s, length);
    return 1;
}

/* The ts value at the cursor, or 0 (unsure). */
static int read_ts(Cursor *c, long long *ts) {
    size_t start = c->pos;
    if (start >= c->n) return 0;
    int escaped;
    if (c->p[start] == '"') {
        if (!skip_string(c, &escaped) || escaped) return 0;
        *ts = digits(c->p + start + 1, c->pos - start - 2, 1);
    } else {
        if (!skip_number(c)) return 0;
        *ts = digits(c->p + start, c->pos - start, 0);
    }
    return *ts >= 0;
}

/* 1 and (hash, ts) when the frame is sure, else 0. */
int scan_frame(const unsigned char *p, size_t n, uint64_t *hash, long long *ts) {
    Cursor c = {p, n, 0};
    int has_uid = 0, has_ts = 0, escaped;
    skip_space(&c);
    if (c.pos >= n || p[c.pos] != '{') return 0;
    c.pos++;
    skip_space(&c);
    for (;;) {
        size_t key = c.pos + 1, end;
        if (!skip_key(&c, &escaped, &end) || escaped) return 0;
        size_t key_length = end - key;
        if (key_length == 3 && memcmp(p + key, "uid", 3) == 0) {
            if (has_uid++ || !read_uid(&c, hash)) return 0;
        } else if (key_length == 2 && memcmp(p + key, "ts", 2) == 0) {
            if (has_ts++ || !read_ts(&c, ts)) return 0;
        } else if (!skip_value(&c)) {
            return 0;
        }
        skip_space(&c);
        if (c.pos >= n) return 0;
        unsigned char b = p[c.pos++];
        if (b == '}') break;
        if (b != ',') return 0;
        skip_space(&c);
    }
    skip_space(&c);
    return c.pos == n && has_uid && has_ts;
}

/* scan_frames(values) -> (hashes: bytes of uint64, times: bytes of int64, unsure: list of indices).
   hashes[i] and times[i] are 0 for an unsure frame i; a value that is not bytes-like is unsure. */
PyObject *scan_frames(PyObject *self, PyObject *values) {
    PyObject *seq = PySequence_Fast(values, "scan_frames takes a sequence of bytes-like values");
    if (seq == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject *hashes = PyBytes_FromStringAndSize(NULL, count * 8);
    PyObject *times = PyBytes_FromStringAndSize(NULL, count * 8);
    PyObject *unsure = PyList_New(0);
    if (hashes == NULL || times == NULL || unsure == NULL) goto fail;
    uint64_t *hash_out = (uint64_t *)PyBytes_AS_STRING(hashes);
    long long *ts_out = (long long *)PyBytes_AS_STRING(times);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_buffer view;
        int sure = 0;
        hash_out[i] = 0;
        ts_out[i] = 0;
        if (PyObject_CheckBuffer(items[i])) {
            if (PyObject_GetBuffer(items[i], &view, PyBUF_SIMPLE) < 0) goto fail;
            sure = scan_frame(view.buf, (size_t)view.len, &hash_out[i], &ts_out[i]);
            PyBuffer_Release(&view);
        }
        if (!sure) {
            hash_out[i] = 0;
            ts_out[i] = 0;
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(unsure, index) < 0) { Py_XDECREF(index); goto fail; }
            Py_DECREF(index);
        }
    }
    Py_DECREF(seq);
    return Py_BuildValue("(NNN)", hashes, times, unsure);
fail:
    Py_DECREF(seq);
    Py_XDECREF(hashes);
    Py_XDECREF(times);
    Py_XDECREF(unsure);
    return NULL;
}
