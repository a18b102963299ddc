"""Removing metadata from an accepted image without re-encoding it.

Avatars are public, and a photo's metadata is often private: GPS position, camera
serial number, capture time, editing history (XMP), comments, an embedded preview
that may show what was cropped away. :func:`strip` rewrites the file's container
and keeps only what is needed to show the pixels as they are:

* the compressed image data, byte for byte (no second lossy compression, animation
  frames untouched);
* colour information: ICC profile, PNG gamma/chromaticity/sRGB/cICP, the JPEG
  Adobe segment (it says how CMYK/YCCK data are stored), transparency, palettes;
* the EXIF orientation, alone in a new minimal EXIF block, when it is not 1: the
  original is stored as uploaded (sideways pixels and all), and browsers turn it
  upright from that tag, as the thumbnail is turned with ``exif_transpose``. GIF has
  no EXIF: an orientation there could only come from XMP, which browsers ignore.

Anything after the end of the image (JPEG trailers such as a second "MPF" picture,
data appended to a PNG or GIF) is dropped. Unknown ancillary chunks and segments are
dropped too: only what is listed here is kept.

A structure that cannot be walked raises :class:`MetadataError`; callers treat the
upload as damaged rather than store it with its metadata.
"""

from __future__ import annotations

import struct
import zlib

from PIL import ExifTags, Image

# The formats that carry an EXIF orientation after stripping.
EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


class MetadataError(ValueError):
    """The file's structure could not be walked to remove its metadata."""


def strip(data: bytes, fmt: str, orientation: int = 1) -> bytes:
    """``data`` (a ``fmt`` image: JPEG, PNG, GIF, WEBP) without metadata, see the module."""
    try:
        stripper = _STRIPPERS[fmt]
    except KeyError:
        raise MetadataError(f"no metadata stripper for {fmt}") from None
    try:
        return stripper(data, orientation)
    except (IndexError, struct.error) as exc:
        raise MetadataError(f"{fmt}: {exc}") from None


def orientation_exif(orientation: int) -> bytes:
    """A TIFF-structured EXIF block holding only ``Orientation``, without ``Exif\\0\\0``."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    block = exif.tobytes()
    return block[6:] if block.startswith(b"Exif\0\0") else block


# -- JPEG -------------------------------------------------------------------------------

_SOI, _EOI, _SOS, _APP0, _APP1, _COM = 0xD8, 0xD9, 0xDA, 0xE0, 0xE1, 0xFE
# Markers with no length field: TEM and the restart markers.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _keep_jpeg_segment(marker: int, payload: bytes) -> bytes | None:
    """The payload to keep for this segment, or None to drop it."""
    if marker == _APP0:
        if payload.startswith(b"JFIF\0") and len(payload) >= 14:
            # Version, density units and density; the optional preview pixels go.
            return payload[:12] + b"\0\0"
        return None  # JFXX previews and others
    if marker == 0xE2:  # APP2: ICC profile chunks are kept, FlashPix and MPF are not
        return payload if payload.startswith(b"ICC_PROFILE\0") else None
    if marker == 0xEE:  # APP14 "Adobe": the colour transform of the coded data
        return payload if payload.startswith(b"Adobe") else None
    if 0xE0 <= marker <= 0xEF or marker == _COM:
        return None  # EXIF, XMP, IPTC/Photoshop, maker notes, comments...
    return payload  # tables, frame and scan headers, restart interval...


def _entropy_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data starting at ``pos`` ends (the next real marker)."""
    while True:
        at = data.find(b"\xff", pos)
        if at < 0 or at + 1 >= len(data):
            return len(data)
        following = data[at + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            pos = at + 2  # a stuffed 0xFF byte or a restart marker: still scan data
        elif following == 0xFF:
            pos = at + 1  # fill bytes before a marker
        else:
            return at


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise MetadataError("JPEG segment too long")
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _strip_jpeg(data: bytes, orientation: int) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise MetadataError("JPEG: no SOI marker")
    out = [data[:2]]
    pending_exif = (
        _segment(_APP1, b"Exif\0\0" + orientation_exif(orientation)) if orientation != 1 else None
    )
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise MetadataError(f"JPEG: no marker at byte {pos}")
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1  # fill bytes
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            out.append(b"\xff\xd9")
            break  # whatever follows the image is not kept
        if marker in _STANDALONE:
            out.append(bytes((0xFF, marker)))
            continue
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2 or pos + length > len(data):
            raise MetadataError(f"JPEG: segment {marker:#x} runs past the end")
        payload = data[pos + 2 : pos + length]
        pos += length
        if pending_exif is not None and marker != _APP0:
            # After SOI, or after the JFIF segment that must come first.
            out.append(pending_exif)
            pending_exif = None
        kept = _keep_jpeg_segment(marker, payload)
        if kept is not None:
            out.append(_segment(marker, kept))
        if marker == _SOS:
            end = _entropy_end(data, pos)
            out.append(data[pos:end])
            pos = end
    return b"".join(out)


# -- PNG --------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = {
    # critical
    b"IHDR",
    b"PLTE",
    b"IDAT",
    b"IEND",
    # how to show the pixels
    b"tRNS",
    b"gAMA",
    b"cHRM",
    b"sRGB",
    b"iCCP",
    b"cICP",
    b"mDCV",
    b"cLLI",
    b"sBIT",
    b"bKGD",
    b"hIST",
    b"pHYs",
    # APNG animation
    b"acTL",
    b"fcTL",
    b"fdAT",
}  # not kept: tEXt, zTXt, iTXt (XMP, comments, "Raw profile" EXIF), eXIf, tIME, others


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _strip_png(data: bytes, orientation: int) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise MetadataError("PNG: no signature")
    out = [_PNG_SIGNATURE]
    pos = len(_PNG_SIGNATURE)
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise MetadataError(f"PNG: chunk {kind!r} runs past the end")
        if kind in _PNG_KEEP:
            out.append(data[pos:end])
        if kind == b"IHDR" and orientation != 1:
            out.append(_png_chunk(b"eXIf", orientation_exif(orientation)))
        pos = end
        if kind == b"IEND":
            break  # whatever follows the image is not kept
    return b"".join(out)


