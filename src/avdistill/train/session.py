"""What every TensorFlow job sets up first: seeds, deterministic ops, thread pools, the GPUs
its resources ask for, and the distribution strategy it trains under."""

from __future__ import annotations

import logging

from avdistill.train.options import TrainingError

log = logging.getLogger(__name__)


def configure_tensorflow(seed: int, threads: int = 0) -> None:
    """Seed Python, NumPy and TensorFlow, make ops deterministic, and size the thread pools.

    On a GPU TensorFlow picks it up with no change here; determinism then costs some speed.
    """
    import keras
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(2, threads))
        except RuntimeError:  # already initialised in this process (tests): keep its pools
            pass
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    # No device is chosen here: TensorFlow takes the GPUs it sees, which under SLURM are
    # the ones allocated to the job (CUDA_VISIBLE_DEVICES).
    gpus = tf.config.list_physical_devices("GPU")
    log.info("devices: %s; CPU kernels: %s", ", ".join(d.name for d in gpus) if gpus else "CPU only", cpu_kernels())


def cpu_kernels() -> str:
    """Which CPU kernels TensorFlow runs: "oneDNN" or "Eigen" (TensorFlow's own); numbers
    differ between them in the last float32 digits, and so do the speeds (avdistill/__init__)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow build without the query
        return "unknown"
    return "oneDNN" if _pywrap_util_port.IsMklEnabled() else "Eigen"


def require_gpus(count: int) -> None:
    """Fail at once, in one line, when a job asks for GPUs that TensorFlow does not see.

    A job sent to a GPU node (resources `gpu: N`, as profiles/slurm asks for training) with
    a CPU-only TensorFlow would otherwise train on the CPU for days without a word.
    """
    if not count:
        return
    from importlib.metadata import PackageNotFoundError, version

    import tensorflow as tf

    seen = len(tf.config.list_physical_devices("GPU"))
    if seen >= count:
        return
    try:
        why = f"tensorflow-cpu {version('tensorflow-cpu')} is installed, which has no CUDA support"
        fix = "install the GPU build: pip install -e '.[gpu]' in an environment without tensorflow-cpu"
    except PackageNotFoundError:
        why = f"TensorFlow {tf.__version__} found no usable CUDA device (driver, CUDA libraries, CUDA_VISIBLE_DEVICES)"
        fix = "check `nvidia-smi` on the node and install with pip install -e '.[gpu]'"
    raise TrainingError(
        f"this job asks for {count} GPU(s) (resources gpu={count}) but TensorFlow sees {seen}: {why}; "
        f"{fix}, or set the job's gpu resource to 0 to run on the CPU"
    )


DISTRIBUTE = ("none", "mirrored")


def distribution_strategy(name: str):
    """The tf.distribute strategy a job trains under: the default one (a single device), or
    MirroredStrategy over every visible GPU; without GPUs, over every logical CPU device (one,
    unless a test configured more)."""
    import tensorflow as tf

    if name not in DISTRIBUTE:
        raise ValueError(f"distribute must be one of {DISTRIBUTE}, got {name!r}")
    if name == "none":
        return tf.distribute.get_strategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
    log.info("MirroredStrategy over %d replicas: %s", strategy.num_replicas_in_sync, [d.name for d in devices])
    return strategy
