"""What the command line reads and where it may write: the input listing, the output folder, the output guard.

Pure Python, no TensorFlow.

- `check_output` refuses an `-o` that cannot be an output folder, before anything runs.
- `collect` lists the input files, and every path it leaves out with the reason
  (`Listing.skipped`), and every path it cannot read (`Listing.failed`).
- `guard` fails each job whose output would land inside an input folder or on
  an input file, however the output path gets there (symbolic links inside the
  output folder included).

Symbolic links in input folders: a link to a file is read as a file of the
folder (its output is named after the link, so a file and a link to it give an
output each); a link to a folder is not followed (no loops, nothing outside the
tree, as `find` and `rsync` do by default), and is reported: name it on the
command line to include it. Hidden names (starting with `.`) and names without
an image or volume extension (`files.IMAGE_EXTENSIONS`, `files.VOLUME_NAMES`)
are reported and left out; a path with an image extension
that is not a plain file (a named pipe, a device, a socket) fails without being
opened, as does a folder that cannot be listed.
"""

from __future__ import annotations

import dataclasses
import os
import stat

from tf_histeq.cli.files import IMAGE_EXTENSIONS, VOLUME_NAMES, Job, UsageError

KNOWN = "PNG, JPEG, BMP, GIF, NIfTI or TIFF"  # the files listed in folders, for messages
_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def _inside(path: str, folder: str) -> bool:
    """True if `path` is `folder` or lies inside it (both already resolved)."""
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


def shown(path: str) -> str:
    r"""`path` for messages: bytes that are not UTF-8 (a Latin-1 name) as `\xNN`, never an encoding error."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclasses.dataclass
class Listing:
    """The input files, and the paths left out.

    `pairs` are `(source, output path relative to the output folder)`;
    `skipped` and `failed` are `(path, reason)`: left out on purpose, and
    inputs that cannot be read (the run exits 1). `folders` and `files` are the
    resolved inputs, for `guard`.
    """

    pairs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    folders: set[str] = dataclasses.field(default_factory=set)
    files: set[str] = dataclasses.field(default_factory=set)


def check_output(output: str) -> None:
    """Refuse an `-o` that is empty, a file, a dangling link, or a folder that cannot be created.

    Raises:
        UsageError: Saying what is wrong with the path.
    """
    if not output:
        raise UsageError("the output folder (-o) is empty; name a folder")
    if os.path.islink(output) and not os.path.exists(output):
        raise UsageError(f"the output {shown(output)!r} is a symbolic link to nothing; choose another -o")
    if os.path.exists(output):
        if not os.path.isdir(output):
            raise UsageError(f"the output {shown(output)!r} exists and is not a folder")
        return
    parent = os.path.dirname(os.path.abspath(output))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        kind = "a symbolic link to nothing" if not os.path.exists(parent) else "not a folder"
        raise UsageError(f"cannot create the output folder {shown(output)!r}: {shown(parent)!r} is {kind}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create the output folder {shown(output)!r}: {shown(parent)!r} is not writable")


def _not_plain(path: str) -> str | None:
    """Why `path` (links followed) is not a plain file that can be read without blocking, or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # missing or unreadable: the reader reports it with the reason
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
    return f"not a plain file ({kind}); left unopened"


def _walk(folder: str, recursive: bool, found: list, listing: Listing) -> None:
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as err:
        listing.failed.append((folder, f"cannot list the folder ({err.strerror or err})"))
        return
    for entry in entries:
        path = entry.path
        if entry.name.startswith("."):
            listing.skipped.append((path, "a hidden name"))
            continue
        try:
            is_dir = entry.is_dir()
            is_link = entry.is_symlink()
        except OSError:
            is_dir = is_link = False
        if is_dir and is_link:
            listing.skipped.append((path, "a symbolic link to a folder (not followed; name it as an input)"))
        elif is_dir and recursive:
            _walk(path, recursive, found, listing)
        elif is_dir:
            listing.skipped.append((path, "a subfolder (add --recursive to search it)"))
        elif not entry.name.lower().endswith(IMAGE_EXTENSIONS + VOLUME_NAMES):
            listing.skipped.append((path, f"not a {KNOWN} name"))
        else:
            found.append(path)


