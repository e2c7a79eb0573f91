"""provenance.json: what a run folder was made from, so every number traces back to its inputs.

It records the rule and its wildcards, the exact parameters, the SHA-256 of every input
file (lists, weights, teacher logits, statistics) and a count of the files of every input
folder (the TFRecords, too many to hash per job), the configuration files and the merged
configuration, the seed, the versions of the packages that computed it, and the git commit
of the project (with a flag when the working tree had uncommitted changes).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

from avdistill.fileio import write_text_atomic

PACKAGES = ("avdistill", "tensorflow", "tensorflow-cpu", "keras", "numpy", "scipy", "librosa", "snakemake")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_input(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        return {"path": path.as_posix(), "files": sum(1 for p in path.rglob("*") if p.is_file())}
    return {"path": path.as_posix(), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_state(directory: str | Path) -> dict:
    """The commit of the project in `directory`, and whether its tracked files were edited."""

    def git(*args):
        result = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def write_provenance(
    out: str | Path, rule: str, wildcards: dict, params: dict, inputs: dict, config: dict, invocation: str | Path
) -> dict:
    """Write provenance.json (see the module doc). inputs: name -> path or list of paths;
    invocation: the workflow's record of its config files and folder (written at start)."""
    started = json.loads(Path(invocation).read_text()) if Path(invocation).is_file() else {}
    config_files = [entry["path"] for entry in started.get("config_files", [])]
    workflow_dir = started.get("workflow_dir", ".")
    described = {
        name: [describe_input(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        for name, paths in inputs.items()
    }
    record = {
        "rule": rule,
        "wildcards": dict(wildcards),
        "params": params,
        # The run's own seed (initial weights, crops, shuffles) and the data's (config `seed`).
        "seed": params.get("seed"),
        "data_seed": config.get("seed"),
        "inputs": described,
        "config_files": [describe_input(p) for p in config_files if Path(p).is_file()],
        "command": started.get("command"),
        "config": config,
        "config_sha256": hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "git": git_state(workflow_dir),
    }
    write_text_atomic(out, json.dumps(record, indent=1, default=str) + "\n")
    return record
