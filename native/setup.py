"""uniqcount's compiled part, built by pip from requirements.txt (a C compiler and Python's headers
needed; without them uniqcount runs its pure-Python twin and says so at start)."""
from setuptools import Extension, setup

# optional: a machine without a compiler still installs (and runs the Python twin, said at start)
setup(ext_modules=[Extension("uniqcount_native", ["batches.c"], extra_compile_args=["-O2"], optional=True)])