# -- WebP -------------------------------------------------------------------------------

_WEBP_KEEP = {b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def _riff_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def _strip_webp(data: bytes, orientation: int) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise MetadataError("WebP: no RIFF/WEBP header")
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + riff_size)
    chunks: list[tuple[bytes, bytes]] = []
    pos = 12
    while pos + 8 <= end:
        kind, length = struct.unpack("<4sI", data[pos : pos + 8])
        if pos + 8 + length > end:
            raise MetadataError(f"WebP: chunk {kind!r} runs past the end")
        if kind in _WEBP_KEEP:
            chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 8 + length + (length % 2)
    if not chunks:
        raise MetadataError("WebP: no image chunk")
    if chunks[0][0] == b"VP8X":
        header = bytearray(chunks[0][1])
        if len(header) < 10:
            raise MetadataError("WebP: short VP8X chunk")
        header[0] &= ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
        if orientation != 1:
            header[0] |= _VP8X_EXIF
            chunks.append((b"EXIF", orientation_exif(orientation)))
        chunks[0] = (b"VP8X", bytes(header))
    # A simple-format file (VP8/VP8L first) has no room for metadata: there is none.
    body = b"WEBP" + b"".join(_riff_chunk(kind, payload) for kind, payload in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# -- GIF --------------------------------------------------------------------------------

# Application extensions that change how the image is shown: loop count, ICC profile.
_GIF_KEEP_APPS = {b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012"}


def _gif_sub_blocks_end(data: bytes, pos: int) -> int:
    """The end of the data sub-blocks starting at ``pos`` (after the 0 terminator)."""
    while True:
        size = data[pos]
        pos += 1 + size
        if size == 0:
            if pos > len(data):
                raise MetadataError("GIF: data blocks run past the end")
            return pos


def _strip_gif(data: bytes, orientation: int) -> bytes:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise MetadataError("GIF: no header")
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    out = [data[:pos]]
    while pos < len(data):
        introducer = data[pos]
        if introducer == 0x3B:  # trailer; whatever follows is not kept
            break
        if introducer == 0x2C:  # image: descriptor, local colour table, LZW data
            local = data[pos + 9]
            start = pos
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            pos = _gif_sub_blocks_end(data, pos + 1)  # after the LZW code size
            out.append(data[start:pos])
        elif introducer == 0x21:
            label = data[pos + 1]
            start = pos
            pos = _gif_sub_blocks_end(data, pos + 2)
            # Kept: graphic control (delays, transparency), plain text, and the
            # application extensions above. Dropped: comments (0xFE), XMP and the rest.
            application = data[start + 3 : start + 14] if data[start + 2] == 11 else b""
            if label in (0xF9, 0x01) or (label == 0xFF and application in _GIF_KEEP_APPS):
                out.append(data[start:pos])
        else:
            raise MetadataError(f"GIF: unknown block {introducer:#x} at byte {pos}")
    out.append(b"\x3b")
    return b"".join(out)


_STRIPPERS = {"JPEG": _strip_jpeg, "PNG": _strip_png, "WEBP": _strip_webp, "GIF": _strip_gif}
