"""The course secret: a random key that belongs to the course (not to one run, not to one machine's session).

It seeds what students must not predict but a regrade must reproduce, e.g. the starting weights of the
MNIST training (:mod:`grader.suites.mnist_accuracy`): ``derive_seed(secret, exercise, content_hash)`` is the
same for the same submission in every run, and unknown to anyone without the key.

It lives in the file course.yml's ``integrity.secret_file`` names (relative to course.yml), created on
first use with 32 random bytes (hex, mode 0600). Keep it with the course (a private repository, a backup):
a new key changes every MNIST seed, so regrades are no longer bitwise the same. ``grader release`` never
copies it, and the sandbox's view holds only the submission, the runtime and the allowed packages.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from coursekit.course import Course

SECRET_BYTES = 32


class SecretError(RuntimeError):
    """The secret file exists but cannot be used (unreadable, too short); the message names it."""


def secret_path(course: Course) -> Path:
    return course.resolve(course.integrity.secret_file)


def course_secret(course: Course) -> bytes:
    """The course's key, read from :func:`secret_path`; created there (atomically, 0600) when absent."""
    path = secret_path(course)
    if not path.exists():
        _create(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SecretError(f"the course secret {path} cannot be read ({exc}); restore it from a backup, or delete "
                          f"it to start a new one (MNIST seeds then change)") from None
    if len(key) < 16:
        raise SecretError(f"the course secret {path} holds {len(key)} bytes, expected {SECRET_BYTES}")
    return key


def _create(path: Path) -> None:
    """Write a fresh key next to ``path`` and link it into place: concurrent graders all end with one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".secret-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(SECRET_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # fails if another grader created it first: theirs is kept
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def derive_seed(secret: bytes, *parts: str) -> int:
    """A 63-bit seed from the key and ``parts`` (e.g. exercise id, submission hash): HMAC-SHA256."""
    mac = hmac.new(secret, "\x00".join(parts).encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big") & (2**63 - 1)
