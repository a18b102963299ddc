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
   while making the thumbnail, which catches truncated data.

Every failure is an :class:`InvalidImage` with a message for the user.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import IO

from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

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
    """An accepted upload: its bytes, what it is, and its thumbnail."""

    data: bytes
    format: str
    content_type: str
    extension: str
    width: int
    height: int
    thumbnail: Thumbnail

    @property
    def size(self) -> int:
        return len(self.data)


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
    thumbnail = _make_thumbnail(data, thumb_size, limit)

    content_type, extension = ALLOWED_FORMATS[fmt]
    return CheckedImage(
        data=data,
        format=fmt,
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        thumbnail=thumbnail,
    )


def too_large_message(size: int, max_bytes: int) -> str:
    return (
        f"The file is too large ({filesizeformat(size)}); the limit is {filesizeformat(max_bytes)}."
    )


def _too_many_pixels(width: int | None, height: int | None, max_pixels: int) -> InvalidImage:
    limit = f"{max_pixels / 1_000_000:.3g} megapixels"
    if width and height:
        text = f"The image is too big ({width}x{height} pixels); the limit is {limit}."
    else:
        text = f"The image is too big; the limit is {limit}."
    return InvalidImage(text, "too_many_pixels")


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
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(None, None, max_pixels) from None
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
        raise _too_many_pixels(width, height, max_pixels)
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


def _make_thumbnail(data: bytes, size: int, max_pixels: int) -> Thumbnail:
    """A thumbnail within size x size, turned upright (EXIF orientation), JPEG or PNG.

    Images with transparency stay PNG (RGBA); all others become JPEG. Animated
    GIF and WebP give a still thumbnail of their first frame.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.seek(0)
            # Decode everything once: a truncated file fails here, not half-way
            # through a resize. JPEGs are decoded at a reduced scale (draft).
            im.draft("RGB", (size * 2, size * 2))
            im.load()
            upright = ImageOps.exif_transpose(im)
            if _has_alpha(upright):
                picture, fmt, ctype, ext = upright.convert("RGBA"), "PNG", "image/png", "png"
                save_args: dict = {"optimize": True}
            else:
                picture, fmt, ctype, ext = upright.convert("RGB"), "JPEG", "image/jpeg", "jpg"
                save_args = {"quality": 85, "optimize": True, "progressive": True}
            picture.thumbnail((size, size), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            picture.save(out, fmt, **save_args)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(None, None, max_pixels) from None
    except Exception as exc:
        logger.info("Image failed to decode: %r", exc)
        raise InvalidImage(
            "The image is damaged or truncated and cannot be read.", "corrupt"
        ) from None
    return Thumbnail(
        data=out.getvalue(),
        content_type=ctype,
        extension=ext,
        width=picture.width,
        height=picture.height,
    )


def _has_alpha(im: Image.Image) -> bool:
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return True
    return im.mode == "P" and "transparency" in im.info
