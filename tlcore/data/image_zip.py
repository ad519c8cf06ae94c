"""Read a user's zip of images, one folder per class, into training tensors.

This is the door through which strangers' files enter the app, so it is careful:

- it refuses what is dangerous or unusable as a whole (not a zip, a path that would
  escape the folder, too many files, too many bytes, fewer than two classes, a class
  with no usable images), raising `UploadError` with a message a learner can act on;
- it skips what is merely broken (a corrupt image, a text file, a huge picture) and
  lists each skipped file with the reason, keeping every usable image.

Accepted layouts (the folder names become the class names)::

    cats/a.jpg  dogs/b.png               one folder per class at the top
    pets/cats/a.jpg  pets/dogs/b.png     the same, wrapped in one top-level folder

Korean (or other non-ASCII) names work whether the zip marks them as UTF-8 or was made
by a Windows tool that wrote them in cp949 without saying so.

Every entry is checked before it is read. Each accepted image is then extracted, under a name
the studio chooses (never the zip's path), into the learner's upload folder (`keep_files_in`)
or a temporary one, and decoded from there by the engine's one image decoder. This module
knows nothing about Streamlit: the app passes the uploaded bytes in and shows the result.
"""

from __future__ import annotations

import contextlib
import errno
import io
import stat
import struct
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tlcore.core.messages import LearnerError, Reason
from tlcore.data.datasets import ImageData, check_class_count, check_classes, images_from_files, max_decoded_bytes
from tlcore.data.images import IMAGE_SUFFIXES, open_image

# Files that operating systems add to archives by themselves; ignored without a word.
_SYSTEM_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}


class UploadError(LearnerError):
    """The whole upload is refused; `str(error)` says why and what to do (in English;
    `error.message` is the same, translatable: tlcore.core.messages)."""


@dataclass(frozen=True)
class UploadLimits:
    """Caps that keep one upload from exhausting a shared class server."""

    max_files: int = 5000  # entries in the zip, folders included
    max_total_bytes: int = 200 * 1024**2  # declared uncompressed size of all entries
    max_file_bytes: int = 20 * 1024**2  # one image file, uncompressed
    max_ratio: int = 200  # uncompressed / compressed; real images compress < 10x
    max_pixels: int = 40_000_000  # one decoded image (width * height)
    max_total_pixels: int = 250_000_000  # decoded by all images together (JPEGs decode reduced): bounds CPU time
    max_classes: int = 100  # class folders (the class's limit: tlcore.serve.class_limits.ClassLimits.max_classes)


def read_zip(
    source: bytes | str | Path | BinaryIO,
    *,
    image_size: int,
    per_class: int | None = None,
    val_per_class: int | None = None,
    seed: int = 0,
    limits: UploadLimits = UploadLimits(),
    keep_files_in: str | Path | None = None,
) -> ImageData:
    """Decode a zip of class folders into an `ImageData` split into train and val.

    per_class: keep at most this many training images per class (None: all).
    val_per_class: images held out per class for validation (None: about a fifth,
        at least one). Each class needs one image more than this.
    keep_files_in: also write each usable image's original bytes to
        `<keep_files_in>/<class>/<n>.<ext>`, a folder the engine's "folder" dataset reads,
        so the run can be handed to the job queue (and the CLI) by path.
    Raises `UploadError` when the upload must be refused as a whole.
    """
    archive = _open_zip(source, limits.max_files)
    with archive, _folder(keep_files_in) as folder:
        entries = _check_entries(archive, limits)
        files, skipped, folders, names = _extract(archive, entries, image_size, limits, folder)
        # From here on a zip is an image folder: the engine's one decoder, class check and split.
        files_by_class = {c: files.get(c, []) for c in sorted(set(files) | folders)}
        try:
            check_class_count(len(files_by_class), limits.max_classes, "zip")
            if len(files_by_class) < 2 or not all(files_by_class.values()):
                check_classes(list(files_by_class), np.array([len(f) for f in files_by_class.values()]), _skipped_hint(skipped))
            data = images_from_files(
                files_by_class,
                per_class=per_class,
                val_per_class=val_per_class,
                image_size=image_size,
                seed=seed,
                max_pixels=limits.max_pixels,
            )
        except LearnerError as error:  # said with the zip's own names, never the server's paths
            decoded_skips = _skipped_hint(skipped + _named(getattr(error, "skipped", []), names))
            raise UploadError(
                error.message.key,
                **{**error.message.values, **({"hint": decoded_skips} if "hint" in error.message.values else {})},
            ) from None
    for path, _ in data.skipped:  # the folder keeps only what the run can use
        Path(path).unlink(missing_ok=True)
    data.skipped = skipped + _named(data.skipped, names)
    return data


