"""Send a job's output — Python logging and TensorFlow's C++ messages on fd 2 — to its log file."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback


@contextlib.contextmanager
def log_to(path: str | os.PathLike):
    """Redirect stdout, stderr (file descriptors too) and logging to `path` for the block.

    TensorFlow's runtime writes to file descriptor 2 directly, so reassigning `sys.stderr`
    would miss it; the descriptors themselves are redirected. An exception is written to
    the log with its traceback, then re-raised.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
        try:
            yield
        except BaseException:
            traceback.print_exc(file=handle)
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
