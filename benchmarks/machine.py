"""What every benchmark's JSON says about the machine it ran on.

Figures from different machines are only comparable with the CPU model, its vector
extensions (oneDNN picks its kernels by them: AVX2, AVX-512, AMX) and TensorFlow's oneDNN
setting beside them, so every `bench_*.json` starts with `machine_info()`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

EXTENSIONS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_model_and_flags() -> tuple[str, set[str]]:
    """The CPU's model name and feature flags from /proc/cpuinfo (Linux; else platform's)."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    return model, flags


def machine_info() -> dict:
    model, flags = cpu_model_and_flags()
    info = {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "vector_extensions": [name for name in EXTENSIONS if name in flags],
        # TensorFlow reads both at start-up: 0 turns oneDNN off (TensorFlow's own Eigen
        # kernels), ONEDNN_MAX_CPU_ISA caps the instruction set oneDNN may use.
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA", "default (all)"),
    }
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    except ImportError:
        pass
    return info
