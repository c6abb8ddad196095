"""The MNIST loader (coursekit.mnist): real data, directory resolution, corrupt files, opt-in download.

Real files come from ``../shared/data/mnist`` next to the repository. Corruption and download tests use the
small test split or tiny synthetic IDX files (with their checksums passed in) to stay fast.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit import mnist
from coursekit.course import DEFAULT_COURSE_FILE, MNIST_FILES, load_course
from coursekit.mnist import MnistDataError

REPO = Path(__file__).resolve().parents[1]
REAL_DIR = (REPO / ".." / "shared" / "data" / "mnist").resolve()
TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = MNIST_FILES

needs_real = pytest.mark.skipif(not (REAL_DIR / f"{TEST_LABELS}.gz").is_file(),
                                reason=f"MNIST files not found in {REAL_DIR}")


# -- helpers -------------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray, magic: Optional[int] = None, dims: Optional[tuple[int, ...]] = None) -> bytes:
    """Uncompressed IDX bytes for a uint8 array (``magic``/``dims`` override the header to forge bad files)."""
    dims = array.shape if dims is None else dims
    magic = (0x0800 | len(dims)) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in dims)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gz(path: Path, data: bytes, level: int = 6) -> str:
    """Write gzip-compressed ``data``; return the SHA-256 of the uncompressed bytes."""
    path.write_bytes(gzip.compress(data, compresslevel=level, mtime=0))
    return hashlib.sha256(data).hexdigest()


def synthetic_mnist(directory: Path, n_train: int = 6, n_test: int = 4, seed: int = 0) -> dict[str, str]:
    """Four tiny valid MNIST-like files; returns their checksum mapping."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        TRAIN_IMAGES: rng.integers(0, 256, (n_train, 28, 28)), TRAIN_LABELS: rng.integers(0, 10, n_train),
        TEST_IMAGES: rng.integers(0, 256, (n_test, 28, 28)), TEST_LABELS: rng.integers(0, 10, n_test),
    }
    return {name: write_gz(directory / f"{name}.gz", idx_bytes(a.astype(np.uint8))) for name, a in arrays.items()}


def touch_all(directory: Path, names=MNIST_FILES) -> Path:
    """A directory that merely *holds* the files (enough for resolve_mnist_dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / f"{name}.gz").write_bytes(b"")
    return directory


def link_real(directory: Path, names=MNIST_FILES) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / f"{name}.gz").symlink_to(REAL_DIR / f"{name}.gz")
    return directory


def real_labels_gz() -> bytes:
    return (REAL_DIR / f"{TEST_LABELS}.gz").read_bytes()


def flipped_labels_gz() -> bytes:
    """The real test labels with the first label changed (still 0-9), recompressed: only the checksum can tell."""
    data = bytearray(gzip.decompress(real_labels_gz()))
    data[8] = (data[8] + 1) % 10
    return gzip.compress(bytes(data), mtime=0)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part") or p.name.startswith("."))


@pytest.fixture
def course_yml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point COURSE_YML at a fresh copy of course.yml with chosen data settings; isolate env and cache."""
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    raw = yaml.safe_load(DEFAULT_COURSE_FILE.read_text(encoding="utf-8"))
    counter = iter(range(1000))

    def write(mnist_dir: Optional[str] = "no-such-dir", mnist_url: Optional[str] = None) -> Path:
        raw["data"]["mnist_dir"] = mnist_dir
        raw["data"]["mnist_url"] = mnist_url
        path = tmp_path / f"course{next(counter)}" / "course.yml"  # fresh path: load_course caches by path
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        monkeypatch.setenv("COURSE_YML", str(path))
        return path

    write()
    return write


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


class _LyingLengthHandler(_QuietHandler):
    """Announces the full Content-Length, sends half, then closes: a dropped connection."""

    def do_GET(self) -> None:
        body = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True


