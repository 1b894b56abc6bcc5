"""uniqcount's compiled part, built by pip from requirements.txt (a C compiler and Python's headers
needed; without them uniqcount runs its pure-Python twin and says so at start). xxhash/ is the
xxHash library's header (BSD-2-Clause, as bundled by the xxhash package pinned in requirements.txt):
the same xxh3-64 uid hash as uniqcount/core/userset.py."""
from setuptools import Extension, setup

# optional: a machine without a compiler still installs (and runs the Python twin, said at start)
setup(ext_modules=[Extension("uniqcount_native", ["module.c", "batches.c", "frames.c", "lines.c", "minutes.c"], include_dirs=["xxhash"],
                             depends=["native.h", "xxhash/xxhash.h"], extra_compile_args=["-O2"], optional=True)])
