"""Checking an uploaded image and making its thumbnail, with Pillow.

The order matters for safety:

1. the byte size is checked by the form before Pillow sees anything;
2. ``Image.open`` reads only the header: the format must be one we accept and
   width x height must be within ``AVATAR_MAX_PIXELS`` (and Pillow's own
   ``MAX_IMAGE_PIXELS``) *before* any decoding: a 50 KB PNG can claim
   100 000 x 100 000 pixels. Pillow's ``DecompressionBombError`` and, should a
   warnings filter raise it, ``DecompressionBombWarning`` are refusals too;
3. ``verify()`` checks the file's structure (PNG chunk CRCs...) without decoding;
4. the image is opened again (``verify`` leaves it unusable) and fully decoded
   while making the thumbnail, which catches truncated data. The thumbnail is the
   image's centred square, cropped (never stretched) to ``thumb_size`` pixels a
   side. The decoded image is shrunk before anything else is done with it (see
   :func:`_make_thumbnail`), so
   the only full-size buffer is the decode itself: ``AVATAR_MAX_PIXELS`` x up to
   4 bytes (64 MB for an RGBA image at the default 16 megapixels);
5. the original's metadata (GPS position, camera, XMP, comments...) is removed
   without re-encoding it (:mod:`avatars.metadata`); its EXIF orientation is kept.

Every failure is an :class:`InvalidImage` with a message for the user.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from dataclasses import dataclass
from typing import IO

from django.template.defaultfilters import filesizeformat
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from . import metadata

logger = logging.getLogger(__name__)

# The thumbnail is resampled from an image at least WORK_SCALE times its size.
WORK_SCALE = 2
# Converting the decoded image is done on tiles of at most this many pixels.
TILE_PIXELS = 1024 * 1024
# Decodes running at once in one process (gunicorn threads share it): each holds a
# full-size decoded image, up to AVATAR_MAX_PIXELS x 4 bytes.
DECODE_SLOTS = 2
_decodes = threading.BoundedSemaphore(DECODE_SLOTS)

# Pillow format -> (content type, file extension)
ALLOWED_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}
ALLOWED_NAMES = "JPEG, PNG, GIF or WebP"


class InvalidImage(ValueError):
    """The upload is not an acceptable image; ``message`` is for the user."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


@dataclass(frozen=True)
class CheckedImage:
    """An accepted upload: its bytes (metadata removed), what it is, and its thumbnail."""

    data: bytes
    format: str
    content_type: str
    extension: str
    width: int
    height: int
    thumbnail: Thumbnail
    # The EXIF orientation (1 to 8) kept in ``data``; width x height are as stored.
    orientation: int = 1

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as a browser shows the image: orientations 5 to 8 turn it."""
        if self.orientation >= 5:
            return self.height, self.width
        return self.width, self.height


def check_image(
    fileobj: IO[bytes], *, max_bytes: int, max_pixels: int, thumb_size: int
) -> CheckedImage:
    """Validate the upload in ``fileobj`` and make its thumbnail, or raise InvalidImage."""
    data = fileobj.read(max_bytes + 1)
    if not data:
        raise InvalidImage("The file is empty.", "empty")
    if len(data) > max_bytes:
        raise InvalidImage(too_large_message(len(data), max_bytes), "too_large")

    limit = effective_pixel_limit(max_pixels)
    fmt, width, height = _identify(data, limit)
    _verify(data)
    thumbnail, orientation = _make_thumbnail(data, thumb_size, limit)
    stripped = _strip_metadata(data, fmt, orientation, (width, height))

    content_type, extension = ALLOWED_FORMATS[fmt]
    return CheckedImage(
        data=stripped,
        format=fmt,
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        thumbnail=thumbnail,
        orientation=orientation,
    )


def too_large_message(size: int, max_bytes: int) -> str:
    return (
        f"The file is too large ({filesizeformat(size)}); the limit is {filesizeformat(max_bytes)}."
    )


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int) -> InvalidImage:
    limit = f"{max_pixels / 1_000_000:.3g} megapixels"
    if size:
        width, height = size
        text = f"The image is too big ({width}x{height} pixels); the limit is {limit}."
    else:
        text = f"The image is too big; the limit is {limit}."
    return InvalidImage(text, "too_many_pixels")


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header of an image ``Image.open`` refused as a bomb.

    Pillow refuses more than twice ``MAX_IMAGE_PIXELS`` before it returns the image,
    so its size is read here by the format's own header parser (what ``Image.open``
    runs before its check), which decodes nothing. None when no accepted format
    reads it.
    """
    Image.init()
    for fmt in ALLOWED_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is None or (accept and accept(data[:16]) is not True):
            continue
        try:
            with factory(io.BytesIO(data), "") as im:
                return im.size
        except Exception:  # not this format after all, or a broken header
            continue
    return None


