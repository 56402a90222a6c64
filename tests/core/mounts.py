"""Real file-system conditions for tests: a small tmpfs (a disk that fills up) and a folder that
turns read-only under a running job. Root mounts them; anyone else gets chmod where that is
enough, and a clean skip where a mount is needed."""

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextmanager
def small_tmpfs(folder: Path, size: str = "64m"):
    """``folder`` as a fresh tmpfs of ``size`` (root only; skipped otherwise)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a tmpfs needs root")
    done = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@contextmanager
def read_only(folder: Path):
    """Make ``folder`` read-only, also for files already open in it: chmod, or for root (who
    ignores modes) a remount of the tmpfs ``folder`` is (see :func:`small_tmpfs`) read-only."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    done = _mount("-o", "remount,ro", str(folder))
    if done.returncode != 0:
        pytest.skip(f"cannot remount {folder} read-only: {done.stderr.strip()}")
    try:
        yield
    finally:
        _mount("-o", "remount,rw", str(folder))


@contextmanager
def writable_mount(folder: Path, size: str = "256m"):
    """``folder`` on its own tmpfs for root (so :func:`read_only` can remount it); as it is for
    anyone else (chmod is enough)."""
    if os.geteuid() != 0:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with small_tmpfs(folder, size):
        yield folder


@contextmanager
def failing_writes(folder: Path):
    """From now on writes into ``folder`` fail: read-only by chmod for a user; for root (whom
    modes do not stop, and whose open files keep a tmpfs from turning read-only) the tmpfs
    ``folder`` is filled up. Yields the error code the job must end with."""
    if os.geteuid() != 0:
        with read_only(folder):
            yield "invalid_input"
        return
    with open(folder / ".filler", "wb") as fh:
        try:
            while True:
                fh.write(bytes(1 << 20))
                fh.flush()
        except OSError:
            pass
    try:
        yield "disk_full"
    finally:
        (folder / ".filler").unlink(missing_ok=True)
