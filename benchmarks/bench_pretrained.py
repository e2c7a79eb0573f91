"""Pretrained weights: download over loopback HTTP, SoundNet and ResNet-50 conversion.

Uses the tests' fixtures at the real files' sizes: a SoundNet5 Torch7 file with the
full conv5a/conv5b heads (about 24 MB, like soundnet5_final.t7) zipped, and a V1
ResNet-50 checkpoint with slim's names (about 100 MB) in a tarball. Measures the
download (with its SHA-256 check), the Torch7 structure scan alone, and each conversion
from archive to .npz with its peak memory. Writes `bench_pretrained.json` next to this file.
"""

from __future__ import annotations

import functools
import http.server
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_data import PeakMemory  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from tests import torch7  # noqa: E402
from tests.conftest import pack_tar, pack_zip  # noqa: E402
from tests.slim_resnet import resnet_v1_50_variables, write_v1_checkpoint  # noqa: E402


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def timed(function, *args, **kwargs) -> tuple[float, int]:
    """Seconds, and peak RSS above the process's RSS before the call (bytes)."""
    import psutil

    before = psutil.Process().memory_info().rss
    with PeakMemory() as memory:
        start = time.perf_counter()
        function(*args, **kwargs)
        seconds = time.perf_counter() - start
    return seconds, memory.peak["rss"] - before


def main() -> None:
    from avdistill.fetch.download import download, sha256sum
    from avdistill.fetch.pretrained import convert_resnet, convert_soundnet, scan_t7

    results = {"machine": machine_info()}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        torch7.save(work / "soundnet5_final.t7", torch7.soundnet5_network(np.random.default_rng(0), heads=(1000, 401)))
        pack_zip(
            work / "soundnet_models_public.zip",
            {"soundnet_models_public/soundnet5_final.t7": (work / "soundnet5_final.t7").read_bytes()},
        )
        write_v1_checkpoint(work / "resnet_v1_50.ckpt", resnet_v1_50_variables(np.random.default_rng(0)))
        pack_tar(
            work / "resnet_v1_50_2016_08_28.tar.gz", {"resnet_v1_50.ckpt": (work / "resnet_v1_50.ckpt").read_bytes()}
        )

        handler = functools.partial(QuietHandler, directory=str(work))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/resnet_v1_50_2016_08_28.tar.gz"
        size = (work / "resnet_v1_50_2016_08_28.tar.gz").stat().st_size
        digest = sha256sum(work / "resnet_v1_50_2016_08_28.tar.gz")
        seconds, _ = timed(download, url, work / "downloaded.tar.gz", sha256=digest)
        httpd.shutdown()
        results["download"] = {"bytes": size, "seconds": round(seconds, 3), "MB_per_s": round(size / seconds / 1e6, 1)}

        t7_size = (work / "soundnet5_final.t7").stat().st_size
        seconds, _ = timed(scan_t7, work / "soundnet5_final.t7")
        results["scan_t7"] = {"bytes": t7_size, "seconds": round(seconds, 4)}

        # TensorFlow is imported once before timing, as a job has paid for it by then.
        import tensorflow  # noqa: F401

        for name, convert, archive in (
            ("soundnet", convert_soundnet, "soundnet_models_public.zip"),
            ("resnet", convert_resnet, "resnet_v1_50_2016_08_28.tar.gz"),
        ):
            seconds, peak = timed(convert, work / archive, work / f"{name}.npz")
            results[f"convert_{name}"] = {
                "archive_bytes": (work / archive).stat().st_size,
                "seconds": round(seconds, 2),
                "extra_peak_rss_MB": round(peak / 1e6),
            }
    for key, row in results.items():
        print(key, json.dumps(row))
    Path(__file__).with_name("bench_pretrained.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