def collect(inputs: list[str], recursive: bool, output: str, *, role: str = "input", per_file: bool = False) -> Listing:
    """List every input file, with its output path relative to the output folder, and every path left out.

    Folders contribute their PNG, JPEG, BMP, GIF, NIfTI and TIFF files by extension, with
    their subfolders if `recursive` (see the module's rules for hidden names,
    links and other files); a file named on the command line is taken whatever
    its name. A file reached twice for the same output is listed once; with
    `per_file`, a file reached twice is listed once whatever its names (for a
    pooled reference). `role` names the items in messages: `"input"`, or the
    option they came from (`"--reference"`).

    Raises:
        UsageError: If an input does not exist, a folder holds no image, the
            output is a file, or the output folder and an input contain each other.
    """
    check_output(output)
    out_real = os.path.realpath(output)
    listing, seen = Listing(), {}
    for item in inputs:
        if not os.path.exists(item):
            raise UsageError(f"{role} {shown(item)!r} does not exist")
        real = os.path.realpath(item)
        if os.path.isdir(item) and _inside(out_real, real):
            raise UsageError(
                f"the output folder {shown(output)!r} is the {role} folder {shown(item)!r} or inside it; "
                "choose an output folder outside every input"
            )
        if _inside(real, out_real):
            raise UsageError(f"{role} {shown(item)!r} is inside the output folder {shown(output)!r}; choose another -o")
        if os.path.isdir(item):
            listing.folders.add(real)
            found: list[str] = []
            failed = len(listing.failed)
            _walk(item, recursive, found, listing)
            if len(listing.failed) > failed and listing.failed[failed][0] == item:
                raise UsageError(f"cannot list the {role} folder {shown(item)!r} ({listing.failed.pop()[1]})")
            if not found and len(listing.failed) == failed:
                more = "" if recursive else " (add --recursive to search its subfolders)"
                raise UsageError(f"no {KNOWN} files in the {role} folder {shown(item)!r}{more}")
            candidates = [(path, os.path.relpath(path, item)) for path in found]
        else:
            candidates = [(item, os.path.basename(item))]
        for path, rel in candidates:
            why = _not_plain(path)
            if why is not None:
                listing.failed.append((path, why))
                continue
            file_real = os.path.realpath(path)
            listing.files.add(file_real)
            key = file_real if per_file else (file_real, rel)
            if key in seen:
                if seen[key] != path:
                    listing.skipped.append((path, f"the same file as {shown(seen[key])!r}, read once"))
                continue
            seen[key] = path
            listing.pairs.append((path, rel))
    return listing


def guard(jobs: list[Job], listing: Listing, also: Listing | None = None) -> None:
    """Fail the jobs whose output (or figure) would land inside an input folder or on an input file.

    Each output's folder is resolved (`os.path.realpath`, links followed), so a
    symbolic link inside the output folder that leads into an input folder is
    caught: nothing is written through it. `also` adds a second listing's
    inputs (`match --reference`).
    """
    folders = set(listing.folders) | (also.folders if also else set())
    files = set(listing.files) | (also.files if also else set())
    resolved: dict[str, str] = {}
    for job in jobs:
        if job.error is not None or not job.output:
            continue
        for target in [job.output] + ([job.figure] if job.figure else []):
            parent, name = os.path.split(target)
            if parent not in resolved:
                resolved[parent] = os.path.realpath(parent or ".")
            real = os.path.join(resolved[parent], name)
            inside = next((folder for folder in sorted(folders) if _inside(real, folder)), None)
            if inside is not None or real in files:
                where = f"inside the input folder {shown(inside)!r}" if inside else "on an input file"
                job.error = (
                    f"its output {shown(target)!r} resolves to {shown(real)!r}, {where} (a symbolic link in the "
                    "output folder?); nothing is written there"
                )
                job.skip = False
                break
