"""Download, verify and cache the MovieLens archives that GroupLens publishes.

Cache layout, under ``cache_dir`` (default ``$FACTORKIT_DATA``, else
``~/.cache/factorkit``)::

    movielens/<name>.zip          the verified archive (only ever renamed into place whole)
    movielens/<name>/             its unpacked contents, renamed into place whole, with
    movielens/<name>/.factorkit   a JSON note: url, sha256 and how the sha256 was checked
    movielens/<name>.zip.sha256   only for archives without a pinned digest (see below)

Checksums. :data:`KNOWN_SHA256` pins the SHA-256 of each official archive. GroupLens itself
publishes only MD5 sums (``<name>.zip.md5``); the SHA-256 values were taken from
TensorFlow Datasets' ``url_checksums/movielens.txt`` (ml-100k, ml-1m, ml-20m, ml-25m,
ml-latest-small) and cross-checked against independent public projects that pin the same
digests (for ml-10m and ml-32m, which TensorFlow Datasets does not list, only such
projects; their ml-10m entries also quote GroupLens' published MD5 and byte size). They
could not be recomputed here, which had no network access. ``ml-latest`` has no pin: it is
a development snapshot that GroupLens regenerates, and public projects disagree on its
digest. For it, the first download is trusted: a
:class:`~factorkit.exceptions.DataWarning` reports the digest, which is recorded in
``<name>.zip.sha256``, and later downloads into the same cache must match it (delete that
file to accept a newly published archive).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from factorkit._lazy import tqdm
from factorkit.data.interactions import Interactions
from factorkit.data.io.movielens import read_movielens
from factorkit.exceptions import DataError, DataWarning, InvalidParameterError

__all__ = ["BASE_URL", "KNOWN_SHA256", "MOVIELENS_NAMES", "load_movielens"]

#: Where the official archives live; ``<BASE_URL><name>.zip`` is downloaded.
BASE_URL = "https://files.grouplens.org/datasets/movielens/"

#: The names :func:`load_movielens` accepts.
MOVIELENS_NAMES = (
    "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small", "ml-latest",
)  # fmt: skip

#: SHA-256 of each official archive; None where no digest could be verified from public
#: sources (the first download is then trusted and recorded; see the module docstring).
KNOWN_SHA256: dict[str, str | None] = {
    "ml-100k": "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
    "ml-1m": "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
    "ml-10m": "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
    "ml-20m": "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
    "ml-25m": "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
    "ml-32m": "e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee",
    "ml-latest-small": "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
    "ml-latest": None,
}

#: Seconds to wait for the server to answer or send more bytes.
TIMEOUT = 60.0

_CHUNK = 1 << 20
_MARKER = ".factorkit"


def default_cache_dir() -> Path:
    """``$FACTORKIT_DATA`` if set, else ``~/.cache/factorkit``."""
    env = os.environ.get("FACTORKIT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "factorkit"


def load_movielens(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    url: str | None = None,
) -> Interactions:
    """Download a MovieLens data set from GroupLens (once), cache it, and read it.

    The first call downloads ``<name>.zip`` from ``files.grouplens.org`` with a progress
    bar, checks its SHA-256, and unpacks it into the cache; later calls read the cached
    files without touching the network. Files are written under temporary names and
    renamed into place only when complete, so an interrupted download leaves nothing
    half-written behind.

    Parameters
    ----------
    name : {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", \
"ml-latest-small", "ml-latest"}
        Which data set. ``"ml-latest-small"`` is also shipped with factorkit; see
        :func:`load_movielens_small`, which needs no download.
    cache_dir : str or path-like, optional
        Where archives are kept (under ``movielens/``). Defaults to the ``FACTORKIT_DATA``
        environment variable, else ``~/.cache/factorkit``.
    progress : bool, default True
        Show a tqdm progress bar while downloading.
    url : str, optional
        Download from this URL instead of ``<BASE_URL><name>.zip`` (a mirror). The archive
        must be byte-identical to the official one: it is checked against the same digest.

    Returns
    -------
    Interactions
        As :func:`read_movielens` returns: explicit ratings with timestamps, raw integer
        ids, and ``item_metadata`` (title, genres, year) indexed by movie id.

    Raises
    ------
    InvalidParameterError
        When ``name`` is not one of the names above.
    DataError
        When the download fails (the message names the URL and how to fetch the archive by
        hand), when its SHA-256 does not match (the message gives both digests; the
        download is deleted), or when the archive is not a valid zip.

    Warns
    -----
    DataWarning
        When no SHA-256 is known for the archive (``ml-latest``): the download cannot be
        verified, so its digest is reported and recorded for later downloads to match.

    See Also
    --------
    read_movielens : read an archive you have unpacked yourself.
    load_movielens_small : the small MovieLens data set shipped with factorkit.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens("ml-1m")  # doctest: +SKIP
    >>> data.n_users, data.n_items, len(data)  # doctest: +SKIP
    (6040, 3706, 1000209)
    >>> data.item_metadata.loc[1, "title"]  # doctest: +SKIP
    'Toy Story (1995)'
    """
    return read_movielens(_fetch(name, cache_dir=cache_dir, progress=progress, url=url))


# ---------------------------------------------------------------------- internals
def _check_name(name: Any) -> str:
    if isinstance(name, str) and name in MOVIELENS_NAMES:
        return name
    hint = ""
    if isinstance(name, str):
        close = difflib.get_close_matches(name, MOVIELENS_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
    raise InvalidParameterError(
        f"The 'name' parameter of load_movielens must be one of {list(MOVIELENS_NAMES)}; "
        f"got {name!r}.{hint} For other MovieLens files, unpack them yourself and call "
        "fk.datasets.read_movielens(path)."
    )


def _fetch(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    url: str | None = None,
) -> Path:
    """Path of the unpacked archive in the cache, downloading and unpacking when needed."""
    name = _check_name(name)
    if url is not None and not isinstance(url, str):
        raise InvalidParameterError(
            f"The 'url' parameter of load_movielens must be a str (the address of a "
            f"MovieLens zip) or None; got {type(url).__name__}."
        )
    url = url or f"{BASE_URL}{name}.zip"
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    base = base / "movielens"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"load_movielens: cannot create the cache directory {str(base)!r} ({exc}); pass "
            "cache_dir=<a writable directory> or set the FACTORKIT_DATA environment variable"
        ) from None

    unpacked = base / name
    if (unpacked / _MARKER).is_file():
        return unpacked
    if unpacked.exists():
        raise DataError(
            f"load_movielens: {str(unpacked)!r} exists but was not unpacked by factorkit (it "
            f"has no {_MARKER} file); move or delete it and call again, or read it directly "
            "with fk.datasets.read_movielens(path)"
        )
    archive = base / f"{name}.zip"
    # An archive at its final name was verified before it was renamed into place.
    note = _read_note(archive) if archive.is_file() else _download(name, url, archive, progress)
    return _unpack(archive, unpacked, note)


def _read_note(archive: Path) -> dict[str, str]:
    """The JSON note left when the archive was downloaded (missing for hand-placed files)."""
    try:
        return json.loads(archive.with_suffix(".zip.json").read_text())
    except (OSError, ValueError):
        return {"sha256": "unknown", "checked": "archive found in the cache"}


def _download(name: str, url: str, archive: Path, progress: bool) -> dict[str, str]:
    pinned = KNOWN_SHA256.get(name)
    record = archive.with_name(archive.name + ".sha256")
    recorded = None if pinned else _read_record(record)
    expected = pinned or recorded

    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}-", suffix=".zip.part", dir=archive.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            got = _stream(url, out, name, progress)
        if expected is not None and got != expected:
            if pinned:
                origin = "the published sha256 of the official archive"
                fix = (
                    "Run again to retry; if it keeps failing, the server or a proxy serves "
                    "something else: download the archive by hand from "
                    f"{BASE_URL}{name}.zip, unzip it and call "
                    "fk.datasets.read_movielens(path)."
                )
            else:
                origin = f"the sha256 recorded when {name}.zip was first downloaded ({record})"
                fix = (
                    f"GroupLens regenerates {name} from time to time; if it has published a "
                    f"new version, delete {record} to accept it."
                )
            raise DataError(
                f"load_movielens: checksum mismatch for {name}.zip downloaded from {url}: "
                f"expected sha256 {expected} ({origin}), got {got}. The download was "
                f"deleted. {fix}"
            )
        if not zipfile.is_zipfile(tmp):
            with open(tmp, "rb") as fh:
                head = fh.read(16)
            raise DataError(
                f"load_movielens: what {url} sent is not a zip archive (it begins {head!r}; "
                f"perhaps an error page). The download was deleted. {_manual(name)}"
            )
        if pinned:
            checked = "matches the published sha256"
        elif recorded:
            checked = "matches the sha256 recorded at first download"
        else:
            checked = "unverified: no published sha256; recorded at first download"
            warnings.warn(
                f"load_movielens: no published sha256 is known for {name}.zip, so the "
                f"download from {url} could not be verified. Its sha256 is {got}; it was "
                f"recorded in {record}, and later downloads into this cache must match it.",
                DataWarning,
                stacklevel=4,
            )
            _write_atomic(record, f"{got}  {name}.zip\n")
        note = {"name": name, "url": url, "sha256": got, "checked": checked}
        _write_atomic(archive.with_suffix(".zip.json"), json.dumps(note, indent=1) + "\n")
        os.replace(tmp, archive)
    finally:
        tmp.unlink(missing_ok=True)
    return note


def _manual(name: str) -> str:
    return (
        f"Check the connection (or pass url= a mirror), or download {name}.zip by hand, unzip "
        "it and call fk.datasets.read_movielens(path)."
    )


def _stream(url: str, out: Any, name: str, progress: bool) -> str:
    """Copy ``url`` into ``out``; return the SHA-256 of what was received."""
    manual = _manual(name)
    digest = hashlib.sha256()
    received = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "factorkit"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"{name}.zip",
                disable=not progress,
                leave=False,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise DataError(
            f"load_movielens: downloading {name} failed: {url} answered HTTP {exc.code} "
            f"{exc.reason}. {manual}"
        ) from None
    except urllib.error.URLError as exc:
        raise DataError(
            f"load_movielens: downloading {name} from {url} failed: {exc.reason}. {manual}"
        ) from None
    except ValueError as exc:  # urllib: unknown url type / malformed address
        raise InvalidParameterError(
            f"The 'url' parameter of load_movielens must be a full URL such as "
            f"'{BASE_URL}{name}.zip'; got {url!r} ({exc})."
        ) from None
    except OSError as exc:  # timeouts and resets while reading
        raise DataError(
            f"load_movielens: downloading {name} from {url} failed after {received:,} bytes: "
            f"{exc}. {manual}"
        ) from None
    if total is not None and received != total:
        raise DataError(
            f"load_movielens: downloading {name} from {url} stopped after {received:,} of "
            f"{total:,} bytes. {manual}"
        )
    return digest.hexdigest()


def _read_record(record: Path) -> str | None:
    try:
        text = record.read_text().split()
    except OSError:
        return None
    return text[0].lower() if text else None


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _unpack(archive: Path, target: Path, note: dict[str, str]) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    parts = PurePosixPath(member.replace("\\", "/")).parts
                    if member.startswith(("/", "\\")) or ".." in parts:
                        archive.unlink(missing_ok=True)
                        raise DataError(
                            f"load_movielens: {archive.name} holds the entry {member!r}, which "
                            "would unpack outside its directory; refused, and the archive was "
                            "deleted. Check where it came from (url=) before trying again."
                        )
                zf.extractall(tmp)
        except (zipfile.BadZipFile, EOFError) as exc:
            archive.unlink(missing_ok=True)
            raise DataError(
                f"load_movielens: {archive.name} from {note.get('url', 'the cache')} is not a "
                f"valid zip archive ({exc}); it was deleted. Call again to download it anew."
            ) from None
        (tmp / _MARKER).write_text(json.dumps(note, indent=1) + "\n")
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / _MARKER).is_file():  # not a concurrent unpack that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
