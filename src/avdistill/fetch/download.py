"""Downloads that survive a flaky network, and archives extracted without trusting them.

`download` fetches an http(s) or file URL into a file: the bytes go to `<dest>.part`, an
interrupted transfer resumes from there with an HTTP Range request (on a later attempt or
a later run), transient failures are retried with backoff, a SHA-256 given in the config
is checked, and `dest` appears only when everything checked out.

`safe_extract` unpacks a zip or tar archive (any compression tarfile reads) after checking
every member: no absolute path, no `..`, no link leading outside the target, no device or
FIFO, and a total size that fits both the given limit and the free disk. Nothing is
written before all members pass; the tree is staged beside the target and renamed into
place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from avdistill.errors import DataError
from avdistill.fileio import atomic_directory, atomic_path

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_TRANSIENT = (urllib.error.URLError, ConnectionError, http.client.HTTPException, socket.timeout, TimeoutError)


def sha256sum(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_once(url: str, part: Path, timeout: float) -> None:
    """Append the rest of `url` to `part` (resuming from its size); raise on any shortfall."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "avdistill"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to fetch: the part is whole
            return
        raise
    with response:
        status = getattr(response, "status", 200)
        if have and status != 206:
            log.info("%s: server ignored the range request, starting again", url)
            have = 0
        length = response.headers.get("Content-Length")
        expected = None if length is None else int(length)
        received = 0
        with open(part, "ab" if have else "wb") as file:
            for block in iter(lambda: response.read(CHUNK), b""):
                file.write(block)
                received += len(block)
        if expected is not None and received < expected:
            raise http.client.IncompleteRead(b"", expected - received)


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> Path:
    """Fetch `url` to `dest`; see the module doc. Raises DataError naming the URL on failure."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if url.startswith("file://") or "://" not in url:
        source = Path(urllib.request.url2pathname(url[len("file://") :]) if url.startswith("file://") else url)
        if not source.is_file():
            raise DataError(url, "file does not exist")
        part.unlink(missing_ok=True)
        try:  # a local archive of many GB: link it rather than copy it when the disk allows
            os.link(source, part)
        except OSError:
            shutil.copyfile(source, part)
    else:
        for attempt in range(1, retries + 2):
            try:
                _fetch_once(url, part, timeout)
                break
            except urllib.error.HTTPError as error:
                if error.code < 500 or attempt > retries:
                    raise DataError(url, f"HTTP {error.code} {error.reason}") from None
                problem = f"HTTP {error.code}"
            except _TRANSIENT as error:
                if attempt > retries:
                    raise DataError(
                        url, f"download failed after {attempt} attempts ({error!r}); rerun to resume"
                    ) from None
                problem = repr(error)
            wait = backoff * 2 ** (attempt - 1)
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s", url, attempt, problem, wait)
            time.sleep(wait)
    if sha256:
        actual = sha256sum(part)
        if actual != sha256.lower():
            part.unlink()
            raise DataError(url, f"SHA-256 {actual} does not match the expected {sha256.lower()}")
    else:  # no checksum to check: say what to pin, so the next run can check it
        log.info("%s has SHA-256 %s; set it in the config to check later downloads", url, sha256sum(part))
    os.replace(part, dest)
    log.info("downloaded %s to %s (%d bytes)", url, dest, dest.stat().st_size)
    return dest


# --- safe extraction -----------------------------------------------------------------------


def _check_name(archive: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise DataError(archive, f"member {name!r} has an absolute path; refusing to extract")
    if ".." in path.parts:
        raise DataError(archive, f"member {name!r} leads outside the target ('..'); refusing to extract")
    return path


def _check_link(archive: Path, name: PurePosixPath, target: str) -> None:
    """A link may only point inside the extracted tree."""
    link = PurePosixPath(target)
    if link.is_absolute():
        raise DataError(archive, f"member {str(name)!r} links to the absolute path {target!r}; refusing to extract")
    depth = len(name.parent.parts)
    for part in link.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise DataError(archive, f"member {str(name)!r} links outside the target ({target!r}); refusing to extract")


def _check_size(archive: Path, total: int, target: Path, max_bytes: int | None) -> None:
    if max_bytes is not None and total > max_bytes:
        raise DataError(archive, f"unpacks to {total:,} bytes, over the limit of {max_bytes:,}; refusing to extract")
    existing = target.parent if target.parent.exists() else Path.cwd()
    free = shutil.disk_usage(existing).free
    if total > free:
        raise DataError(archive, f"unpacks to {total:,} bytes but only {free:,} are free; refusing to extract")


def _members_zip(archive: Path, handle: zipfile.ZipFile):
    total = 0
    for info in handle.infolist():
        name = _check_name(archive, info.filename)
        mode = info.external_attr >> 16
        if (mode & 0o170000) == 0o120000:  # Info-ZIP symlink; zipfile would write it as a plain file
            raise DataError(archive, f"member {name} is a symbolic link; refusing to extract links from a zip")
        total += info.file_size
    return total


def _members_tar(archive: Path, handle: tarfile.TarFile):
    total = 0
    for member in handle.getmembers():
        name = _check_name(archive, member.name)
        if member.issym():
            _check_link(archive, name, member.linkname)
        elif member.islnk():  # a hard link names another member, relative to the archive root
            _check_name(archive, member.linkname)
        elif not (member.isfile() or member.isdir()):
            raise DataError(archive, f"member {member.name!r} is a device or FIFO; refusing to extract")
        total += member.size
    return total


def safe_extract(archive: str | Path, target: str | Path, max_bytes: int | None = None) -> Path:
    """Extract a zip or tar archive into `target` (replacing it) after checking every member."""
    archive, target = Path(archive), Path(target)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                _check_size(archive, _members_zip(archive, handle), target, max_bytes)
                with atomic_directory(target) as staging:
                    handle.extractall(staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as handle:
                _check_size(archive, _members_tar(archive, handle), target, max_bytes)
                with atomic_directory(target) as staging:
                    handle.extractall(staging, filter="data")  # a second line of defence
        else:
            raise DataError(archive, "is neither a zip nor a tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
        raise DataError(archive, f"corrupt or truncated archive ({error})") from None
    return target


def extract_member(archive: str | Path, name: str, dest: str | Path, max_bytes: int | None = None) -> Path:
    """Copy the one regular file called `name` (at any depth) out of a zip or tar archive.

    Only that member's bytes are read, and they go to a path this function chooses
    (`dest`, written atomically), so the member's own path never decides where anything
    is written. A missing, duplicated or non-regular member, or one too big, is refused.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                found = [info for info in handle.infolist() if PurePosixPath(info.filename).name == name]
                _check_single(archive, name, found)
                info = found[0]
                if (info.external_attr >> 16) & 0o170000 == 0o120000 or info.is_dir():
                    raise DataError(archive, f"member {info.filename!r} is not a regular file")
                _check_size(archive, info.file_size, dest, max_bytes)
                _copy_atomic(handle.open(info), dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as handle:
                found = [member for member in handle.getmembers() if PurePosixPath(member.name).name == name]
                _check_single(archive, name, found)
                member = found[0]
                if not member.isfile():
                    raise DataError(archive, f"member {member.name!r} is not a regular file (a link or device)")
                _check_size(archive, member.size, dest, max_bytes)
                _copy_atomic(handle.extractfile(member), dest)
        else:
            raise DataError(archive, "is neither a zip nor a tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
        raise DataError(archive, f"corrupt or truncated archive ({error})") from None
    return dest


def _check_single(archive: Path, name: str, found: list) -> None:
    if not found:
        raise DataError(archive, f"holds no file named {name}")
    if len(found) > 1:
        raise DataError(archive, f"holds {len(found)} files named {name}; expected one")


def _copy_atomic(source, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with source, atomic_path(dest) as tmp, open(tmp, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK)


def extract_dataset(archive: str | Path, target: str | Path, max_bytes: int | None = None) -> Path:
    """Extract the dataset archive so that `target` holds its `matfiles/` and `sync/` trees.

    The archive may wrap them in a top folder (one or two levels deep); anything else is
    refused with an error naming the archive, and `target` is not created.
    """
    archive, target = Path(archive), Path(target)
    staging = target.with_name(f".{target.name}.extracted")
    if staging.exists():
        shutil.rmtree(staging)
    safe_extract(archive, staging, max_bytes)
    try:
        candidates = [staging, *staging.glob("*"), *staging.glob("*/*")]
        roots = [path for path in candidates if (path / "matfiles").is_dir() and (path / "sync").is_dir()]
        if not roots:
            raise DataError(archive, "holds no folder with both matfiles/ and sync/ (the DualCam dataset layout)")
        with atomic_directory(target) as tree:
            for name in ("matfiles", "sync"):
                os.replace(roots[0] / name, tree / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