def declared_bytes(source: bytes | str | Path | BinaryIO) -> int:
    """What a zip says its files unpack to (0 for a file that is no zip: read_zip refuses it
    with its own reason). A zip may understate it: what was written is measured again after."""
    try:
        with _open_zip(source) as archive:
            return sum(info.file_size for info in archive.infolist())
    except UploadError:
        return 0


def _folder(keep_files_in):
    """Where a zip's checked files are written: the learner's upload folder, or a temporary one."""
    if keep_files_in is not None:
        return contextlib.nullcontext(Path(keep_files_in))
    return _TemporaryPath()


class _TemporaryPath(tempfile.TemporaryDirectory):
    def __enter__(self) -> Path:
        return Path(super().__enter__())


def _named(skipped: list[tuple[str, str]], names: dict[str, str]) -> list[tuple[str, str]]:
    """Skipped files under the names the learner gave them in the zip."""
    return [(names.get(path, Path(path).name), reason) for path, reason in skipped]


# --- the archive as a whole -------------------------------------------------------


def _open_zip(source: bytes | str | Path | BinaryIO, max_entries: int | None = None) -> zipfile.ZipFile:
    """The zip, refused by its entry count (`max_entries`, default UploadLimits' max_files) before
    its directory is parsed: Python builds an object for every entry when it opens a zip (a 48 MB
    zip of 560,000 empty entries cost 5.5 CPU-s before the count was looked at)."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    limit = UploadLimits().max_files if max_entries is None else max_entries
    try:
        declared = _declared_entries(source, limit)
        if declared is not None and declared > limit:
            raise UploadError("upload.too_many_entries", count=declared, limit=limit)
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise UploadError("upload.not_zip") from error


_CENTRAL_ENTRY = struct.Struct("<4s42x")  # a central directory entry's fixed 46 bytes (its signature first)
_NAME_LENGTHS = struct.Struct("<HHH")  # file name, extra field and comment lengths, at offset 28


def _declared_entries(source: str | Path | BinaryIO, limit: int) -> int | None:
    """How many entries the zip has (zip64 included), or limit + 1 once it has more: the larger of
    what its end record declares and what its central directory holds, counted header by header and
    no further than limit + 1 (an end record can understate the count: zipfile reads the whole
    directory whatever it says, 0.8 CPU-s for 150,000 entries). None when there is no end record
    (zipfile then says why it is no zip)."""
    with contextlib.ExitStack() as stack:
        f = source if hasattr(source, "seek") else stack.enter_context(open(source, "rb"))  # noqa: SIM115
        start = f.tell()
        try:
            end = zipfile._EndRecData(f)  # the standard library's own reader of the end record
            if not end:
                return None
            declared = int(end[zipfile._ECD_ENTRIES_TOTAL])
            if declared > limit:
                return declared
            return max(declared, _entries_in_directory(f, end, limit))
        finally:
            f.seek(start)


def _entries_in_directory(f: BinaryIO, end: list, limit: int) -> int:
    """The central directory's entries, counted from their headers as zipfile finds them (the same
    start, data before the zip allowed), stopping at limit + 1."""
    size, offset = int(end[zipfile._ECD_SIZE]), int(end[zipfile._ECD_OFFSET])
    concat = int(end[zipfile._ECD_LOCATION]) - size - offset
    if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
        concat -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
    f.seek(offset + concat)
    directory = f.read(size)
    count = position = 0
    while position + _CENTRAL_ENTRY.size <= len(directory) and count <= limit:
        (signature,) = _CENTRAL_ENTRY.unpack_from(directory, position)
        if signature != zipfile.stringCentralDir:
            break  # zipfile will say what is wrong with it
        name, extra, comment = _NAME_LENGTHS.unpack_from(directory, position + 28)
        position += _CENTRAL_ENTRY.size + name + extra + comment
        count += 1
    return count


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]  # the cleaned path, split into folders and file name


def _check_entries(archive: zipfile.ZipFile, limits: UploadLimits) -> list[_Entry]:
    """Refuse dangerous archives before reading a single file's content."""
    infos = archive.infolist()
    if len(infos) > limits.max_files:
        raise UploadError("upload.too_many_entries", count=len(infos), limit=limits.max_files)
    # Declared sizes come from the archive itself; a zip bomb can lie about them, so
    # `_read_capped` checks the real size again while reading.
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_total_bytes:
        raise UploadError(
            "upload.too_many_bytes", mb=f"{declared / 1024**2:.1f}", limit=f"{limits.max_total_bytes / 1024**2:.0f}"
        )
    entries = []
    for info in infos:
        name = _decoded_name(info)
        parts = _safe_parts(name)
        if parts is None:
            raise UploadError("upload.outside", name=name)
        if parts:
            entries.append(_Entry(info, parts))
    return entries


