"""avdistill: audio-visual model distillation with acoustic images (Pérez et al., WACV 2020)."""

import os as _os
import platform as _platform

__version__ = "0.1.0"

# TensorFlow's oneDNN kernels on every x86 CPU, unless the user set TF_ENABLE_ONEDNN_OPTS.
# TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX and runs its
# own Eigen kernels elsewhere, i.e. on most laptops and many cluster nodes (AVX2 only). There
# oneDNN's AVX2 kernels train DualCamNet 1.6x and SoundNet5 1.9x faster than Eigen's on one
# thread (benchmarks/README.md, "Which kernels an AVX2 laptop gets"). It must be set before
# TensorFlow loads, and every job imports this package first. Results stay deterministic per
# machine either way; export TF_ENABLE_ONEDNN_OPTS=0 for Eigen's kernels.
if _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
