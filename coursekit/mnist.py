"""The one MNIST loader: find the four IDX ``.gz`` files, parse them, verify them, or download them.

Used by students, notebooks and the grader alike::

    from coursekit.mnist import load_mnist
    train_images, train_labels, test_images, test_labels = load_mnist()

Where the files are looked for, first match wins:

1. the ``data_dir`` argument (must hold the files, else :class:`MnistDataError`);
2. ``$MNIST_DIR`` (likewise strict);
3. ``data.mnist_dir`` in course.yml (relative to course.yml);
4. the per-user cache ``$XDG_CACHE_HOME/convnets-course/mnist`` (default ``~/.cache/convnets-course/mnist``).

Every file is checked: gzip integrity, the IDX header against the data size, and the SHA-256 of the
uncompressed bytes against ``data.mnist_sha256`` in course.yml. A missing, truncated, corrupt or
wrong-checksum file raises :class:`MnistDataError` naming the file and the fix; it is never used silently.

Nothing is downloaded implicitly. Downloading is opt-in and atomic::

    python -m coursekit.mnist download [--dest DIR] [--url BASE] [--force]
    python -m coursekit.mnist verify [DIR]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from http.client import HTTPException
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from coursekit.course import MNIST_FILES, load_course  # MNIST_FILES: uncompressed names; on disk each is <name>.gz

#: split -> (images file, labels file)
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
IMAGE_SIDE = 28
NUM_CLASSES = 10
DOWNLOAD_COMMAND = "python -m coursekit.mnist download"


class MnistDataError(Exception):
    """An MNIST file is missing, truncated, corrupt or fails its checksum (the message says which and what to do)."""


class Split(NamedTuple):
    images: np.ndarray  # uint8 (N, 28, 28)
    labels: np.ndarray  # uint8 (N,), values 0-9


class Mnist(NamedTuple):
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


# -- where the files are ---------------------------------------------------------------------

def gz_name(name: str) -> str:
    return f"{name}.gz"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/convnets-course/mnist``, else ``~/.cache/convnets-course/mnist``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "convnets-course" / "mnist"


def _course_dir() -> Path | None:
    course = load_course()
    return course.resolve(course.data.mnist_dir) if course.data.mnist_dir else None


def _missing(directory: Path, names: Iterable[str]) -> list[str]:
    return [gz_name(n) for n in names if not (directory / gz_name(n)).is_file()]


def _fix_hint(directory: Path) -> str:
    return (f"run `{DOWNLOAD_COMMAND} --dest {directory}` (add --url BASE if course.yml has no data.mnist_url), "
            "or set MNIST_DIR to a directory holding good copies")


def resolve_mnist_dir(data_dir: os.PathLike | str | None = None, *,
                      names: Iterable[str] = MNIST_FILES) -> Path:
    """The directory to read ``names`` from: argument, ``$MNIST_DIR``, course.yml, then the user cache.

    An explicit argument or ``$MNIST_DIR`` that lacks a file is an error (no silent fallthrough);
    course.yml's directory and the cache are simply skipped when they lack one.
    """
    names = tuple(names)
    explicit = data_dir if data_dir is not None else os.environ.get("MNIST_DIR") or None
    if explicit is not None:
        origin = "the data_dir argument" if data_dir is not None else "$MNIST_DIR"
        directory = Path(explicit).expanduser()
        if not directory.is_dir():
            raise MnistDataError(f"MNIST directory {directory} (from {origin}) does not exist; {_fix_hint(directory)}.")
        missing = _missing(directory, names)
        if missing:
            raise MnistDataError(
                f"MNIST directory {directory} (from {origin}) lacks {', '.join(missing)}; {_fix_hint(directory)}.")
        return directory

    tried: list[str] = []
    candidates = [("course.yml data.mnist_dir", _course_dir()), ("the user cache", user_cache_dir())]
    for origin, directory in candidates:
        if directory is None:
            tried.append(f"{origin}: not set")
            continue
        missing = _missing(directory, names)
        if not missing:
            return directory
        tried.append(f"{origin} {directory}: lacks {', '.join(missing)}")
    raise MnistDataError(
        "no MNIST directory holds the files. Tried:\n  - " + "\n  - ".join(tried)
        + f"\nPass data_dir=..., set MNIST_DIR, or run `{DOWNLOAD_COMMAND}` (add --url BASE if course.yml has "
        f"no data.mnist_url) to fill {user_cache_dir()}.")


# -- reading and checking one file -----------------------------------------------------------

def _course_checksums() -> Mapping[str, str]:
    return load_course().data.mnist_sha256


#: (path, expected digest) -> stat signature of the file last seen to match it. A changed file
#: (size, mtime, ctime, inode) is always hashed again.
_verified: dict[tuple[str, str], tuple[int, int, int, int, int]] = {}


def _signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _decompress(raw: bytes, source: str, advice: str) -> bytes:
    if not raw:
        raise MnistDataError(f"{source}: empty file (0 bytes); {advice}.")
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise MnistDataError(f"{source}: truncated (the gzip stream ends early after {len(raw)} bytes); "
                             f"{advice}.") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise MnistDataError(f"{source}: not a valid gzip file ({exc}); {advice}.") from None


def parse_idx(data: bytes, source: str = "<bytes>", advice: str = "replace the file") -> np.ndarray:
    """Parse uncompressed IDX bytes: ``00 00 08 ndim``, ndim big-endian uint32 sizes, then uint8 data."""
    if len(data) < 4:
        raise MnistDataError(f"{source}: only {len(data)} bytes, too short for an IDX header; {advice}.")
    magic = int.from_bytes(data[:4], "big")
    ndim = data[3]
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08 or not 1 <= ndim <= 4:
        raise MnistDataError(f"{source}: bad IDX magic 0x{magic:08x} (expected 0x{IMAGES_MAGIC:08x} for images or "
                             f"0x{LABELS_MAGIC:08x} for labels): not an MNIST file; {advice}.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistDataError(f"{source}: header announces {ndim} dimensions but the file ends after "
                             f"{len(data)} bytes; {advice}.")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header
    if actual != expected:
        what = "short" if actual < expected else "too long"
        raise MnistDataError(f"{source}: data {what}: the header says shape {shape} = {expected} bytes, "
                             f"found {actual}; {advice}.")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _decode(raw: bytes, source: str, sha256: str | None, advice: str,
            cache_key: tuple[tuple[str, str], tuple[int, ...]] | None = None) -> np.ndarray:
    """gunzip, verify the SHA-256 of the uncompressed bytes (unless None), parse the IDX."""
    data = _decompress(raw, source, advice)
    if sha256 is not None:
        want = sha256.lower()
        if cache_key is None or _verified.get(cache_key[0]) != cache_key[1]:
            digest = hashlib.sha256(data).hexdigest()
            if digest != want:
                if cache_key is not None:
                    _verified.pop(cache_key[0], None)
                raise MnistDataError(
                    f"{source}: SHA-256 of the uncompressed content is {digest}, expected {want} "
                    f"(course.yml data.mnist_sha256): the file is corrupt or not this MNIST file; {advice}.")
            if cache_key is not None:
                _verified[cache_key[0]] = cache_key[1]
    return parse_idx(data, source, advice)


def read_idx(path: os.PathLike | str, *, sha256: str | None = None) -> np.ndarray:
    """Read a gzip IDX file into a uint8 array; with ``sha256``, also verify the uncompressed bytes."""
    path = Path(path)
    advice = f"delete it and {_fix_hint(path.parent)}"
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            raw = f.read()
    except FileNotFoundError:
        raise MnistDataError(f"{path}: file not found; {_fix_hint(path.parent)}.") from None
    except OSError as exc:
        raise MnistDataError(f"{path}: cannot read it ({exc}); {_fix_hint(path.parent)}.") from None
    key = ((str(path.resolve()), (sha256 or "").lower()), _signature(st))
    return _decode(raw, str(path), sha256, advice, key)


def _expected_digest(name: str, checksums: Mapping[str, str] | None) -> str:
    sums = _course_checksums() if checksums is None else checksums
    try:
        return sums[name]
    except KeyError:
        raise MnistDataError(f"no SHA-256 known for {name} (course.yml data.mnist_sha256); "
                             "cannot verify it (pass verify=False to skip verification)") from None


def read_mnist_file(directory: Path, name: str, *, verify: bool = True,
                    checksums: Mapping[str, str] | None = None) -> np.ndarray:
    """Read ``directory/<name>.gz`` and check that its shape fits its kind (images or labels)."""
    path = directory / gz_name(name)
    array = read_idx(path, sha256=_expected_digest(name, checksums) if verify else None)
    _check_kind(str(path), name, array, f"delete it and {_fix_hint(directory)}")
    return array


def _check_kind(source: str, name: str, array: np.ndarray, advice: str) -> None:
    """Images: magic 0x803 and (N, 28, 28); labels: magic 0x801, (N,) and values 0-9."""
    images = "images" in name
    want_ndim, want_magic = (3, IMAGES_MAGIC) if images else (1, LABELS_MAGIC)
    if array.ndim != want_ndim:
        raise MnistDataError(f"{source}: IDX magic 0x{0x800 | array.ndim:08x} (shape {array.shape}), but an "
                             f"{'images' if images else 'labels'} file has magic 0x{want_magic:08x}; {advice}.")
    if images and array.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise MnistDataError(f"{source}: expected images of shape (N, 28, 28), found {array.shape}; {advice}.")
    if not images and array.size and int(array.max()) >= NUM_CLASSES:
        raise MnistDataError(f"{source}: label {int(array.max())} outside 0-9; {advice}.")


# -- public loading API ----------------------------------------------------------------------

def _split_files(split: str) -> tuple[str, str]:
    try:
        return SPLITS[split]
    except KeyError:
        raise ValueError(f"unknown MNIST split {split!r}; expected 'train' or 'test'") from None


def load_images(split: str, data_dir: os.PathLike | str | None = None, *, verify: bool = True,
                checksums: Mapping[str, str] | None = None) -> np.ndarray:
    """uint8 images ``(N, 28, 28)`` of one split (needs only the images file)."""
    name = _split_files(split)[0]
    directory = resolve_mnist_dir(data_dir, names=[name])
    return read_mnist_file(directory, name, verify=verify, checksums=checksums)


def load_labels(split: str, data_dir: os.PathLike | str | None = None, *, verify: bool = True,
                checksums: Mapping[str, str] | None = None) -> np.ndarray:
    """uint8 labels ``(N,)`` in 0-9 of one split (needs only the labels file)."""
    name = _split_files(split)[1]
    directory = resolve_mnist_dir(data_dir, names=[name])
    return read_mnist_file(directory, name, verify=verify, checksums=checksums)


def load_split(split: str, data_dir: os.PathLike | str | None = None, *, verify: bool = True,
               checksums: Mapping[str, str] | None = None) -> Split:
    """``(images, labels)`` of ``"train"`` or ``"test"``, both files from one directory."""
    images_name, labels_name = _split_files(split)
    directory = resolve_mnist_dir(data_dir, names=[images_name, labels_name])
    images = read_mnist_file(directory, images_name, verify=verify, checksums=checksums)
    labels = read_mnist_file(directory, labels_name, verify=verify, checksums=checksums)
    if len(images) != len(labels):
        raise MnistDataError(f"{directory}: {gz_name(images_name)} holds {len(images)} images but "
                             f"{gz_name(labels_name)} {len(labels)} labels; {_fix_hint(directory)}.")
    return Split(images, labels)


def load_mnist(data_dir: os.PathLike | str | None = None, *, verify: bool = True,
               checksums: Mapping[str, str] | None = None) -> Mnist:
    """``(train_images, train_labels, test_images, test_labels)``: uint8, images ``(N, 28, 28)``, labels 0-9."""
    directory = resolve_mnist_dir(data_dir, names=MNIST_FILES)
    train = load_split("train", directory, verify=verify, checksums=checksums)
    test = load_split("test", directory, verify=verify, checksums=checksums)
    return Mnist(train.images, train.labels, test.images, test.labels)


def verify_mnist(data_dir: os.PathLike | str | None = None, *, names: Iterable[str] = MNIST_FILES,
                 checksums: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Check each file in ``data_dir`` (default: the resolved directory): name -> None if OK, else the problem."""
    names = tuple(names)
    directory = Path(data_dir).expanduser() if data_dir is not None else resolve_mnist_dir(names=names)
    report: dict[str, str | None] = {}
    for name in names:
        try:
            read_mnist_file(directory, name, verify=True, checksums=checksums)
            report[name] = None
        except MnistDataError as exc:
            report[name] = str(exc)
    return report


