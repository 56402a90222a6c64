"""One writer per shot folder: an advisory lock held for the whole job.

``.sora.lock`` in the shot folder is locked with ``fcntl.lockf`` (POSIX record locks, which NFS
carries through its lock manager; ``msvcrt.locking`` on Windows) and names its holder (host,
pid, started). A second job into a locked folder fails at once with ``shot_locked`` (exit 75,
retry later) naming the holder. The system drops a lock when its process dies, so a lock file
left by a killed job is simply taken over. Limits: a lock only binds jobs that take it (other
tools can still write the folder); on NFS it needs a working lock manager (``nolock`` mounts
lock nothing), and a client that loses its server keeps the lock until the server's grace
period ends. Light half: standard library only.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

from .errors import SoraError
from .safe_write import Folder, os_failure

LOCK_NAME = ".sora.lock"
_HELD: set[tuple[int, int]] = set()     # POSIX locks are per process: ours are kept here too
_HELD_LOCK = threading.Lock()

try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.lockf(fd, fcntl.LOCK_UN)
except ImportError:         # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, 0)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


class ShotLock:
    """The lock of one shot folder; ``with ShotLock(folder):`` holds it for the block."""

    def __init__(self, folder: Folder):
        self.folder = folder
        self.fd = -1
        self.key: tuple[int, int] | None = None

    def acquire(self) -> "ShotLock":
        for _ in range(20):         # the file was replaced between open and lock: open it again
            try:
                fd = self.folder.open_file(LOCK_NAME, os.O_RDWR | os.O_CREAT)
            except OSError as exc:
                raise os_failure(exc, self.folder.path) from None
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino)
            with _HELD_LOCK:
                mine = key in _HELD
                locked = not mine and _try_lock(fd)
                if locked:
                    _HELD.add(key)
            if not locked:
                holder = _holder(fd)
                os.close(fd)
                raise self._busy(holder)
            if self._still_named(key):
                self.fd, self.key = fd, key
                info = {"host": socket.gethostname(), "pid": os.getpid(),
                        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
                return self
            self._drop(fd, key)
        raise SoraError("shot_locked", f"{self.folder.path}: its lock file keeps changing",
                        hint="another tool is replacing .sora.lock; retry later")

    def release(self) -> None:
        """Remove the lock file, then unlock (whoever opens it after finds a new file)."""
        if self.fd < 0:
            return
        self.folder.unlink(LOCK_NAME)
        self._drop(self.fd, self.key)
        self.fd, self.key = -1, None

    def __enter__(self) -> "ShotLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _still_named(self, key) -> bool:
        try:
            st = os.stat(LOCK_NAME, dir_fd=self.folder.fd, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == key

    @staticmethod
    def _drop(fd: int, key) -> None:
        with _HELD_LOCK:
            _HELD.discard(key)
            try:
                _unlock(fd)
            finally:
                os.close(fd)

    def _busy(self, holder: dict) -> SoraError:
        who = ", ".join(f"{k} {holder[k]}" for k in ("host", "pid", "started") if holder.get(k))
        return SoraError("shot_locked", f"{self.folder.path} is being written by another job "
                         f"({who or 'holder unknown'})",
                         hint="wait for that job to end and retry, or write another folder")


def _holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