def effective_pixel_limit(max_pixels: int) -> int:
    """Ours, or Pillow's own bomb limit (``Image.MAX_IMAGE_PIXELS``) when that is lower.

    Pillow only *warns* (``DecompressionBombWarning``) between its limit and twice
    that. Refusing everything above its limit from the header makes that warning
    a refusal too, without ``warnings.catch_warnings`` (which is not thread-safe,
    and gunicorn runs threads).
    """
    pillow = Image.MAX_IMAGE_PIXELS
    return min(max_pixels, int(pillow)) if pillow else max_pixels


def _identify(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    """Format and size from the header only; nothing is decoded here."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (width, height) = im.format, im.size
            if fmt == "MPO":
                # Many phones write multi-picture JPEGs; the first picture is an ordinary
                # JPEG, and metadata stripping drops the others (they follow its end).
                fmt = "JPEG"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(_header_size(data), max_pixels) from None
    except UnidentifiedImageError:
        raise InvalidImage(
            f"The file is not an image we can read; upload a {ALLOWED_NAMES} image.",
            "not_an_image",
        ) from None
    except Exception as exc:  # a header so broken that a format plugin choked on it
        logger.info("Unreadable image header: %r", exc)
        raise InvalidImage(
            "The image is damaged or truncated and cannot be read.", "corrupt"
        ) from None
    if fmt not in ALLOWED_FORMATS:
        raise InvalidImage(
            f"{fmt} images are not accepted; upload a {ALLOWED_NAMES} image.", "wrong_format"
        )
    if width <= 0 or height <= 0:
        raise InvalidImage("The image has no pixels.", "corrupt")
    if width * height > max_pixels:
        raise _too_many_pixels((width, height), max_pixels)
    return fmt, width, height


def _verify(data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except Exception as exc:
        logger.info("Image failed verify(): %r", exc)
        raise InvalidImage(
            "The image is damaged or truncated and cannot be read.", "corrupt"
        ) from None


def _make_thumbnail(data: bytes, size: int, max_pixels: int) -> tuple[Thumbnail, int]:
    """A size x size thumbnail of the centred square, upright (EXIF orientation), JPEG or PNG.

    Also returns the EXIF orientation (1 to 8) that was applied. The centred square
    of the stored image is the centred square of the upright one too, so it is cut
    before turning. The site shows thumbnails at half ``size`` (CSS pixels), sharp on
    2x screens. Images with transparency stay PNG (RGBA); all others become JPEG.
    Animated GIF and WebP give a still thumbnail of their first frame.

    Memory: the decoded image is the only full-size copy made. Its square is shrunk
    by a whole factor first (:func:`_shrink`, a tile at a time), and only that small
    image is turned upright, converted and resampled; at most ``DECODE_SLOTS``
    decodes run at once per process.
    """
    try:
        with _decodes, Image.open(io.BytesIO(data)) as im:
            im.seek(0)
            # JPEGs are decoded at a reduced scale (1/2 to 1/8) when they are big enough.
            im.draft("RGB", (size * WORK_SCALE, size * WORK_SCALE))
            # Decode everything once: a truncated file fails here, not half-way
            # through a resize.
            im.load()
            orientation = _orientation(im)
            if _has_alpha(im):
                mode, fmt, ctype, ext = "RGBA", "PNG", "image/png", "png"
                save_args: dict = {"optimize": True}
            else:
                mode, fmt, ctype, ext = "RGB", "JPEG", "image/jpeg", "jpg"
                save_args = {"quality": 85, "optimize": True, "progressive": True}
            small = _shrink(im, mode, size, centred_square(im.size))
        picture = ImageOps.exif_transpose(small).resize((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        picture.save(out, fmt, **save_args)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(_header_size(data), max_pixels) from None
    except Exception as exc:
        logger.info("Image failed to decode: %r", exc)
        raise InvalidImage(
            "The image is damaged or truncated and cannot be read.", "corrupt"
        ) from None
    thumbnail = Thumbnail(
        data=out.getvalue(),
        content_type=ctype,
        extension=ext,
        width=picture.width,
        height=picture.height,
    )
    return thumbnail, orientation


def work_bound(size: int) -> int:
    """The longest side of the image that is turned upright and resampled (< this)."""
    return 2 * WORK_SCALE * size


def centred_square(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) of the largest centred square in ``size``."""
    width, height = size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _shrink(im: Image.Image, mode: str, size: int, box: tuple[int, int, int, int]) -> Image.Image:
    """The ``box`` of the decoded ``im`` in ``mode``, shrunk by a whole factor below
    :func:`work_bound`.

    The factor leaves at least ``WORK_SCALE`` x ``size`` pixels on the box's longest
    side for the final (Lanczos) resampling, as Pillow's ``reducing_gap`` does.
    Converting the whole image first (a palette image to RGBA, say) would make a
    full-size copy at up to 4 bytes a pixel; here each tile of at most
    ``TILE_PIXELS`` is converted and reduced on its own. Tiles are whole multiples of
    the factor, so the result is what reducing the converted box in one piece gives.
    ``info`` (EXIF, ICC profile) is kept, for ``exif_transpose``.
    """
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    factor = max(1, max(width, height) // (WORK_SCALE * size))
    if factor == 1:
        small = im.crop(box).convert(mode)  # already smaller than work_bound(size)
    else:
        side = max(1, math.isqrt(TILE_PIXELS) // factor) * factor
        small = Image.new(mode, (-(-width // factor), -(-height // factor)))
        for top in range(0, height, side):
            bottom = y0 + min(top + side, height)
            for left in range(0, width, side):
                tile = im.crop((x0 + left, y0 + top, x0 + min(left + side, width), bottom))
                small.paste(tile.convert(mode).reduce(factor), (left // factor, top // factor))
    small.info = dict(im.info)
    return small


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation Pillow applies (``exif_transpose``), 1 when none or invalid."""
    value = im.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _strip_metadata(data: bytes, fmt: str, orientation: int, size: tuple[int, int]) -> bytes:
    """``data`` without metadata; it must still open as the same format and size."""
    try:
        stripped = metadata.strip(data, fmt, orientation)
        with Image.open(io.BytesIO(stripped)) as im:  # the header only: nothing decoded
            if (im.format, im.size) != (fmt, size):
                raise metadata.MetadataError(f"{im.format} {im.size} after stripping")
            kept = Image.Exif()
            kept.load(im.info.get("exif") or b"")  # not getexif(): for a PNG, it decodes
            if fmt in metadata.EXIF_FORMATS and kept.get(ExifTags.Base.Orientation, 1) != (
                orientation
            ):
                raise metadata.MetadataError("the orientation was lost")
    except Exception as exc:
        logger.info("Could not remove the image's metadata: %r", exc)
        raise InvalidImage(
            "The image is damaged or truncated and cannot be read.", "corrupt"
        ) from None
    return stripped


def _has_alpha(im: Image.Image) -> bool:
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return True
    return im.mode == "P" and "transparency" in im.info
