"""Run Python code in a child whose numpy SIMD dispatch and glibc libm variants are restricted.

Used to check that an output does not depend on the instruction set: the same code in this
process (full dispatch) and in the child (baseline SIMD, libm without FMA) must print the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def restricted_env() -> dict[str, str]:
    feats = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "npy-restricted.py")], capture_output=True, text=True, check=True
    ).stdout.strip()
    return dict(
        os.environ,
        NPY_DISABLE_CPU_FEATURES=feats,
        GLIBC_TUNABLES="glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F,-AVX,-AVX2_Usable,-FMA_Usable,-AVX_Usable",
    )


def run_both(code: str) -> tuple[str, str]:
    """stdout of ``code`` run normally and with dispatch restricted."""
    if os.environ.get("NPY_DISABLE_CPU_FEATURES"):
        pytest.skip("this pass already runs with dispatch restricted (make test-restricted)")
    here = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=restricted_env()
    )
    return here.stdout, there.stdout
