"""Test images made on the fly with Pillow: good ones and every kind of bad upload."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image, ImageDraw


def picture(width: int = 320, height: int = 240, fmt: str = "PNG", seed: int = 0) -> bytes:
    """A recognisable picture (a gradient with a few discs), different for each ``seed``."""
    rng = random.Random(seed)
    base = (rng.randrange(40, 200), rng.randrange(40, 200), rng.randrange(40, 200))
    im = Image.new("RGB", (width, height), base)
    draw = ImageDraw.Draw(im)
    for y in range(height):
        shade = int(80 * y / max(height - 1, 1))
        draw.line([(0, y), (width, y)], fill=tuple(min(255, c + shade) for c in base))
    for _ in range(6):
        r = rng.randrange(min(width, height) // 10, min(width, height) // 3)
        x, y = rng.randrange(width), rng.randrange(height)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(255, 255, 255), width=3)
    out = io.BytesIO()
    im.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def noisy_jpeg(size: int, seed: int = 0) -> bytes:
    """A JPEG of roughly ``size`` bytes (random pixels do not compress)."""
    side = max(16, int((size / 1.2) ** 0.5))
    rng = random.Random(seed)
    im = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=75)
    return out.getvalue()


def truncated(data: bytes) -> bytes:
    """The first half of ``data``: the header parses, the pixel data does not."""
    return data[: len(data) // 2]


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims ``width`` x ``height`` pixels.

    Only the header is needed to refuse it; a real image of that size would take
    gigabytes to decode, which is what the pixel limit protects against.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def portrait(size: int = 480, seed: int = 0) -> bytes:
    """A friendly cartoon face on a gradient, as a PNG: the avatar in the screenshots."""
    rng = random.Random(seed)
    top = (rng.randrange(60, 140), rng.randrange(110, 190), rng.randrange(180, 255))
    bottom = (rng.randrange(180, 255), rng.randrange(120, 200), rng.randrange(60, 140))
    im = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(im)
    for y in range(size):
        t = y / (size - 1)
        draw.line(
            [(0, y), (size, y)],
            fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    c, r = size / 2, size * 0.3
    skin = (rng.randrange(200, 250), rng.randrange(160, 210), rng.randrange(120, 170))
    draw.ellipse(
        [c - r, c - r * 0.9, c + r, c + r * 1.1], fill=skin, outline=(60, 40, 30), width=size // 80
    )
    hair = (rng.randrange(20, 90), rng.randrange(10, 60), rng.randrange(0, 40))
    draw.chord([c - r, c - r * 0.95, c + r, c + r * 0.6], 180, 360, fill=hair)
    eye = r * 0.12
    for dx in (-0.38, 0.38):
        ex, ey = c + dx * r, c + 0.05 * r
        draw.ellipse([ex - eye, ey - eye, ex + eye, ey + eye], fill=(40, 40, 60))
    draw.arc(
        [c - r * 0.45, c + r * 0.1, c + r * 0.45, c + r * 0.65],
        20,
        160,
        fill=(120, 40, 40),
        width=size // 60,
    )
    out = io.BytesIO()
    im.save(out, "PNG", optimize=True)
    return out.getvalue()


def phone_photo(width: int = 480, height: int = 720) -> bytes:
    """A portrait photo as phones store it: a JPEG ``height`` wide and ``width`` high whose
    EXIF orientation (6: turn 90 degrees clockwise) shows it ``width`` x ``height``, upright,
    with :func:`portrait`'s face in its centred square."""
    upright = Image.new("RGB", (width, height), (235, 225, 205))
    with Image.open(io.BytesIO(portrait(width))) as face:
        upright.paste(face, (0, (height - width) // 2))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()
