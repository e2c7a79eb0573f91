"""What every benchmark's JSON says about the machine it ran on, and the code it measured.

Figures from different machines are only comparable with the CPU model, its vector
extensions (oneDNN picks its kernels by them: AVX2, AVX-512, AMX) and TensorFlow's oneDNN
setting beside them, and figures from different commits only with the commit beside them,
so every `bench_*.json` starts with `machine_info()`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# Every benchmark imports this module before TensorFlow loads. The workflow's jobs import
# avdistill first, which turns oneDNN on for every x86 CPU (src/avdistill/__init__.py);
# without this line a benchmark on an AVX2-only CPU measured TensorFlow's Eigen kernels,
# which no job runs.
import avdistill  # noqa: F401
from avdistill.provenance import git_state

EXTENSIONS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_model_and_flags() -> tuple[str, set[str], str | None]:
    """The CPU's model name, feature flags and "family/model" numbers from /proc/cpuinfo
    (Linux; else platform's name). Virtual machines often name only the vendor line ("AMD
    EPYC" for Zen 3 and Zen 4 alike): the family and model numbers tell them apart (AMD
    family 25 model 1 is a Zen 3 EPYC, Milan; model 17 a Zen 4 EPYC, Genoa)."""
    model, flags = platform.processor() or platform.machine(), set()
    numbers: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
            elif key in ("cpu family", "model") and key not in numbers:
                numbers[key] = value.strip()
    family_model = f"{numbers['cpu family']}/{numbers['model']}" if len(numbers) == 2 else None
    return model, flags, family_model


def machine_info() -> dict:
    model, flags, family_model = cpu_model_and_flags()
    info = {
        "cpu_model": model,
        "cpu_family_model": family_model,
        "cpus": os.cpu_count(),
        "vector_extensions": [name for name in EXTENSIONS if name in flags],
        # TensorFlow reads both at start-up: 0 turns oneDNN off (TensorFlow's own Eigen
        # kernels), ONEDNN_MAX_CPU_ISA caps the instruction set oneDNN may use.
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA", "default (all)"),
        # The commit measured, and whether tracked files differed from it (an experiment's patch).
        "code": git_state(Path(__file__).resolve().parents[1]),
    }
    try:
        import tensorflow as tf

        from avdistill.train.session import cpu_kernels

        info["tensorflow"] = tf.__version__
        info["cpu_kernels"] = cpu_kernels()  # what TensorFlow runs, as every job's log says
    except ImportError:
        pass
    return info