# -- opt-in download -------------------------------------------------------------------------

def _course_url() -> str | None:
    return load_course().data.mnist_url


def download_mnist(dest: os.PathLike | str | None = None, base_url: str | None = None, *,
                   force: bool = False, names: Iterable[str] = MNIST_FILES,
                   checksums: Mapping[str, str] | None = None, timeout: float = 60.0) -> Path:
    """Fetch ``<base_url>/<name>.gz`` into ``dest`` and return ``dest``.

    ``dest`` defaults to ``$MNIST_DIR`` if set, else the user cache; ``base_url`` to course.yml
    ``data.mnist_url``. Files already present and verified are kept unless ``force``. Each download
    goes to a temporary file in ``dest``, is fully checked (gzip, IDX, SHA-256) and only then moved
    over the target with ``os.replace``; a failed download leaves no partial file and the old file as it was.
    """
    names = tuple(names)
    if base_url is None:
        base_url = _course_url()
    if not base_url:
        raise MnistDataError("no MNIST download URL: pass --url BASE (base_url=...) or set data.mnist_url in "
                             "course.yml; the files are fetched as BASE/<name>.gz")
    if dest is None:
        dest = os.environ.get("MNIST_DIR") or user_cache_dir()
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    sums = {name: _expected_digest(name, checksums) for name in names}
    for name in names:
        target = dest / gz_name(name)
        if not force and target.is_file():
            try:
                read_mnist_file(dest, name, checksums=sums)
                continue  # already good
            except MnistDataError:
                pass  # replace it
        _download_one(f"{base_url.rstrip('/')}/{gz_name(name)}", dest, name, sums, timeout)
    return dest