@contextlib.contextmanager
def serve(directory: Path, handler: type = _QuietHandler) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (free port) serving ``directory``; yields its base URL."""

    class Handler(handler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mnist"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """Document root of the test server; files go under ``site/mnist``."""
    (tmp_path / "site" / "mnist").mkdir(parents=True)
    return tmp_path / "site"


# -- the real data -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_mnist():
    if not (REAL_DIR / f"{TRAIN_IMAGES}.gz").is_file():
        pytest.skip(f"MNIST files not found in {REAL_DIR}")
    return mnist.load_mnist(REAL_DIR)


def test_real_mnist_shapes_dtypes_and_labels(real_mnist) -> None:
    train_images, train_labels, test_images, test_labels = real_mnist
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert train_labels.shape == (60000,) and test_labels.shape == (10000,)
    for images in (train_images, test_images):
        assert images.dtype == np.uint8 and images.min() == 0 and images.max() == 255
        assert images.flags.writeable and images.flags.c_contiguous
    for labels in (train_labels, test_labels):
        assert labels.dtype in (np.uint8, np.int64)
        assert set(np.unique(labels).tolist()) == set(range(10))
    # the well-known first labels of each split
    assert train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert real_mnist.test_images is test_images  # named fields too


@needs_real
def test_course_checksums_match_the_shared_sha256sums_and_the_files() -> None:
    listed = dict(line.split()[::-1] for line in (REAL_DIR / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert dict(load_course(DEFAULT_COURSE_FILE).data.mnist_sha256) == listed
    for name in (TEST_IMAGES, TEST_LABELS):  # independent of the loader
        digest = hashlib.sha256(gzip.decompress((REAL_DIR / f"{name}.gz").read_bytes())).hexdigest()
        assert digest == listed[name]
    assert mnist.verify_mnist(REAL_DIR, names=[TEST_IMAGES, TEST_LABELS]) == {TEST_IMAGES: None, TEST_LABELS: None}


@needs_real
def test_default_course_yml_points_at_the_shared_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.delenv("COURSE_YML", raising=False)
    assert mnist.resolve_mnist_dir().resolve() == REAL_DIR


# -- directory resolution ------------------------------------------------------------------------

def test_resolution_order_argument_env_course_cache(tmp_path: Path, course_yml, monkeypatch) -> None:
    arg, env, data, cache = (touch_all(tmp_path / d) for d in ("arg", "env", "data", "xdg-cache/convnets-course/mnist"))
    course_yml("../data")  # relative to course.yml's own directory
    monkeypatch.setenv("MNIST_DIR", str(env))
    assert mnist.resolve_mnist_dir(arg) == arg
    assert mnist.resolve_mnist_dir() == env
    monkeypatch.delenv("MNIST_DIR")
    assert mnist.resolve_mnist_dir().resolve() == data.resolve()
    shutil.rmtree(data)
    assert mnist.resolve_mnist_dir() == cache


def test_course_dir_lacking_a_file_falls_through_to_the_cache(tmp_path: Path, course_yml) -> None:
    course_yml(str(touch_all(tmp_path / "data", names=MNIST_FILES[:3])))  # absolute path, one file short
    cache = touch_all(tmp_path / "xdg-cache" / "convnets-course" / "mnist")
    assert mnist.resolve_mnist_dir() == cache


def test_cache_defaults_to_home_dot_cache(tmp_path: Path, course_yml, monkeypatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cache = touch_all(tmp_path / "home" / ".cache" / "convnets-course" / "mnist")
    assert mnist.user_cache_dir() == cache
    assert mnist.resolve_mnist_dir() == cache


def test_explicit_argument_lacking_a_file_is_an_error_not_a_fallthrough(tmp_path: Path, course_yml, monkeypatch) -> None:
    monkeypatch.setenv("MNIST_DIR", str(touch_all(tmp_path / "env")))
    touch_all(tmp_path / "xdg-cache" / "convnets-course" / "mnist")
    partial = touch_all(tmp_path / "arg", names=[TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES])
    with pytest.raises(MnistDataError) as err:
        mnist.resolve_mnist_dir(partial)
    msg = str(err.value)
    assert str(partial) in msg and f"{TEST_LABELS}.gz" in msg and "data_dir" in msg
    assert "python -m coursekit.mnist download" in msg and "MNIST_DIR" in msg
    with pytest.raises(MnistDataError, match="does not exist"):
        mnist.resolve_mnist_dir(tmp_path / "nowhere")


def test_mnist_dir_lacking_a_file_is_an_error_not_a_fallthrough(tmp_path: Path, course_yml, monkeypatch) -> None:
    course_yml(str(touch_all(tmp_path / "data")))
    env = touch_all(tmp_path / "env", names=[TEST_IMAGES, TEST_LABELS])
    monkeypatch.setenv("MNIST_DIR", str(env))
    with pytest.raises(MnistDataError) as err:
        mnist.resolve_mnist_dir()
    assert "$MNIST_DIR" in str(err.value) and str(env) in str(err.value) and f"{TRAIN_IMAGES}.gz" in str(err.value)
    assert mnist.resolve_mnist_dir(names=[TEST_IMAGES, TEST_LABELS]) == env  # enough for the test split


def test_nothing_found_lists_every_candidate(tmp_path: Path, course_yml) -> None:
    course_yml("data")
    with pytest.raises(MnistDataError) as err:
        mnist.resolve_mnist_dir()
    msg = str(err.value)
    assert "course.yml data.mnist_dir" in msg and str(tmp_path) in msg
    assert str(tmp_path / "xdg-cache" / "convnets-course" / "mnist") in msg
    assert "python -m coursekit.mnist download" in msg


@needs_real
def test_loaders_follow_the_resolution(tmp_path: Path, course_yml, monkeypatch) -> None:
    monkeypatch.setenv("MNIST_DIR", str(link_real(tmp_path / "env", names=[TEST_IMAGES, TEST_LABELS])))
    images, labels = mnist.load_split("test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert np.array_equal(mnist.load_labels("test"), labels)
    with pytest.raises(MnistDataError, match=TRAIN_IMAGES):
        mnist.load_mnist()
    with pytest.raises(ValueError, match="split"):
        mnist.load_split("validation")


# -- corrupt files -------------------------------------------------------------------------------

@pytest.fixture
def labels_dir(tmp_path: Path) -> Path:
    if not (REAL_DIR / f"{TEST_LABELS}.gz").is_file():
        pytest.skip(f"MNIST files not found in {REAL_DIR}")
    d = tmp_path / "labels"
    d.mkdir()
    shutil.copyfile(REAL_DIR / f"{TEST_LABELS}.gz", d / f"{TEST_LABELS}.gz")
    return d


def _labels_error(directory: Path, **kwargs) -> str:
    with pytest.raises(MnistDataError) as err:
        mnist.load_labels("test", directory, **kwargs)
    msg = str(err.value)
    assert str(directory / f"{TEST_LABELS}.gz") in msg  # names the file
    assert "delete it" in msg and "python -m coursekit.mnist download" in msg  # says what to do
    return msg


def test_truncated_file(labels_dir: Path) -> None:
    path = labels_dir / f"{TEST_LABELS}.gz"
    path.write_bytes(real_labels_gz()[:3000])
    assert "truncated" in _labels_error(labels_dir)


def test_garbage_and_empty_files(labels_dir: Path) -> None:
    path = labels_dir / f"{TEST_LABELS}.gz"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    assert "not a valid gzip" in _labels_error(labels_dir)
    path.write_bytes(b"")
    assert "empty file" in _labels_error(labels_dir)
    path.write_bytes(gzip.compress(b"\x00\x00"))
    assert "too short" in _labels_error(labels_dir, verify=False)
    path.write_bytes(gzip.decompress(real_labels_gz()))  # uncompressed where .gz is expected
    assert "not a valid gzip" in _labels_error(labels_dir)


def test_flipped_byte_fails_the_checksum(labels_dir: Path) -> None:
    (labels_dir / f"{TEST_LABELS}.gz").write_bytes(flipped_labels_gz())
    msg = _labels_error(labels_dir)
    assert "SHA-256" in msg and load_course(DEFAULT_COURSE_FILE).data.mnist_sha256[TEST_LABELS] in msg
    labels = mnist.load_labels("test", labels_dir, verify=False)  # the explicit opt-out reads it
    assert labels[0] == 8


def test_a_changed_file_is_verified_again(tmp_path: Path) -> None:
    """Same size, same mtime, same inode: only a real re-check notices the new content."""
    good = idx_bytes(np.arange(40, dtype=np.uint8) % 10)
    bad = bytearray(good)
    bad[-1] = (bad[-1] + 1) % 10
    path = tmp_path / f"{TEST_LABELS}.gz"
    sums = {TEST_LABELS: write_gz(path, good, level=0)}
    before = path.stat()
    assert mnist.load_labels("test", tmp_path, checksums=sums)[-1] == 9
    with open(path, "r+b") as f:  # rewrite in place
        f.write(gzip.compress(bytes(bad), compresslevel=0, mtime=0))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_ino == before.st_ino
    with pytest.raises(MnistDataError, match="SHA-256"):
        mnist.load_labels("test", tmp_path, checksums=sums)


@pytest.mark.parametrize("magic", [0x00000903, 0x08030000, 0x00000800, 0x00000d03])
def test_wrong_magic(tmp_path: Path, magic: int) -> None:
    data = idx_bytes(np.zeros((2, 28, 28), np.uint8), magic=magic, dims=(2, 28, 28))
    sums = {TEST_IMAGES: write_gz(tmp_path / f"{TEST_IMAGES}.gz", data)}
    with pytest.raises(MnistDataError, match=f"{TEST_IMAGES}.gz: bad IDX magic 0x{magic:08x}"):
        mnist.load_images("test", tmp_path, checksums=sums)


def test_magic_of_the_other_kind(tmp_path: Path) -> None:
    """A labels file where images belong (and vice versa) is refused, even with a matching checksum."""
    sums = {TEST_IMAGES: write_gz(tmp_path / f"{TEST_IMAGES}.gz", idx_bytes(np.zeros(3, np.uint8))),
            TEST_LABELS: write_gz(tmp_path / f"{TEST_LABELS}.gz", idx_bytes(np.zeros((3, 28, 28), np.uint8)))}
    with pytest.raises(MnistDataError, match=f"{TEST_IMAGES}.gz: IDX magic 0x00000801 .* magic 0x00000803"):
        mnist.load_images("test", tmp_path, checksums=sums)
    with pytest.raises(MnistDataError, match=f"{TEST_LABELS}.gz: IDX magic 0x00000803 .* magic 0x00000801"):
        mnist.load_labels("test", tmp_path, checksums=sums)
    with pytest.raises(MnistDataError, match="magic 0x00000804"):
        write_gz(tmp_path / f"{TEST_IMAGES}.gz", idx_bytes(np.zeros((3, 28, 28, 1), np.uint8)))
        mnist.load_images("test", tmp_path, verify=False)


@pytest.mark.parametrize("dims, problem", [((3, 28, 28), "short"), ((1, 28, 28), "too long"), ((2, 28), "too long"),
                                           ((2, 28, 27), "too long")])
def test_header_inconsistent_with_the_data(tmp_path: Path, dims, problem: str) -> None:
    data = idx_bytes(np.zeros((2, 28, 28), np.uint8), dims=dims)
    sums = {TEST_IMAGES: write_gz(tmp_path / f"{TEST_IMAGES}.gz", data)}
    with pytest.raises(MnistDataError, match=f"{TEST_IMAGES}.gz: data {problem}"):
        mnist.load_images("test", tmp_path, checksums=sums)


def test_header_cut_short(tmp_path: Path) -> None:
    data = idx_bytes(np.zeros((2, 28, 28), np.uint8))[:10]
    sums = {TEST_IMAGES: write_gz(tmp_path / f"{TEST_IMAGES}.gz", data)}
    with pytest.raises(MnistDataError, match="3 dimensions"):
        mnist.load_images("test", tmp_path, checksums=sums)


def test_wrong_kind_of_content(tmp_path: Path) -> None:
    sums = {TEST_IMAGES: write_gz(tmp_path / f"{TEST_IMAGES}.gz", idx_bytes(np.zeros((2, 27, 28), np.uint8))),
            TEST_LABELS: write_gz(tmp_path / f"{TEST_LABELS}.gz", idx_bytes(np.array([1, 12], np.uint8)))}
    with pytest.raises(MnistDataError, match=r"\(N, 28, 28\)"):
        mnist.load_images("test", tmp_path, checksums=sums)
    with pytest.raises(MnistDataError, match="label 12 outside 0-9"):
        mnist.load_labels("test", tmp_path, checksums=sums)


def test_split_with_unequal_counts(tmp_path: Path) -> None:
    sums = synthetic_mnist(tmp_path)
    sums[TEST_LABELS] = write_gz(tmp_path / f"{TEST_LABELS}.gz", idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(MnistDataError, match="4 images but .* 3 labels"):
        mnist.load_split("test", tmp_path, checksums=sums)
    assert mnist.load_split("train", tmp_path, checksums=sums).images.shape == (6, 28, 28)


def test_missing_file_and_unknown_checksum(tmp_path: Path) -> None:
    sums = synthetic_mnist(tmp_path)
    with pytest.raises(MnistDataError, match=f"{TEST_LABELS}.*no SHA-256|no SHA-256.*{TEST_LABELS}"):
        mnist.load_labels("test", tmp_path, checksums={TRAIN_LABELS: sums[TRAIN_LABELS]})
    (tmp_path / f"{TEST_LABELS}.gz").unlink()
    with pytest.raises(MnistDataError, match=f"{TEST_LABELS}.gz"):
        mnist.load_mnist(tmp_path, checksums=sums)
    report = mnist.verify_mnist(tmp_path, checksums=sums)
    assert report[TRAIN_IMAGES] is None and "not found" in report[TEST_LABELS]


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_read_idx_round_trip(shape: list[int], seed: int) -> None:
    array = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.gz"
        digest = write_gz(path, idx_bytes(array))
        out = mnist.read_idx(path, sha256=digest)
    assert out.dtype == np.uint8 and out.shape == array.shape and np.array_equal(out, array)


_SMALL = idx_bytes(np.random.default_rng(3).integers(0, 256, (3, 28, 28), dtype=np.uint8))
_SMALL_GZ = gzip.compress(_SMALL, mtime=0)


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(0, len(_SMALL_GZ) - 1), pos=st.integers(0, len(_SMALL_GZ) - 1), xor=st.integers(1, 255))
def test_damaged_gz_never_passes_silently(cut: int, pos: int, xor: int) -> None:
    """Any truncation, and any byte flip that changes the content, raises MnistDataError (nothing else)."""
    digest = hashlib.sha256(_SMALL).hexdigest()
    flipped = bytearray(_SMALL_GZ)
    flipped[pos] ^= xor
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{TEST_IMAGES}.gz"
        path.write_bytes(_SMALL_GZ[:cut])
        with pytest.raises(MnistDataError, match=TEST_IMAGES):
            mnist.read_idx(path, sha256=digest)
        path.write_bytes(bytes(flipped))
        try:
            out = mnist.read_idx(path, sha256=digest)
        except MnistDataError as exc:
            assert str(path) in str(exc)
        else:  # a flip in a gzip header field that does not touch the content
            assert out.tobytes() == _SMALL[16:]


# -- opt-in download -----------------------------------------------------------------------------

@needs_real
def test_download_command_fetches_and_verifies_all_files(tmp_path: Path, site: Path, course_yml, no_proxy, capsys) -> None:
    link_real(site / "mnist")
    dest = tmp_path / "dest"
    with serve(site) as url:
        assert mnist.main(["download", "--dest", str(dest), "--url", url + "/"]) == 0
    assert str(dest) in capsys.readouterr().out
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES)  # no leftovers
    assert all(not (dest / f"{n}.gz").is_symlink() for n in MNIST_FILES)
    data = mnist.load_mnist(dest)
    assert data.train_images.shape == (60000, 28, 28) and data.test_labels[:3].tolist() == [7, 2, 1]


@needs_real
def test_corrupt_download_leaves_nothing(tmp_path: Path, site: Path, course_yml, no_proxy) -> None:
    (site / "mnist" / f"{TEST_LABELS}.gz").write_bytes(flipped_labels_gz())
    dest = tmp_path / "dest"
    with serve(site) as url, pytest.raises(MnistDataError) as err:
        mnist.download_mnist(dest, url, names=[TEST_LABELS])
    assert f"{url}/{TEST_LABELS}.gz" in str(err.value) and "SHA-256" in str(err.value)
    assert list(dest.iterdir()) == []


@needs_real
@pytest.mark.parametrize("failure", ["checksum", "truncated body", "dropped connection", "404", "not gzip"])
def test_failed_download_keeps_the_good_file(tmp_path: Path, site: Path, course_yml, no_proxy, failure: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    good = dest / f"{TEST_LABELS}.gz"
    shutil.copyfile(REAL_DIR / f"{TEST_LABELS}.gz", good)
    before = (good.read_bytes(), good.stat().st_mtime_ns, good.stat().st_ino)
    served = site / "mnist" / f"{TEST_LABELS}.gz"
    handler: type = _QuietHandler
    if failure == "checksum":
        served.write_bytes(flipped_labels_gz())
    elif failure == "truncated body":
        served.write_bytes(real_labels_gz()[:2000])
    elif failure == "dropped connection":
        served.write_bytes(real_labels_gz())
        handler = _LyingLengthHandler
    elif failure == "not gzip":
        served.write_bytes(b"<html>rate limited</html>")
    with serve(site, handler) as url, pytest.raises(MnistDataError) as err:
        mnist.download_mnist(dest, url, force=True, names=[TEST_LABELS])
    assert f"{TEST_LABELS}.gz" in str(err.value) and url in str(err.value)
    assert (good.read_bytes(), good.stat().st_mtime_ns, good.stat().st_ino) == before
    assert sorted(p.name for p in dest.iterdir()) == [good.name]


@needs_real
def test_download_keeps_good_files_and_replaces_bad_ones(tmp_path: Path, site: Path, course_yml, no_proxy) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    shutil.copyfile(REAL_DIR / f"{TEST_LABELS}.gz", dest / f"{TEST_LABELS}.gz")
    (site / "mnist" / f"{TEST_LABELS}.gz").write_bytes(flipped_labels_gz())
    with serve(site) as url:
        mnist.download_mnist(dest, url, names=[TEST_LABELS])  # present and good: not fetched
    assert (dest / f"{TEST_LABELS}.gz").read_bytes() == real_labels_gz()

    (dest / f"{TEST_LABELS}.gz").write_bytes(flipped_labels_gz())  # present but bad: fetched again
    (site / "mnist" / f"{TEST_LABELS}.gz").write_bytes(real_labels_gz())
    with serve(site) as url:
        mnist.download_mnist(dest, url, names=[TEST_LABELS])
    assert mnist.verify_mnist(dest, names=[TEST_LABELS]) == {TEST_LABELS: None}
    assert leftovers(dest) == []


def test_download_needs_a_url(tmp_path: Path, course_yml) -> None:
    with pytest.raises(MnistDataError, match="--url"):
        mnist.download_mnist(tmp_path / "dest")
    assert mnist.main(["download", "--dest", str(tmp_path / "dest")]) == 1


def test_download_defaults_url_from_course_and_dest_from_env_then_cache(
        tmp_path: Path, site: Path, course_yml, no_proxy, monkeypatch) -> None:
    sums = synthetic_mnist(site / "mnist")
    with serve(site) as url:
        course_yml(mnist_url=url)
        cache = mnist.download_mnist(names=[TEST_LABELS], checksums=sums)
        assert cache == tmp_path / "xdg-cache" / "convnets-course" / "mnist"
        monkeypatch.setenv("MNIST_DIR", str(tmp_path / "env"))
        assert mnist.download_mnist(names=[TEST_LABELS], checksums=sums) == tmp_path / "env"
    assert (cache / f"{TEST_LABELS}.gz").read_bytes() == (site / "mnist" / f"{TEST_LABELS}.gz").read_bytes()
    assert (tmp_path / "env" / f"{TEST_LABELS}.gz").is_file()


def test_nothing_is_downloaded_implicitly(tmp_path: Path, course_yml, monkeypatch) -> None:
    course_yml(mnist_url="http://127.0.0.1:9/never")

    def no_network(*args, **kwargs):
        raise AssertionError("load_mnist must not download")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with pytest.raises(MnistDataError, match="no MNIST directory holds the files"):
        mnist.load_mnist()


# -- verify command ------------------------------------------------------------------------------

@needs_real
def test_verify_command_reports_each_file(tmp_path: Path, course_yml) -> None:
    d = link_real(tmp_path / "d", names=[TEST_IMAGES, TEST_LABELS])
    (d / f"{TRAIN_LABELS}.gz").write_bytes(b"garbage")
    proc = subprocess.run([sys.executable, "-m", "coursekit.mnist", "verify", str(d)],
                          capture_output=True, text=True, env=os.environ.copy(), cwd=REPO, timeout=60)
    assert proc.returncode == 1, proc.stderr
    lines = {line.split()[1].rstrip(":"): line for line in proc.stdout.splitlines()}
    assert lines[f"{TEST_IMAGES}.gz"].startswith("OK") and lines[f"{TEST_LABELS}.gz"].startswith("OK")
    assert lines[f"{TRAIN_LABELS}.gz"].startswith("PROBLEM") and "not a valid gzip" in lines[f"{TRAIN_LABELS}.gz"]
    assert "not found" in lines[f"{TRAIN_IMAGES}.gz"]


def test_verify_command_on_good_files(tmp_path: Path, capsys, monkeypatch) -> None:
    sums = synthetic_mnist(tmp_path / "d")
    monkeypatch.setattr(mnist, "_course_checksums", lambda: sums)
    assert mnist.main(["verify", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert out.count("OK") == 4 and "PROBLEM" not in out


# -- in a released kit: the README's download command, verbatim ------------------------------------

@needs_real
def test_kit_readme_download_command_fetches_into_the_cache_the_loader_reads(tmp_path: Path, site: Path, no_proxy) -> None:
    """A kit released with a course mirror: `python -m coursekit.mnist download`, as its README says it."""
    from grader.cli import main as grader

    for name in MNIST_FILES:
        shutil.copyfile(REAL_DIR / f"{name}.gz", site / "mnist" / f"{name}.gz")
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_YML", "MNIST_DIR", "PYTHONPATH")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    with serve(site) as url:
        kit = tmp_path / "kit"
        assert grader(["release", str(kit), "--mnist-url", url]) == 0
        readme = (kit / "README.md").read_text(encoding="utf-8")
        assert "\n    python -m coursekit.mnist download\n" in readme and url in readme
        proc = subprocess.run([sys.executable, "-m", "coursekit.mnist", "download"], cwd=kit, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    cache = tmp_path / "cache" / "convnets-course" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES)
    proc = subprocess.run([sys.executable, "-m", "coursekit.mnist", "verify"], cwd=kit, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.count("OK") == 4, proc.stdout + proc.stderr
