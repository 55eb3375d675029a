"""Uploads are untrusted: how large they may be, and opening a zip safely.

`Limits` bounds the upload, a zip's entry count, its uncompressed size and compression ratio.
`check_zip` refuses a zip bomb before anything is extracted (from the sizes the zip's directory
states) and `extract_zip` counts bytes again while extracting, in case the zip lies about its
sizes; absolute paths, `..`, symlinks and encrypted entries are refused.
"""

import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from geo import TitlemapError

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What an upload may be: its size; a zip's entries, uncompressed bytes, compression ratio."""

    upload_bytes: int = 200 * MB
    zip_entries: int = 1000
    unzipped_bytes: int = 1024 * MB
    # uncompressed ÷ compressed, for entries over `ratio_floor`: deflate tops out near 1030:1
    # on constant data; a .dbf of wide, mostly blank columns reaches a few hundred.
    zip_ratio: float = 500.0
    ratio_floor: int = 1 * MB


def size_words(n: float) -> str:
    """A byte count as people read it: 12.3 MB, 640 KB."""
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.0f} KB"


def is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04" or path.suffix.lower() == ".zip"


def _unsafe(name: str) -> str | None:
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean):
        return "绝对路径 / absolute path"
    if ".." in PurePosixPath(clean).parts:
        return "上级目录 .. / parent directory"
    return None


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name, decoding GBK names that Windows zip tools write without a flag."""
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437", errors="replace")
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def check_zip(path: Path, limits: Limits) -> list[zipfile.ZipInfo]:
    """The entries of a zip if it is safe to extract; else TitlemapError naming the problem.

    Nothing is extracted here: sizes come from the zip's directory (and are counted again
    while extracting, in case they lie)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise TitlemapError(f"压缩包已损坏或不是 zip / not a valid zip file: {exc}") from None
    if len(infos) > limits.zip_entries:
        raise TitlemapError(
            f"压缩包内文件过多（{len(infos)} 个，上限 {limits.zip_entries}）/ too many entries "
            f"in the zip ({len(infos)} > {limits.zip_entries})"
        )
    total = 0
    for info in infos:
        name = _entry_name(info)
        problem = _unsafe(info.filename)
        if problem:
            raise TitlemapError(
                f"压缩包含不安全的路径 {name!r}（{problem}），已拒绝 / unsafe path in the zip"
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise TitlemapError(f"压缩包含符号链接 {name!r}，已拒绝 / symlink in the zip")
        if info.flag_bits & 0x1:
            raise TitlemapError(f"压缩包已加密 {name!r}：请解密后上传 / encrypted zip entry")
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_floor and ratio > limits.zip_ratio:
            raise TitlemapError(
                f"压缩包内 {name!r} 压缩比异常（{ratio:.0f}:1，解压后 "
                f"{size_words(info.file_size)}），疑似压缩炸弹，已拒绝 / suspicious compression "
                "ratio (zip bomb?)"
            )
    if total > limits.unzipped_bytes:
        raise TitlemapError(
            f"压缩包解压后过大（{size_words(total)}，上限 {size_words(limits.unzipped_bytes)}）/ "
            "the zip unpacks to more than the limit"
        )
    return infos


def extract_zip(path: Path, dest: Path, limits: Limits) -> list[Path]:
    """Extract a checked zip into `dest`, counting bytes as they come out."""
    infos = check_zip(path, limits)
    written = 0
    files = []
    with zipfile.ZipFile(path) as archive:
        for info in infos:
            if info.is_dir():
                continue
            target = dest.joinpath(*PurePosixPath(_entry_name(info).replace("\\", "/")).parts)
            if dest.resolve() not in target.resolve().parents:
                raise TitlemapError(f"压缩包含不安全的路径 {info.filename!r} / unsafe path")
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            with archive.open(info) as source, target.open("wb") as out:
                while chunk := source.read(1024 * 1024):
                    size += len(chunk)
                    written += len(chunk)
                    if size > info.file_size or written > limits.unzipped_bytes:
                        raise TitlemapError(
                            f"压缩包内 {info.filename!r} 实际大小超出声明，已拒绝 / the zip "
                            "lies about its sizes"
                        )
                    out.write(chunk)
            files.append(target)
    return files