def _download_one(url: str, dest: Path, name: str, sums: Mapping[str, str], timeout: float) -> None:
    target = dest / gz_name(name)
    advice = f"nothing was written ({target} is as it was); check the URL (--url BASE) and try again"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{gz_name(name)}.", suffix=".part", dir=dest)
    tmp = Path(tmp_name)
    done = False
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
            raise MnistDataError(f"download of {url} failed ({exc}); {advice}.") from None
        _check_kind(url, name, _decode(tmp.read_bytes(), url, sums[name], advice), advice)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        done = True
    finally:
        if not done:
            tmp.unlink(missing_ok=True)


# -- command line ----------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.mnist", description="Download or verify the MNIST files.")
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="fetch the four .gz files (verified, atomic)")
    dl.add_argument("--dest", help="target directory (default: $MNIST_DIR, else the user cache)")
    dl.add_argument("--url", help="base URL; files are fetched as URL/<name>.gz (default: course.yml data.mnist_url)")
    dl.add_argument("--force", action="store_true", help="download even files that are present and verify")
    vf = sub.add_parser("verify", help="check the four files and print OK or the problem for each")
    vf.add_argument("dir", nargs="?", help="directory to check (default: the one load_mnist would use)")
    args = parser.parse_args(argv)

    try:
        if args.command == "download":
            where = download_mnist(args.dest, args.url, force=args.force)
            print(f"MNIST files ready in {where}")
            return 0
        report = verify_mnist(args.dir)
    except MnistDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, problem in report.items():
        print(f"OK       {gz_name(name)}" if problem is None else f"PROBLEM  {gz_name(name)}: {problem}")
    return 0 if all(p is None for p in report.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
