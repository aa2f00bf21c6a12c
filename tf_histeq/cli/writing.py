"""Writing outputs without loss: complete-or-nothing files, durable, with temporary names that fit and are ours.

Pure Python, no TensorFlow.

- `write_atomic` puts a file in place complete or not at all (its data on the
  disk before it takes its name), and never replaces an existing file unless
  asked to; `stage` and `commit` are its two halves, for a writer that syncs
  files in several threads and names them in order in one.
- Its temporary files are named `.tf-histeq-RANDOM-NAME.tmp` (`TEMP_PREFIX`),
  cut to fit the file system's name limit whatever the output's name, and
  locked while written; `remove_stale` deletes those that a killed run (kill -9,
  a power loss) left behind, and only those.
- `sync_folders` makes the new names durable once a run has written them.
- `fit_name` shortens a derived name (a `--compare` figure's) to the limit.
- `case_insensitive` tells whether a folder's file system ignores letter case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
import re
import secrets
import time

try:  # POSIX; elsewhere temporary files are not locked, and stale ones are reported, not removed
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

TEMP_PREFIX = ".tf-histeq-"
_TEMP_RANDOM = 8  # hex digits after the prefix
_TEMP = re.compile(re.escape(TEMP_PREFIX) + "[0-9a-f]{" + str(_TEMP_RANDOM) + r"}-.*\.tmp\Z", re.DOTALL)
NAME_MAX = 255  # bytes in a file name, where the file system does not say (ext4, XFS, APFS, NTFS)
# A temporary file younger than this may belong to a run that has created it and not locked it yet.
STALE_AFTER_S = 2.0

# errno values of a file system that has no hard links (FAT, some FUSE, SMB and network mounts).
_NO_HARD_LINKS = frozenset(
    getattr(errno, name)
    for name in ("EPERM", "ENOTSUP", "EOPNOTSUPP", "EXDEV", "EMLINK", "ENOSYS")
    if hasattr(errno, name)
)


def name_max(folder: str) -> int:
    """The longest file name, in bytes, that `folder` (or its nearest existing parent) accepts."""
    while folder and not os.path.isdir(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    try:
        return int(os.pathconf(folder or ".", "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _cut(name: str, size: int) -> str:
    """The longest start of `name` that takes at most `size` bytes on disk, cut between characters."""
    raw = os.fsencode(name)[:size]
    try:
        os.fsencode(name).decode("utf-8")
    except UnicodeDecodeError:  # not UTF-8 to begin with: cut the bytes as they are
        return os.fsdecode(raw)
    return raw.decode("utf-8", "ignore")


def fit_name(path: str, suffix: str) -> str:
    """`path + suffix`, or, if that name is too long for its folder, a shortened one that keeps `suffix`.

    The shortened name is the start of the file name, `~`, and 8 hex digits of
    its hash (so two long names that start alike stay apart), then `suffix`.

    Example:
        >>> fit_name("out/a.png", ".compare.png")
        'out/a.png.compare.png'
        >>> long = fit_name("out/" + "é" * 120 + ".png", ".compare.png")  # 244 + 12 bytes: one too many
        >>> len(os.path.basename(long).encode()), long.endswith(".compare.png"), long[4:7]
        (255, True, 'ééé')
    """
    folder, name = os.path.split(path)
    limit = name_max(folder)
    if len(os.fsencode(name + suffix)) <= limit:
        return path + suffix
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:8]
    return os.path.join(folder, _cut(name, limit - len(os.fsencode(suffix)) - 9) + "~" + digest + suffix)


def temp_name(path: str) -> str:
    """A fresh temporary name for `path` in its folder: `.tf-histeq-RANDOM-NAME.tmp`, NAME cut to fit."""
    folder, name = os.path.split(path)
    head = f"{TEMP_PREFIX}{secrets.token_hex(_TEMP_RANDOM // 2)}-"
    room = name_max(folder) - len(head) - len(".tmp")
    return os.path.join(folder, head + _cut(name, room) + ".tmp")


def is_temp_name(name: str) -> bool:
    """True if `name` has the form of this module's temporary files."""
    return bool(_TEMP.match(name))


