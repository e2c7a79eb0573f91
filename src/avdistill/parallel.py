"""Worker processes for the data stages."""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor


def process_pool(jobs: int) -> ProcessPoolExecutor:
    """A pool of `jobs` processes, forked while this process has not loaded TensorFlow.

    Forking is fast and works from any entry point (a Snakemake script re-imported by a
    'spawn' child would fail), but forking a process that has started TensorFlow's thread
    pools can deadlock; then the workers are spawned instead.
    """
    method = "spawn" if "tensorflow" in sys.modules else "fork"
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method))
