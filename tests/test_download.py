"""Downloads over real HTTP from a server on 127.0.0.1, and safe extraction of hostile archives."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile

import pytest

from avdistill.errors import DataError
from avdistill.fetch.download import download, safe_extract

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /file (honouring Range), drops /flaky midway on its first request, 404 elsewhere."""

    requests: list = []
    flaky_served = False

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append((self.path, self.headers.get("Range")))
        if self.path not in ("/file", "/flaky"):
            self.send_error(404, "Not Found")
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        if self.path == "/flaky" and not type(self).flaky_served:
            type(self).flaky_served = True
            self.wfile.write(PAYLOAD[start : start + 300_000])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops midway
            return
        self.wfile.write(PAYLOAD[start:])


@pytest.fixture
def server():
    Handler.requests = []
    Handler.flaky_served = False
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_checks_the_checksum(server, tmp_path):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    path = download(f"{server}/file", tmp_path / "a.bin", sha256=digest)
    assert path.read_bytes() == PAYLOAD
    with pytest.raises(DataError, match=r"/file: SHA-256 [0-9a-f]{64} does not match the expected 0{64}"):
        download(f"{server}/file", tmp_path / "b.bin", sha256="0" * 64)
    assert not list(tmp_path.glob("b.bin*"))  # neither the file nor its part


def test_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    path = download(f"{server}/flaky", tmp_path / "c.bin", backoff=0.01)
    assert path.read_bytes() == PAYLOAD
    assert Handler.requests == [("/flaky", None), ("/flaky", "bytes=300000-")]


def test_interrupted_download_resumes_on_the_next_run(server, tmp_path):
    with pytest.raises(DataError, match="download failed after 1 attempts.*rerun to resume"):
        download(f"{server}/flaky", tmp_path / "d.bin", retries=0)
    assert not (tmp_path / "d.bin").exists()
    assert (tmp_path / "d.bin.part").stat().st_size == 300_000
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert download(f"{server}/flaky", tmp_path / "d.bin", sha256=digest).read_bytes() == PAYLOAD


def test_404_fails_at_once_with_a_clear_error(server, tmp_path):
    with pytest.raises(DataError, match=r"/missing.zip: HTTP 404 Not Found"):
        download(f"{server}/missing.zip", tmp_path / "e.bin", backoff=0.01)
    assert len(Handler.requests) == 1  # not retried
    assert not list(tmp_path.iterdir())


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return path


def _tar(path, members):
    with tarfile.open(path, "w:gz") as handle:
        for info, data in members:
            handle.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name, kind=tarfile.REGTYPE, size=0, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    return info


def test_safe_extract_unpacks_a_good_archive(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"dataset/matfiles/a.txt": b"x", "dataset/sync/b.txt": b"yy"})
    target = safe_extract(archive, tmp_path / "out")
    assert (target / "dataset/sync/b.txt").read_bytes() == b"yy"
    tarball = _tar(
        tmp_path / "ok.tar.gz",
        [(_info("model.ckpt", size=3), b"abc"), (_info("alias", tarfile.SYMTYPE, linkname="model.ckpt"), None)],
    )
    target = safe_extract(tarball, tmp_path / "out2")
    assert (target / "alias").read_bytes() == b"abc"


@pytest.mark.parametrize(
    "members, problem",
    [
        ([(_info("../evil.txt", size=1), b"x")], r"'\.\./evil.txt' leads outside the target"),
        ([(_info("/tmp/evil.txt", size=1), b"x")], r"'/tmp/evil.txt' has an absolute path"),
        ([(_info("link", tarfile.SYMTYPE, linkname="/etc/passwd"), None)], "links to the absolute path '/etc/passwd'"),
        (
            [(_info("a/link", tarfile.SYMTYPE, linkname="../../outside"), None)],
            r"links outside the target \('\.\./\.\./outside'\)",
        ),
        ([(_info("dev", tarfile.CHRTYPE), None)], "is a device or FIFO"),
    ],
)
def test_hostile_tar_is_refused_and_nothing_is_written(tmp_path, members, problem):
    archive = _tar(tmp_path / "bad.tar.gz", [(_info("fine.txt", size=2), b"ok"), *members])
    with pytest.raises(DataError, match=problem):
        safe_extract(archive, tmp_path / "out" / "target")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_hostile_zip_and_size_limit(tmp_path):
    archive = _zip(tmp_path / "bad.zip", {"ok.txt": b"1", "../../evil.txt": b"2"})
    with pytest.raises(DataError, match=r"bad.zip: member '\.\./\.\./evil.txt' leads outside"):
        safe_extract(archive, tmp_path / "out")
    big = _zip(tmp_path / "big.zip", {"zeros.bin": bytes(2_000_000)})  # compresses to almost nothing
    with pytest.raises(DataError, match=r"unpacks to 2,000,000 bytes, over the limit of 1,000,000"):
        safe_extract(big, tmp_path / "out", max_bytes=1_000_000)
    assert not (tmp_path / "out").exists()
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(_zip(tmp_path / "whole.zip", {"a.bin": bytes(range(256)) * 100}).read_bytes()[:-30])
    with pytest.raises(DataError, match="cut.zip"):
        safe_extract(truncated, tmp_path / "out")


def test_dataset_archive_without_the_dualcam_layout_is_refused(tmp_path):
    from avdistill.fetch.download import extract_dataset

    archive = _zip(tmp_path / "other.zip", {"photos/a.jpg": b"x"})
    with pytest.raises(DataError, match="other.zip: holds no folder with both matfiles/ and sync/"):
        extract_dataset(archive, tmp_path / "dataset")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.zip"]
    nested = _zip(tmp_path / "nested.zip", {"DualCam/matfiles/m.txt": b"1", "DualCam/sync/s.txt": b"2"})
    target = extract_dataset(nested, tmp_path / "dataset")
    assert (target / "matfiles/m.txt").read_bytes() == b"1" and (target / "sync/s.txt").exists()


def test_zip_symbolic_link_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        link = zipfile.ZipInfo("dataset/escape")
        link.external_attr = 0o120777 << 16  # how Info-ZIP stores a symlink; its data is the target
        handle.writestr(link, "../../etc/passwd")
    with pytest.raises(DataError, match=r"link.zip: member dataset/escape is a symbolic link"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_local_paths_and_file_urls_are_fetched_and_checked(tmp_path):
    source = tmp_path / "dataset.zip"
    source.write_bytes(PAYLOAD)
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    download(str(source), tmp_path / "a", sha256=digest)
    download(source.as_uri(), tmp_path / "b", sha256=digest)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == PAYLOAD
    assert source.read_bytes() == PAYLOAD  # the user's file is untouched
    with pytest.raises(DataError, match="does not match"):
        download(str(source), tmp_path / "c", sha256="0" * 64)
    assert not (tmp_path / "c").exists() and source.exists()
    with pytest.raises(DataError, match="missing.zip: file does not exist"):
        download(str(tmp_path / "missing.zip"), tmp_path / "d")
