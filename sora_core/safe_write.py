"""Writes that cannot be redirected: files made inside a folder held open, never through a link.

Shot folders live on shared storage that many people and machines write. A :class:`Folder` is
opened once, walking down from a base folder one name at a time without following links, and
every file is then made relative to that descriptor: a temporary file with a random name,
created exclusively (``O_CREAT|O_EXCL|O_NOFOLLOW``), written through the descriptor, hashed,
and renamed over its final name in the same folder (a link planted under that name is replaced,
never followed). Before each rename the folder's path is checked to still lead to the folder
held open, so a folder swapped for a link while a shot runs fails the job (exit 2, naming the
path) instead of sending frames elsewhere. Operating-system failures become SoraErrors with the
documented codes (:func:`os_failure`). Light half: standard library only.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from pathlib import Path
from typing import Callable

from .errors import SoraError, invalid

TEMP_MARK = ".sora-tmp-"        # hidden temporary names: ".<name>.sora-tmp-<random>"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | _DIRECTORY | _CLOEXEC
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)


def os_failure(exc: OSError, where: str | os.PathLike, needed_mb: float | None = None) -> SoraError:
    """The SoraError for an operating-system failure while writing ``where``: a full disk or
    quota is ``disk_full`` (exit 75, worth a retry once space is freed), a folder the user may
    not write is ``invalid_input`` (exit 2) naming it; anything else stays ``internal``."""
    if isinstance(exc, SoraError):
        return exc
    if exc.errno in DISK_FULL:
        free = f"free at least {max(1, round(needed_mb))} MB" if needed_mb else "free some space"
        return SoraError("disk_full", f"no space left on the device writing {where}: {free} there",
                         hint="finished passes are kept; run the same spec again to resume")
    if exc.errno in NOT_ALLOWED:
        return invalid("output.dir", f"cannot write in {where}: {os.strerror(exc.errno).lower()}",
                       hint="choose a folder you may write, or ask for write permission")
    return SoraError("internal", f"writing {where} failed: {exc}")


class Folder:
    """A folder held open by descriptor; every file of it is made relative to that descriptor."""

    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, path
        st = os.fstat(fd)
        self._id = (st.st_dev, st.st_ino)

    @classmethod
    def open(cls, base: str | os.PathLike, below: str | os.PathLike = "", create: bool = True) -> "Folder":
        """``base`` (followed, it is the user's choice), then each name of ``below`` opened without
        following links (created when missing and ``create``); a link or a file on the way is
        refused with exit 2 naming it."""
        base = Path(base)
        try:
            if create:
                base.mkdir(parents=True, exist_ok=True)
            fd = os.open(base, _DIR_FLAGS)
        except FileExistsError:
            raise invalid("output.dir", f"{_first_file(base)} is a file, not a folder") from None
        except NotADirectoryError:
            raise invalid("output.dir", f"{_first_file(base)} is a file, not a folder") from None
        except OSError as exc:
            raise os_failure(exc, base) from None
        path = base
        for name in Path(below).parts:     # each step closes its parent, also when it fails
            path = path / name
            fd = _step(fd, name, path, create)
        return cls(fd, path)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Folder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def verify(self) -> None:
        """The folder's path still leads to the folder held open (no component was swapped)."""
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != self._id:
            raise invalid("output.dir", f"{self.path} was moved, removed or replaced by a link while "
                          "the shot was written; nothing more is written there",
                          hint="keep shot folders in place while a job writes them")

    # -- files --------------------------------------------------------------------------------
    def write(self, name: str, fill: Callable[[int, str], None]) -> str:
        """Make ``name`` atomically: ``fill(fd, target)`` writes the content, either through the
        file descriptor ``fd`` or by opening ``target`` (a path to the same open file where the
        system has one, for libraries that want a file name). Returns the content's sha256."""
        tmp = f".{name}{TEMP_MARK}{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666,
                         dir_fd=self.fd)
        except OSError as exc:
            raise os_failure(exc, self.path) from None
        try:
            try:
                fill(fd, _fd_path(fd, self.path / tmp))
                os.fsync(fd)
                digest = _sha256_fd(fd)
            except OSError as exc:
                raise os_failure(exc, self.path / name) from None
            finally:
                os.close(fd)
            self.verify()
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            self.unlink(tmp)
            raise
        return digest

    def write_bytes(self, name: str, data: bytes) -> str:
        def fill(fd: int, _target: str) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        return self.write(name, fill)

    def unlink(self, name: str) -> None:
        """Remove ``name`` in this folder (a link is removed, not followed); gone already is fine."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except OSError:     # the folder turned read-only or vanished: keep the first error
            pass

    def open_file(self, name: str, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
        """A file of this folder opened without following a link (the caller closes it)."""
        return os.open(name, flags | _NOFOLLOW | _CLOEXEC, mode, dir_fd=self.fd)

    def read_path(self, name: str) -> str:
        """A path that reads ``name`` inside the folder held open (Linux ``/proc/self/fd``),
        whatever became of the folder's path; elsewhere the path itself."""
        return _fd_path(self.fd, self.path) + "/" + name

    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def clear_temporaries(self) -> None:
        """Remove the hidden temporaries a killed job left (call only while holding the lock)."""
        for name in self.names():
            if name.startswith(".") and TEMP_MARK in name:
                self.unlink(name)


def write_file_atomic(path: str | os.PathLike, data: bytes) -> None:
    """``path`` written atomically in its (existing) folder: random exclusive temporary, rename."""
    path = Path(path)
    with Folder.open(path.parent, create=False) as folder:
        folder.write_bytes(path.name, data)


def probe_errno(fd: int) -> OSError | None:
    """Whether the disk still takes data: write a little past the end of the open file (cut
    off again) and return the system's own error (full disk, quota), if any. Libraries that
    write by name (OpenImageIO) say a write failed but not why, and may lose a failed final
    flush entirely; this asks the system."""
    size = os.fstat(fd).st_size
    try:
        os.pwrite(fd, bytes(1 << 16), size)
    except OSError as exc:
        return exc
    finally:
        os.ftruncate(fd, size)
    return None


def _step(parent: int, name: str, path: Path, create: bool) -> int:
    """Open ``name`` inside ``parent`` (closed here) without following a link."""
    try:
        if name in ("..", "."):
            raise invalid("output.dir", f"{path}: '.' and '..' are not allowed here")
        try:
            return os.open(name, _DIR_FLAGS | _NOFOLLOW, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(name, 0o777, dir_fd=parent)
            except FileExistsError:
                pass
            return os.open(name, _DIR_FLAGS | _NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise invalid("output.dir", f"{path} is a link; shot folders are written without "
                          "following links", hint="give the real folder") from None
        if isinstance(exc, (NotADirectoryError, FileExistsError)):
            raise invalid("output.dir", f"{path} is a file, not a folder") from None
        raise os_failure(exc, path.parent) from None
    finally:
        os.close(parent)


def _first_file(path: Path) -> Path:
    """The first component of ``path`` that exists and is not a folder (for the message)."""
    for part in reversed([path, *path.parents]):
        if part.exists() and not part.is_dir():
            return part
    return path


def _fd_path(fd: int, fallback: Path) -> str:
    """A file name that opens the very file ``fd`` is (Linux ``/proc/self/fd``), else its path."""
    proc = f"/proc/self/fd/{fd}"
    return proc if os.path.exists(proc) else str(fallback)


def _sha256_fd(fd: int, chunk: int = 1 << 20) -> str:
    digest, offset = hashlib.sha256(), 0
    while block := os.pread(fd, chunk, offset):
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()