def _lock(fd: int, *, wait: bool) -> bool | None:
    """Lock an open file exclusively; True if locked, False if another holds it, None if it cannot be told."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None  # no locks on this file system
    return True


@dataclasses.dataclass
class Staged:
    """An output written under its temporary name, synced to the disk and locked, waiting for `commit`."""

    path: str  # the final name
    tmp: str
    file: object  # the open temporary file, which holds the lock


def stage(path: str, data: bytes) -> Staged:
    """Write `data` to a fresh temporary file next to `path` (`temp_name`), lock it and sync it to the disk.

    The first half of `write_atomic`, which a thread can do while another names
    the files staged before (`commit`). If it fails, nothing is left behind.

    Raises:
        OSError: If the folder or the file cannot be written (a full disk, a
            read-only folder).
    """
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = temp_name(path)
    f = open(tmp, "xb")  # noqa: SIM115 - kept open (and locked) until `commit` or `discard`
    staged = Staged(path, tmp, f)
    try:
        _lock(f.fileno(), wait=True)  # held until the file is closed, after it has its name
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    except BaseException:
        discard(staged)
        raise
    return staged


def commit(staged: Staged, *, overwrite: bool) -> bool:
    """Give a staged file its name (see `write_atomic`); True if written, False if the name was taken and kept.

    The temporary name is removed whatever happens.

    Raises:
        OSError: If the name cannot be given (a read-only folder).
    """
    try:
        if fcntl is not None:  # POSIX: named while open (and locked)
            return _take_name(staged.tmp, staged.path, overwrite)
        staged.file.close()  # Windows renames closed files only
        return _take_name(staged.tmp, staged.path, overwrite)
    finally:
        discard(staged)


def discard(staged: Staged) -> None:
    """Close a staged file and remove its temporary name (if it is still there); never raises."""
    with contextlib.suppress(Exception):
        staged.file.close()
    with contextlib.suppress(OSError):
        os.unlink(staged.tmp)


def write_atomic(path: str, data: bytes, *, overwrite: bool) -> bool:
    """Put `data` at `path` complete or not at all; without `overwrite`, never replace a file there.

    The data goes to a temporary file in the same folder (`temp_name`), locked
    while it exists, and is flushed to the disk (`os.fsync`) before the file
    takes its name in one step (`stage`, then `commit`), so that after a crash
    or a power loss the name holds the complete data or does not exist
    (`sync_folders` then makes the name itself durable). With `overwrite` that
    step is `os.replace`. Without it, the step is `os.link`, which fails if
    anything has the name, even a file another process put there a moment ago:
    two runs writing the same output cannot overwrite each other, and one of
    them finds the output done. On a file system without hard links (FAT, some
    network and FUSE mounts) it falls back to checking that the name is free
    and then renaming: still complete-or-nothing, but with a short window in
    which a file created by another process at that instant could be replaced.

    The temporary file is removed whatever happens, Ctrl-C included; one left
    by a killed process is removed by the next run (`remove_stale`).

    Args:
        path: The final file name; its folder is created if missing.
        data: The complete contents.
        overwrite: Replace an existing file at `path`.

    Returns:
        True if `path` was written; False if something already had the name
        (then nothing is written and nothing is left behind).

    Raises:
        OSError: If the folder or the file cannot be written (a full disk, a
            read-only folder).

    Example:
        >>> import os, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp(), "out", "a.png")
        >>> write_atomic(str(path), b"first", overwrite=False), write_atomic(str(path), b"second", overwrite=False)
        (True, False)
        >>> path.read_bytes(), os.listdir(path.parent)
        (b'first', ['a.png'])
    """
    return commit(stage(path, data), overwrite=overwrite)


def _take_name(tmp: str, path: str, overwrite: bool) -> bool:
    """Give the temporary file `tmp` the name `path` in one step; False if the name is taken and kept."""
    if overwrite:
        os.replace(tmp, path)
        return True
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as err:
        if err.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(path):
            return False
        os.replace(tmp, path)
    return True


def remove_stale(folders) -> tuple[list[str], list[str]]:
    """Remove the temporary files that killed runs left in `folders`; return `(removed, unsure)` paths.

    A file counts as left behind if its name is one of `temp_name`'s, it is a
    plain file (not a link), it is older than `STALE_AFTER_S`, and nobody holds
    its lock: a run that is still writing it holds the lock until the file has
    its name and is gone. Where locks do not work (some network file systems,
    Windows) such files are listed in `unsure`, not removed.
    """
    removed, unsure = [], []
    now = time.time()
    for folder in folders:
        try:
            entries = [entry for entry in os.scandir(folder) if is_temp_name(entry.name)]
        except OSError:
            continue
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False) or now - entry.stat(follow_symlinks=False).st_mtime < (
                    STALE_AFTER_S
                ):
                    continue
                fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            except OSError:
                continue
            try:
                locked = _lock(fd, wait=False)
                if locked is None:
                    unsure.append(entry.path)
                elif locked:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed.append(entry.path)
            finally:
                os.close(fd)
    return removed, unsure


def sync_folders(folders) -> None:
    """`fsync` each folder, so that the names written into it survive a power loss (where the OS allows)."""
    for folder in folders:
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            continue
        try:
            with contextlib.suppress(OSError):  # not every file system (or OS) syncs folders
                os.fsync(fd)
        finally:
            os.close(fd)


def case_insensitive(folder: str) -> bool:
    """True if the file system of `folder` (created if missing) treats names differing in case as one.

    Found by creating a temporary file with a lower-case name and looking for
    its upper-case twin. If the probe cannot be written, True: the caller then
    refuses names that differ only in case, which loses nothing.
    """
    try:
        os.makedirs(folder, exist_ok=True)
        probe = temp_name(os.path.join(folder, "case-probe"))
        with open(probe, "xb"):
            pass
    except OSError:
        return True
    try:
        head, name = os.path.split(probe)
        return os.path.lexists(os.path.join(head, name.upper()))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
