"""Reading photos safely: content sniffed, declared size checked before decoding, EXIF orientation applied.

Every failure is an ImageError naming the file, so a caller can report it and go on with the rest.
"""

import os
import struct
from contextlib import nullcontext
from pathlib import Path

import numpy as np

# A decompression bomb declares a huge canvas in a small file; refuse it from the header alone.
MAX_PIXELS = 50_000_000
MAX_BYTES = 64 * 1024 * 1024
os.environ.setdefault("CV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))

import cv2  # noqa: E402  (reads CV_IO_MAX_IMAGE_PIXELS)

# Every decoding failure becomes an ImageError naming the file; OpenCV's own log lines would only add noise.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

from resdropnet.errors import ResDropNetError, first_line  # noqa: E402

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class ImageError(ResDropNetError, ValueError):
    """A file or upload that is not a usable image; the message names it and says why."""


def sniff_format(data: bytes) -> str | None:
    """The image format from its first bytes, or None when it is not one we read."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"BM"):
        return "bmp"
    return None


JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
JPEG_END = 0xD9
JPEG_SCAN = 0xDA
# Markers without a length field: TEM and the restart markers (SOI is never inside a file's body).
JPEG_STANDALONE = {0x01, 0xD8, *range(0xD0, 0xD8)}


def jpeg_markers(data: bytes):
    """(marker, offset) of each marker of a JPEG in order, stepping over segments and entropy-coded scans.

    Stops at the end-of-image marker, so bytes that cameras append after it (thumbnails, MPF) are never read.
    """
    index = 2
    while index + 1 < len(data):
        if data[index] != 0xFF:  # stray bytes between segments: libjpeg skips them too
            index = data.find(b"\xff", index)
            if index < 0:
                return
            continue
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte before a marker
            index += 1
            continue
        yield marker, index
        if marker == JPEG_END:
            return
        if marker in JPEG_STANDALONE:
            index += 2
            continue
        if index + 4 > len(data):
            return
        index += 2 + struct.unpack(">H", data[index + 2 : index + 4])[0]
        if marker == JPEG_SCAN:
            index = _end_of_scan(data, index)


def _end_of_scan(data: bytes, index: int) -> int:
    """Offset of the first marker after entropy-coded data; stuffed 0xFF00 and restart markers are part of it."""
    while True:
        index = data.find(b"\xff", index)
        if index < 0 or index + 1 >= len(data):
            return len(data)
        following = data[index + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            index += 2
        elif following == 0xFF:
            index += 1
        else:
            return index


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    for marker, offset in jpeg_markers(data):
        if marker in JPEG_FRAME_MARKERS and offset + 9 <= len(data):
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
    return None


def jpeg_is_complete(data: bytes) -> bool:
    """Whether the end-of-image marker follows the last scan: a cut file lacks it, appended data does not matter."""
    return any(marker == JPEG_END for marker, _offset in jpeg_markers(data))


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(data) >= 30:
        return struct.unpack("<H", data[26:28])[0] & 0x3FFF, struct.unpack("<H", data[28:30])[0] & 0x3FFF
    return None


def declared_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) as the header declares it, before any pixel is decoded."""
    try:
        if kind == "png" and len(data) >= 24:
            return struct.unpack(">II", data[16:24])
        if kind == "bmp" and len(data) >= 26:
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if kind == "jpeg":
            return _jpeg_size(data)
        if kind == "webp":
            return _webp_size(data)
    except struct.error:
        return None
    return None


def decode_image(data: bytes, name: str = "<upload>", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Bytes of a JPEG, PNG, WebP or BMP to an 8-bit BGR array (gray, alpha and 16-bit converted)."""
    if not data:
        raise ImageError(f"{name}: empty file")
    kind = sniff_format(data)
    if kind is None:
        raise ImageError(f"{name}: not an image (expected JPEG, PNG, WebP or BMP content)")
    size = declared_size(data, kind)
    if size is None:
        raise ImageError(f"{name}: truncated or corrupt {kind.upper()} header")
    width, height = size
    if width * height > max_pixels:
        raise ImageError(f"{name}: declares {width}x{height} pixels, more than the limit of {max_pixels:,}")
    # IMREAD_COLOR applies EXIF orientation and turns gray, alpha and 16-bit images into 8-bit BGR.
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ImageError(f"{name}: truncated or corrupt {kind.upper()} data")
    # OpenCV decodes a cut JPEG with the missing rows grey; its end-of-image marker must follow the last scan.
    if kind == "jpeg" and not jpeg_is_complete(data):
        raise ImageError(f"{name}: truncated JPEG (no end-of-image marker)")
    return image


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A file's image as 8-bit BGR, read as decode_image reads bytes; ImageError names the file when it cannot be.

    path: a local path, or a URI that pyarrow.fs understands (s3://, gs://, hdfs://, file://; needs pyarrow)."""
    return decode_image(read_file_bytes(path), str(path), max_pixels)


def is_uri(path: str | Path) -> bool:
    return isinstance(path, str) and "://" in path


def read_file_bytes(path: str | Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a local file or of a URI (through pyarrow.fs), refused above max_bytes; ImageError names it."""
    if is_uri(path):
        return _read_uri(path, max_bytes)
    path = Path(path)
    try:
        if path.stat().st_size > max_bytes:
            raise ImageError(f"{path}: larger than {max_bytes // 2**20} MiB")
        return path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: cannot read ({error.strerror or error})") from None


def _read_uri(uri: str, max_bytes: int) -> bytes:
    try:
        from pyarrow import fs
    except ImportError:
        raise ImageError(f"{uri}: reading URIs needs pyarrow: pip install 'resdropnet[ray]'") from None
    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
        with filesystem.open_input_stream(path) if info.type == fs.FileType.File else nullcontext() as stream:
            data = stream.read(max_bytes + 1) if stream is not None else None
    except (OSError, ValueError) as error:  # pyarrow's errors for unknown schemes, missing buckets, denied access
        raise ImageError(f"{uri}: cannot read ({first_line(error)})") from None
    if data is None:
        raise ImageError(f"{uri}: no such file")
    if len(data) > max_bytes:
        raise ImageError(f"{uri}: larger than {max_bytes // 2**20} MiB")
    return data


def to_bgr(image, channel_order: str = "bgr") -> np.ndarray:
    """An 8-bit BGR array from a numpy array (gray, BGR/RGB, BGRA/RGBA, any integer or float range) or a PIL image."""
    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL, without importing it
        image, channel_order = np.asarray(image.convert("RGB")), "rgb"
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or min(array.shape[:2]) == 0:
        raise ImageError(f"image array of shape {array.shape}: expected H x W, H x W x 3 or H x W x 4")
    array = _to_uint8(array)
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    if channel_order not in ("bgr", "rgb"):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    if array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2BGR if channel_order == "bgr" else cv2.COLOR_RGBA2BGR)
    return np.ascontiguousarray(array[..., ::-1]) if channel_order == "rgb" else array


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        scale = 255.0 if float(np.nanmax(array)) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(array) * scale, 0, 255).astype(np.uint8)
    return np.clip(array, 0, 255).astype(np.uint8)


def list_images(paths) -> tuple[list[Path | str], list[Path]]:
    """Files named plus image files found recursively in folders, in order, URIs kept as they are; and the local
    paths that do not exist."""
    found, missing = [], []
    for entry in paths:
        if is_uri(entry):
            found.append(entry)
            continue
        entry = Path(entry)
        if entry.is_dir():
            found.extend(sorted(p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif entry.is_file():
            found.append(entry)
        else:
            missing.append(entry)
    return found, missing


# What one file of a batch may raise without ending the run: our named errors, and OpenCV's, numpy's and memory
# failures on inputs nobody foresaw.
FILE_FAILURES = (ResDropNetError, cv2.error, ValueError, MemoryError)


def failure_message(path, error: BaseException) -> str:
    """The one line a batch records for a file it could not process: our errors name the file already."""
    return str(error) if isinstance(error, ResDropNetError) else f"{path}: cannot be processed ({first_line(error)})"