def _decoded_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as the person who made the zip wrote it.

    Zips flag UTF-8 names with bit 11. Without the flag, Python decodes the raw bytes
    as cp437 (the format's old default), which garbles names written by Korean Windows
    tools in cp949; we undo that and try UTF-8, then cp949.
    """
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            raw = None
        if raw is not None:
            for encoding in ("utf-8", "cp949"):
                try:
                    name = raw.decode(encoding)
                    break
                except UnicodeDecodeError:
                    continue
    # macOS writes Korean names decomposed (NFD: separate jamo); show them composed.
    return unicodedata.normalize("NFC", name)


def _safe_parts(name: str) -> tuple[str, ...] | None:
    """Split a zip path into parts, or None when it could escape the target folder."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None  # absolute path: /etc/passwd or C:/Windows
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if any(part == ".." for part in parts):
        return None
    return parts


# --- the files --------------------------------------------------------------------


class _SkipImage(Exception):
    """One file cannot be used; `reason` is what the learner is shown (a translatable Reason)."""

    def __init__(self, key: str, **values):
        super().__init__(key)
        self.reason = Reason(key, **values)


def _extract(
    archive: zipfile.ZipFile,
    entries: list[_Entry],
    image_size: int,
    limits: UploadLimits,
    folder: Path,
) -> tuple[dict[str, list[Path]], list[tuple[str, str]], set[str], dict[str, str]]:
    """Check every entry once and write each acceptable image file to `folder/<class>/`.

    Returns the written files per class, the skipped entries (zip names, reasons), the class
    folders (maybe empty) and the zip name of every written file. Nothing is decoded here.
    """
    entries = [e for e in entries if not _is_system_file(e.parts)]
    depth = _check_budget(archive, entries, image_size, limits)
    files: dict[str, list[Path]] = {}
    skipped: list[tuple[str, str]] = []
    folders: set[str] = set()
    names: dict[str, str] = {}
    total_read = 0
    for entry in entries:
        path = "/".join(entry.parts)
        if entry.info.is_dir():
            if len(entry.parts) == depth + 1 and not entry.parts[depth].startswith("."):
                folders.add(entry.parts[depth])  # an (maybe empty) class folder
            continue
        reason = _class_reason(entry, depth)
        if reason is None:
            folders.add(entry.parts[depth])
            reason = _file_reason(entry, limits)
        if reason is None:
            try:
                data = _read_capped(archive, entry.info, limits.max_file_bytes)
            except _SkipImage as skip:
                reason = skip.reason
        if reason is not None:
            skipped.append((path, reason))
            continue
        total_read += len(data)
        if total_read > limits.max_total_bytes:
            raise UploadError("upload.lied")
        label = entry.parts[depth]
        target = _store(folder / label, len(files.get(label, [])) + 1, entry, data)
        files.setdefault(label, []).append(target)
        names[str(target)] = path
    return files, skipped, folders, names


def _check_budget(archive: zipfile.ZipFile, entries: list[_Entry], image_size: int, limits: UploadLimits) -> int:
    """Refuse a zip whose images could not fit in memory once decoded, before reading any of
    them (from the names, then the image headers); returns the depth of the class folders."""
    candidates = sum(1 for e in entries if not e.info.is_dir() and "/".join(e.parts).lower().endswith(IMAGE_SUFFIXES))
    limit = max_decoded_bytes()
    if candidates * 3 * image_size**2 > limit:  # before reading anything
        raise UploadError(
            "upload.too_big",
            images=f"{candidates:,}",
            size=image_size,
            gib=f"{candidates * 3 * image_size**2 / 1024**3:.1f}",
            limit=f"{limit / 1024**3:.1f}",
        )
    depth = _class_depth(entries)
    planned = _planned_pixels(archive, entries, depth, image_size, limits)
    if planned > limits.max_total_pixels:  # from the headers, before decoding anything
        raise UploadError("upload.too_many_pixels", limit=f"{limits.max_total_pixels // 10**6:,}")
    return depth


def _class_reason(entry: _Entry, depth: int) -> Reason | None:
    """Why a file is in no class (outside the class folders, or hidden), or None. A class name
    no file system can hold refuses the zip."""
    if len(entry.parts) <= depth + 1:
        return Reason("skip.outside_class")
    label = entry.parts[depth]
    if label.startswith(".") or any(part.startswith(".") for part in entry.parts[depth:]):
        return Reason("skip.hidden")
    if len(label.encode("utf-8")) > 255:  # no file system can hold it as a folder name
        raise UploadError("upload.name_too_long", name=label[:30], bytes=len(label.encode("utf-8")))
    return None


def _file_reason(entry: _Entry, limits: UploadLimits) -> Reason | None:
    """Why a file in a class is skipped before it is read (a link, not an image, too large, a
    zip bomb), or None."""
    if _is_symlink(entry.info):
        return Reason("skip.symlink")
    if not "/".join(entry.parts).lower().endswith(IMAGE_SUFFIXES):
        return Reason("skip.not_image")
    if entry.info.file_size > limits.max_file_bytes:
        return Reason("skip.too_large", mb=limits.max_file_bytes // 1024**2)
    if entry.info.file_size > limits.max_ratio * max(entry.info.compress_size, 1):
        return Reason("skip.zip_bomb")
    return None


def _store(class_folder: Path, n: int, entry: _Entry, data: bytes) -> Path:
    """Write one accepted image as `<class_folder>/<n>.<ext>`: a name the studio chooses, never
    the zip's (class names are single, checked path parts: no "..", no "/")."""
    target = class_folder / f"{n:05d}{Path(entry.parts[-1]).suffix.lower()}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as error:  # a full disk, an odd name: say so, never the server's path
        raise UploadError("upload.cannot_store", error=errno.errorcode.get(error.errno or 0, type(error).__name__)) from None
    return target


HEADER_BYTES = 128 * 1024  # enough for any image header (a JPEG's EXIF block is at most 64 KB)


def _planned_pixels(archive: zipfile.ZipFile, entries: list[_Entry], depth: int, image_size: int, limits: UploadLimits) -> int:
    """Pixels that decoding the zip's images would take (JPEGs at their reduced draft size),
    read from the first bytes of each file: 200 photos of 40 megapixels are refused in a
    fraction of a second instead of after seconds of decoding. A header that cannot be read
    here counts nothing; the running count while decoding still applies."""
    total = 0
    for entry in entries:
        info = entry.info
        if (
            info.is_dir()
            or len(entry.parts) <= depth + 1
            or any(p.startswith(".") for p in entry.parts)
            or _is_symlink(info)
            or not entry.parts[-1].lower().endswith(IMAGE_SUFFIXES)
            or info.file_size > limits.max_file_bytes
            or info.flag_bits & 0x1
            or info.file_size > limits.max_ratio * max(info.compress_size, 1)
        ):
            continue
        try:
            with archive.open(info) as handle:
                head = handle.read(HEADER_BYTES)
            with open_image(head, max_pixels=limits.max_pixels) as image:
                if image.format == "JPEG":
                    image.draft("RGB", (image_size, image_size))  # as to_uint8 will decode it
                total += image.width * image.height
        except Exception:  # noqa: BLE001 -- unreadable here: the decoding pass skips it with a reason
            continue
        if total > limits.max_total_pixels:
            break
    return total


def _is_system_file(parts: tuple[str, ...]) -> bool:
    if parts[0] == "__MACOSX":
        return True
    last = parts[-1]
    return last.startswith("._") or last.lower() in _SYSTEM_NAMES


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _class_depth(entries: list[_Entry]) -> int:
    """0 when class folders are at the top, 1 when one folder wraps them all.

    Loose non-image files at the top (a README.txt beside the wrapping folder) and hidden
    entries (skipped anyway) do not count: they must not turn the wrapper into a class."""
    entries = [e for e in entries if not _is_stray(e)]
    tops = {e.parts[0] for e in entries}
    wrapped = len(tops) == 1 and all(len(e.parts) >= 2 or e.info.is_dir() for e in entries)
    # A single top folder that directly holds images is itself a class (one class
    # only, refused later with that reason), not a wrapper.
    holds_files = any(len(e.parts) == 2 and e.parts[1].lower().endswith(IMAGE_SUFFIXES) for e in entries)
    return 1 if wrapped and not holds_files else 0


def _is_stray(entry: _Entry) -> bool:
    """A file at the top that is not an image (README.txt), or anything hidden."""
    top_file = len(entry.parts) == 1 and not entry.info.is_dir()
    return (top_file and not entry.parts[0].lower().endswith(IMAGE_SUFFIXES)) or any(part.startswith(".") for part in entry.parts)


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """Read at most cap + 1 bytes, so a lying header cannot make us inflate gigabytes."""
    if info.flag_bits & 0x1:
        raise _SkipImage("skip.password")
    try:
        with archive.open(info) as handle:
            data = handle.read(min(cap, info.file_size) + 1)
    except NotImplementedError:  # e.g. Deflate64, made by Windows Explorer for large files
        raise _SkipImage("skip.method") from None
    except RuntimeError:  # zipfile's way of saying "encrypted"
        raise _SkipImage("skip.password") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise _SkipImage("skip.damaged", error=type(error).__name__) from None
    if len(data) != info.file_size:
        raise _SkipImage("skip.size_differs")
    return data


# --- classes and the split --------------------------------------------------------


def _skipped_hint(skipped: list[tuple[str, str]]) -> str:
    """' (3 files were skipped, e.g. ...)' after a refusal, or nothing."""
    if not skipped:
        return ""
    path, reason = skipped[0]
    return Reason("upload.skipped_hint", count=len(skipped), path=path, reason=reason)
