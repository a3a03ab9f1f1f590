"""load_movielens against a loopback HTTP server: never the internet."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import warnings
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from factorkit.data.io import download
from factorkit.data.io.download import load_movielens
from factorkit.exceptions import DataError, DataWarning, InvalidParameterError

RATINGS = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
MOVIES = "661::James and the Giant Peach (1996)::Animation\n1193::Misérables, Les (1995)::Drama\n"


def make_zip(top: str = "ml-1m", ratings: str = RATINGS, extra: dict | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/ratings.dat", ratings)
        zf.writestr(f"{top}/movies.dat", MOVIES.encode("latin-1"))
        zf.writestr(f"{top}/README", "license")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Server:
    """Serves ``files`` (path -> bytes) on 127.0.0.1; anything else is a 404."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        if not self.thread.is_alive():
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(monkeypatch):
    srv = Server()
    monkeypatch.setattr(download, "BASE_URL", srv.base + "/datasets/movielens/")
    monkeypatch.setattr(download, "KNOWN_SHA256", dict(download.KNOWN_SHA256))
    yield srv
    srv.close()


def serve(server: Server, name: str, body: bytes, sha256: str | None = "same") -> str:
    path = f"/datasets/movielens/{name}.zip"
    server.files[path] = body
    download.KNOWN_SHA256[name] = sha(body) if sha256 == "same" else sha256
    return path


