"""Print NPY_DISABLE_CPU_FEATURES for this CPU: every SIMD group numpy dispatches to above its baseline.

`make test` runs the CPU-sensitive tests a second time with it, so a result that depends on the
instruction set (numpy's AVX2 / AVX-512 kernels give other last bits than its baseline ones) fails
on the developer's own machine, not first on a user's (docs/conventions.md, "Determinism").
Prints nothing on a CPU with nothing above the baseline.
"""

try:  # numpy >= 2
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
except ImportError:  # numpy 1.x
    from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__

print(" ".join(f for f in __cpu_dispatch__ if __cpu_features__.get(f)))