def leftovers(cache) -> list[str]:
    return sorted(p.name for p in (cache / "movielens").iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------- success and cache
def test_download_verify_unpack_and_read(server, tmp_path):
    path = serve(server, "ml-1m", make_zip())
    data = load_movielens("ml-1m", cache_dir=tmp_path, progress=False)
    assert (data.n_users, data.n_items, len(data)) == (2, 2, 3)
    assert data.item_metadata.loc[1193, "title"] == "Misérables, Les (1995)"
    cache = tmp_path / "movielens"
    assert (cache / "ml-1m.zip").read_bytes() == server.files[path]
    note = json.loads((cache / "ml-1m" / ".factorkit").read_text())
    assert note["sha256"] == download.KNOWN_SHA256["ml-1m"]
    assert note["checked"] == "matches the published sha256"
    assert (cache / "ml-1m" / "ml-1m" / "ratings.dat").is_file()
    assert leftovers(tmp_path) == []


def test_cache_is_reused_without_network(server, tmp_path):
    path = serve(server, "ml-1m", make_zip())
    first = load_movielens("ml-1m", cache_dir=tmp_path, progress=False)
    second = load_movielens("ml-1m", cache_dir=tmp_path, progress=False)
    assert server.hits == {path: 1}
    assert len(first) == len(second) == 3
    server.close()  # no server at all: still served from the cache
    assert len(load_movielens("ml-1m", cache_dir=tmp_path, progress=False)) == 3


def test_cached_zip_is_unpacked_again_without_download(server, tmp_path):
    import shutil

    path = serve(server, "ml-1m", make_zip())
    load_movielens("ml-1m", cache_dir=tmp_path, progress=False)
    shutil.rmtree(tmp_path / "movielens" / "ml-1m")
    assert len(load_movielens("ml-1m", cache_dir=tmp_path, progress=False)) == 3
    assert server.hits == {path: 1}


def test_ml10m_style_top_directory(server, tmp_path):
    serve(server, "ml-10m", make_zip(top="ml-10M100K"))
    assert len(load_movielens("ml-10m", cache_dir=tmp_path, progress=False)) == 3


def test_url_override(server, tmp_path):
    server.files["/mirror/any.zip"] = body = make_zip()
    download.KNOWN_SHA256["ml-1m"] = sha(body)
    data = load_movielens(
        "ml-1m", cache_dir=tmp_path, progress=False, url=server.base + "/mirror/any.zip"
    )
    assert len(data) == 3 and server.hits == {"/mirror/any.zip": 1}


def test_env_var_sets_default_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORKIT_DATA", str(tmp_path / "env-cache"))
    serve(server, "ml-1m", make_zip())
    load_movielens("ml-1m", progress=False)
    assert (tmp_path / "env-cache" / "movielens" / "ml-1m.zip").is_file()


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("FACTORKIT_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert download.default_cache_dir() == tmp_path / ".cache" / "factorkit"


def test_progress_bar(server, tmp_path, capsys):
    serve(server, "ml-1m", make_zip())
    load_movielens("ml-1m", cache_dir=tmp_path, progress=True)
    assert "ml-1m.zip" in capsys.readouterr().err


# ---------------------------------------------------------------------- checksums
def test_checksum_mismatch_deletes_download(server, tmp_path):
    body = make_zip()
    serve(server, "ml-1m", body, sha256="0" * 64)
    with pytest.raises(
        DataError,
        match=rf"checksum mismatch for ml-1m.zip downloaded from http://127\.0\.0\.1:\d+/"
        rf"datasets/movielens/ml-1m\.zip: expected sha256 0{{64}} \(the published sha256 of "
        rf"the official archive\), got {sha(body)}\. The download was deleted",
    ):
        load_movielens("ml-1m", cache_dir=tmp_path, progress=False)
    assert list((tmp_path / "movielens").iterdir()) == []


def test_unknown_checksum_warns_records_and_verifies_later(server, tmp_path):
    body = make_zip()
    serve(server, "ml-latest", body, sha256=None)
    with pytest.warns(
        DataWarning,
        match=rf"no published sha256 is known for ml-latest.zip, so the download from .* "
        rf"could not be verified\. Its sha256 is {sha(body)}; it was recorded in .*"
        r"ml-latest\.zip\.sha256",
    ):
        load_movielens("ml-latest", cache_dir=tmp_path, progress=False)
    record = tmp_path / "movielens" / "ml-latest.zip.sha256"
    assert record.read_text().split()[0] == sha(body)

    # A later download (cache emptied) must match the recorded digest.
    (tmp_path / "movielens" / "ml-latest.zip").unlink()
    import shutil

    shutil.rmtree(tmp_path / "movielens" / "ml-latest")
    serve(server, "ml-latest", make_zip(ratings="9::9::1::1\n"), sha256=None)
    with pytest.raises(
        DataError,
        match=rf"expected sha256 {sha(body)} \(the sha256 recorded when ml-latest.zip was first "
        r"downloaded .*\), got [0-9a-f]{64}\. The download was deleted\. GroupLens regenerates "
        r"ml-latest .* delete .*ml-latest\.zip\.sha256 to accept it",
    ):
        load_movielens("ml-latest", cache_dir=tmp_path, progress=False)
    # The same archive again passes quietly.
    serve(server, "ml-latest", body, sha256=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_movielens("ml-latest", cache_dir=tmp_path, progress=False)) == 3


def test_known_table_covers_every_name():
    assert set(download.KNOWN_SHA256) == set(download.MOVIELENS_NAMES)
    for digest in download.KNOWN_SHA256.values():
        assert digest is None or (len(digest) == 64 and int(digest, 16) >= 0)


# ---------------------------------------------------------------------- failures
def test_http_404(server, tmp_path):
    with pytest.raises(
        DataError,
        match=r"downloading ml-25m failed: http://127\.0\.0\.1:\d+/datasets/movielens/ml-25m\.zip "
        r"answered HTTP 404 Not Found\. Check the connection \(or pass url= a mirror\), or "
        r"download ml-25m\.zip by hand, unzip it and call fk\.datasets\.read_movielens\(path\)",
    ):
        load_movielens("ml-25m", cache_dir=tmp_path, progress=False)
    assert list((tmp_path / "movielens").iterdir()) == []


def test_connection_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-1m.zip"
    with pytest.raises(
        DataError,
        match=rf"downloading ml-1m from http://127\.0\.0\.1:{port}/ml-1m\.zip failed: .*"
        r"read_movielens\(path\)",
    ):
        load_movielens("ml-1m", cache_dir=tmp_path, progress=False, url=url)
    assert list((tmp_path / "movielens").iterdir()) == []


def test_bad_url(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"The 'url' parameter of load_movielens must"):
        load_movielens("ml-1m", cache_dir=tmp_path, progress=False, url="not a url")
    with pytest.raises(InvalidParameterError, match=r"must be a str .* got int"):
        load_movielens("ml-1m", cache_dir=tmp_path, progress=False, url=3)


def test_unknown_name(tmp_path):
    with pytest.raises(
        InvalidParameterError,
        match=r"The 'name' parameter of load_movielens must be one of \['ml-100k', .*, "
        r"'ml-latest'\]; got 'ml-100'\. Did you mean 'ml-100k'\?",
    ):
        load_movielens("ml-100", cache_dir=tmp_path)
    with pytest.raises(InvalidParameterError, match=r"got None"):
        load_movielens(None, cache_dir=tmp_path)


def test_not_a_zip(server, tmp_path):
    serve(server, "ml-1m", b"<html>maintenance</html>")
    with pytest.raises(
        DataError,
        match=r"what http://.*/ml-1m\.zip sent is not a zip archive \(it begins "
        r"b'<html>maintenanc'; perhaps an error page\)\. The download was deleted\. Check",
    ):
        load_movielens("ml-1m", cache_dir=tmp_path, progress=False)
    assert list((tmp_path / "movielens").iterdir()) == []


def test_not_a_zip_is_not_recorded_when_checksum_unknown(server, tmp_path):
    serve(server, "ml-latest", b"<html>maintenance</html>", sha256=None)
    with pytest.raises(DataError, match="is not a zip archive"):
        load_movielens("ml-latest", cache_dir=tmp_path, progress=False)
    assert list((tmp_path / "movielens").iterdir()) == []


def test_corrupted_cached_zip(tmp_path):
    cache = tmp_path / "movielens"
    cache.mkdir()
    (cache / "ml-1m.zip").write_bytes(make_zip()[:-30])  # truncated, placed by hand
    with pytest.raises(
        DataError, match=r"ml-1m\.zip from the cache is not a valid zip archive .*it was deleted"
    ):
        load_movielens("ml-1m", cache_dir=tmp_path, progress=False)
    assert list(cache.iterdir()) == []


def test_zip_entry_outside_directory_is_refused(server, tmp_path):
    serve(server, "ml-1m", make_zip(extra={"../evil.txt": "x"}))
    with pytest.raises(
        DataError,
        match=r"ml-1m\.zip holds the entry '\.\./evil\.txt', which would unpack .* deleted",
    ):
        load_movielens("ml-1m", cache_dir=tmp_path, progress=False)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "movielens" / "ml-1m").exists()


def test_foreign_directory_in_cache(tmp_path):
    (tmp_path / "movielens" / "ml-1m").mkdir(parents=True)
    with pytest.raises(DataError, match=r"exists but was not unpacked by factorkit"):
        load_movielens("ml-1m", cache_dir=tmp_path, progress=False)


def test_cache_dir_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DataError, match=r"cannot create the cache directory .* pass cache_dir="):
        load_movielens("ml-1m", cache_dir=f, progress=False)
