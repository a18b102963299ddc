"""avatars.images and avatars.metadata: bounded work on big images, metadata removed."""

from __future__ import annotations

import io
import random
import struct
import threading
import time
import zlib

import pytest
from avatars import images, metadata
from avatars.images import check_image
from avatars.models import Avatar
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, PngImagePlugin

pytestmark = pytest.mark.unit

THUMB = 128
LIMITS = {"max_bytes": 5 * 1024**2, "max_pixels": 16_000_000, "thumb_size": THUMB}
GPS_IFD = ExifTags.IFD.GPSInfo
ORIENTATION = ExifTags.Base.Orientation


def two_colours(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue (transparent when ``mode`` has alpha)."""
    im = Image.new("RGBA" if "A" in mode else "RGB", size)
    w, h = size
    im.paste((255, 0, 0, 255) if "A" in mode else (255, 0, 0), (0, 0, w // 2, h))
    im.paste((0, 0, 255, 0) if "A" in mode else (0, 0, 255), (w // 2, 0, w, h))
    if mode == "P":
        return im.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    return im


def encoded(im: Image.Image, fmt: str, **save_args) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **save_args)
    return out.getvalue()


def private_exif(orientation: int = 1) -> Image.Exif:
    """EXIF as a phone writes it: camera, serial number, time and GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 12"
    exif[ExifTags.Base.DateTime] = "2024:05:01 12:34:56"
    exif[ExifTags.Base.BodySerialNumber] = "SN-0123456789"
    if orientation != 1:
        exif[ORIENTATION] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.2)
    return exif


SECRETS = (b"PhoneMaker", b"Phone 12", b"2024:05:01", b"SN-0123456789", b"secret")
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def assert_no_secrets(data: bytes) -> None:
    for secret in SECRETS:
        assert secret not in data, secret


def pixels(data: bytes) -> list[bytes]:
    """The decoded pixels of every frame."""
    frames = []
    with Image.open(io.BytesIO(data)) as im:
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            frames.append(im.convert("RGBA").tobytes())
    return frames


# -- the work done on a big image ----------------------------------------------------------


class Spy:
    """Records the size of every image given to exif_transpose and convert."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.transposed: list[tuple[int, int]] = []
        self.converted: list[tuple[int, int]] = []
        real_transpose, real_convert = ImageOps.exif_transpose, Image.Image.convert

        def exif_transpose(image, **kwargs):
            self.transposed.append(image.size)
            return real_transpose(image, **kwargs)

        def convert(image, *args, **kwargs):
            self.converted.append(image.size)
            return real_convert(image, *args, **kwargs)

        monkeypatch.setattr(ImageOps, "exif_transpose", exif_transpose)
        monkeypatch.setattr(Image.Image, "convert", convert)


def palette_image(size: tuple[int, int]) -> Image.Image:
    """Red on the left, index 1 (blue, made transparent when saving) on the right."""
    im = Image.new("P", size, 1)
    im.putpalette([255, 0, 0, 0, 0, 255])
    im.paste(0, (0, 0, size[0] // 2, size[1]))
    return im


BIG = (3000, 2000)
BIG_IMAGES = {
    # name: (bytes, whether the right half is transparent)
    "RGBA PNG": lambda: (encoded(two_colours(BIG, "RGBA"), "PNG"), True),
    "palette PNG": lambda: (encoded(palette_image(BIG), "PNG", transparency=1), True),
    "transparent GIF": lambda: (encoded(palette_image(BIG), "GIF", transparency=1), True),
    "grey PNG": lambda: (encoded(two_colours(BIG).convert("L"), "PNG"), False),
    "WebP": lambda: (encoded(two_colours(BIG), "WEBP", quality=50), False),
    "JPEG too long for draft": lambda: (encoded(two_colours((9000, 200)), "JPEG"), False),
}


@pytest.mark.parametrize("name", list(BIG_IMAGES))
def test_only_the_decode_is_full_size(monkeypatch, name):
    # Turning upright and converting a 6300 x 6300 RGBA image used to copy it twice
    # (~480 MB): both must only ever see a small image, or a tile of the big one.
    data, transparent = BIG_IMAGES[name]()
    spy = Spy(monkeypatch)
    checked = check_image(io.BytesIO(data), **LIMITS)
    bound = images.work_bound(THUMB)
    assert spy.transposed and all(max(size) < bound for size in spy.transposed), spy.transposed
    big = [s for s in spy.converted if s[0] * s[1] > images.TILE_PIXELS and max(s) >= bound]
    assert not big, big
    assert max(checked.thumbnail.width, checked.thumbnail.height) == THUMB
    assert checked.thumbnail.content_type == ("image/png" if transparent else "image/jpeg")
    with Image.open(io.BytesIO(data)) as im:
        source = im.convert("RGBA")
    thumb = Image.open(io.BytesIO(checked.thumbnail.data)).convert("RGBA")
    for x, y in ((0.1, 0.5), (0.9, 0.5)):  # each half keeps its colour (or transparency)
        want = source.getpixel((int(x * source.width), int(y * source.height)))
        got = thumb.getpixel((int(x * thumb.width), int(y * thumb.height)))
        if transparent and want[3] == 0:
            assert got[3] == 0, (x, got)
        else:
            assert all(abs(a - b) < 20 for a, b in zip(got, want, strict=True)), (x, got, want)


def test_orientation_is_applied_after_shrinking(monkeypatch):
    # Stored 3000 wide x 1500 high, red on the left; orientation 6 shows it upright as
    # 1500 x 3000 with red at the top. The tiles path must keep the EXIF for that.
    spy = Spy(monkeypatch)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    data = encoded(two_colours((3000, 1500)), "PNG", exif=exif)
    checked = check_image(io.BytesIO(data), **LIMITS)
    assert all(max(size) < images.work_bound(THUMB) for size in spy.transposed)
    # The centred square of the upright image: its top half red, its bottom half blue.
    assert (checked.thumbnail.width, checked.thumbnail.height) == (THUMB, THUMB)
    thumb = Image.open(io.BytesIO(checked.thumbnail.data))
    assert thumb.size == (THUMB, THUMB)
    top, bottom = thumb.getpixel((64, 10)), thumb.getpixel((64, 118))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


@pytest.mark.parametrize(
    ("box", "factor", "size"),
    [
        ((0, 0, 997, 601), 15, (67, 41)),  # the whole image
        ((198, 0, 799, 601), 9, (67, 67)),  # its centred square, as thumbnails use
    ],
)
def test_shrinking_by_tiles_is_converting_then_reducing(monkeypatch, box, factor, size):
    monkeypatch.setattr(images, "TILE_PIXELS", 5000)  # many tiles, ragged at the edges
    rng = random.Random(1)
    noise = Image.frombytes("RGB", (997, 601), rng.randbytes(997 * 601 * 3))
    palette = noise.convert("P", palette=Image.Palette.ADAPTIVE, colors=200)
    palette.info["transparency"] = 3
    with Image.open(io.BytesIO(encoded(palette, "PNG"))) as im:
        im.load()
        small = images._shrink(im, "RGBA", 32, box)
        assert max(box[2] - box[0], box[3] - box[1]) // (images.WORK_SCALE * 32) == factor
        expected = im.crop(box).convert("RGBA").reduce(factor)
    assert small.size == expected.size == size
    assert small.tobytes() == expected.tobytes()


def test_centred_square():
    assert images.centred_square((997, 601)) == (198, 0, 799, 601)
    assert images.centred_square((200, 301)) == (0, 50, 200, 250)
    assert images.centred_square((64, 64)) == (0, 0, 64, 64)


def test_a_portrait_thumbnail_is_cropped_not_stretched():
    # 200 x 300: blue 50-pixel bands at top and bottom, red in the middle square.
    # The thumbnail is that middle square, unscaled in shape: red everywhere.
    im = Image.new("RGB", (200, 300), (0, 0, 255))
    im.paste((255, 0, 0), (0, 50, 200, 250))
    checked = check_image(io.BytesIO(encoded(im, "PNG")), **LIMITS)
    thumb = Image.open(io.BytesIO(checked.thumbnail.data)).convert("RGB")
    assert thumb.size == (THUMB, THUMB)
    for xy in ((2, 2), (THUMB // 2, 2), (THUMB // 2, THUMB - 3), (THUMB - 3, THUMB - 3)):
        r, g, b = thumb.getpixel(xy)
        assert r > 200 and b < 60, (xy, (r, g, b))
    assert (checked.width, checked.height) == (200, 300)


def test_at_most_decode_slots_decodes_at_once(monkeypatch):
    running, most = 0, 0
    lock = threading.Lock()
    real_load = ImageFile.ImageFile.load

    def slow_load(image):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.2)
            return real_load(image)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", slow_load)
    data = encoded(two_colours((200, 100)), "PNG")
    threads = [
        threading.Thread(target=check_image, args=(io.BytesIO(data),), kwargs=LIMITS)
        for _ in range(images.DECODE_SLOTS + 3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert most == images.DECODE_SLOTS


# -- metadata ---------------------------------------------------------------------------------


def test_jpeg_loses_gps_and_camera_but_keeps_orientation_colour_and_pixels():
    im = two_colours((200, 100))
    data = encoded(
        im,
        "JPEG",
        exif=private_exif(orientation=6),
        icc_profile=SRGB,
        comment=b"secret comment",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret</x:xmpmeta>',
    )
    assert b"SN-0123456789" in data and b"secret" in data
    checked = check_image(io.BytesIO(data), **LIMITS)
    stored = checked.data
    assert_no_secrets(stored)
    with Image.open(io.BytesIO(stored)) as out:
        exif = out.getexif()
        assert dict(exif) == {ORIENTATION: 6}
        assert exif.get_ifd(GPS_IFD) == {}
        assert out.info["icc_profile"] == SRGB
        assert "comment" not in out.info and "xmp" not in out.info
    assert pixels(stored) == pixels(data)  # the same coded data: nothing re-encoded
    assert (checked.width, checked.height, checked.size) == (200, 100, len(stored))


def test_jpeg_without_orientation_gets_no_exif_and_loses_trailing_data():
    data = encoded(two_colours((64, 48)), "JPEG", exif=private_exif(), progressive=True)
    data += b"trailing secret, e.g. a second picture"
    stored = check_image(io.BytesIO(data), **LIMITS).data
    assert_no_secrets(stored)
    assert b"Exif\0\0" not in stored
    assert stored.endswith(b"\xff\xd9")
    assert pixels(stored) == pixels(data)


def test_png_loses_text_exif_and_time():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret comment")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret</x:xmpmeta>")
    info.add(b"tIME", struct.pack(">HBBBBB", 2024, 5, 1, 12, 34, 56))
    data = encoded(two_colours((80, 60), "RGBA"), "PNG", pnginfo=info, exif=private_exif(3))
    assert b"secret" in data and b"eXIf" in data
    stored = check_image(io.BytesIO(data), **LIMITS).data
    assert_no_secrets(stored)
    assert b"tIME" not in stored and b"tEXt" not in stored and b"iTXt" not in stored
    with Image.open(io.BytesIO(stored)) as out:
        assert dict(out.getexif()) == {ORIENTATION: 3}
    assert pixels(stored) == pixels(data)


def test_webp_loses_exif_and_xmp():
    data = encoded(
        two_colours((80, 60)),
        "WEBP",
        lossless=True,
        exif=private_exif(),
        xmp=b"<x:xmpmeta>secret</x:xmpmeta>",
        icc_profile=SRGB,
    )
    stored = check_image(io.BytesIO(data), **LIMITS).data
    assert_no_secrets(stored)
    assert b"EXIF" not in stored and b"XMP " not in stored
    flags = stored[20]  # the VP8X chunk's flags byte
    assert flags & 0x0C == 0  # neither EXIF nor XMP announced
    with Image.open(io.BytesIO(stored)) as out:
        assert out.info["icc_profile"] == SRGB
    assert pixels(stored) == pixels(data)


def test_animated_gif_keeps_its_frames_and_loop_but_not_its_comments():
    frames = [two_colours((40, 30)), two_colours((40, 30)).transpose(Image.Transpose.ROTATE_180)]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0, duration=100)
    # A comment extension and an XMP application extension before the first image.
    comment = b"\x21\xfe" + bytes([14]) + b"secret comment" + b"\0"
    xmp_body = b"<x>secret</x>"
    xmp = b"\x21\xff\x0bXMP DataXMP" + bytes([len(xmp_body)]) + xmp_body + b"\0"
    first_image = data.index(b"\x21\xf9")  # the first frame's graphic control extension
    data = data[:first_image] + comment + xmp + data[first_image:]
    assert pixels(data)  # still a GIF Pillow reads
    stored = check_image(io.BytesIO(data), **LIMITS).data
    assert_no_secrets(stored)
    assert b"NETSCAPE2.0" in stored  # the loop count
    assert pixels(stored) == pixels(data)
    with Image.open(io.BytesIO(stored)) as out:
        assert out.n_frames == 2 and out.info["loop"] == 0


def test_a_file_that_cannot_be_walked_is_refused():
    with pytest.raises(metadata.MetadataError):
        metadata.strip(b"\xff\xd8\xff\xe1\x40\x00Exif", "JPEG")
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 100) + b"IHDR" + zlib.compress(b"")
    with pytest.raises(metadata.MetadataError):
        metadata.strip(png, "PNG")


@pytest.mark.django_db
def test_uploaded_original_is_stored_without_gps(
    alice, user, memory_storages, django_capture_on_commit_callbacks
):
    data = encoded(two_colours((120, 90)), "JPEG", exif=private_exif())
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/avatar/", {"image": SimpleUploadedFile("me.jpg", data)})
    assert response.status_code == 302
    avatar = Avatar.objects.get(user=user)
    with avatar.image.open() as f:
        stored = f.read()
    assert_no_secrets(stored)
    with Image.open(io.BytesIO(stored)) as out:
        assert out.getexif().get_ifd(GPS_IFD) == {}
    assert avatar.size == len(stored)


def test_a_phones_multi_picture_jpeg_is_accepted_as_a_plain_jpeg():
    first, second = two_colours((64, 48)), two_colours((32, 24))
    buf = io.BytesIO()
    first.save(buf, "MPO", save_all=True, append_images=[second], exif=private_exif())
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        assert im.format == "MPO" and im.n_frames == 2  # what the phone sends
    checked = check_image(
        io.BytesIO(buf.getvalue()), max_bytes=1_000_000, max_pixels=1_000_000, thumb_size=32
    )
    assert (checked.content_type, checked.extension) == ("image/jpeg", "jpg")
    with Image.open(io.BytesIO(checked.data)) as stored:
        assert stored.format == "JPEG" and getattr(stored, "n_frames", 1) == 1
        assert stored.size == (64, 48)
    assert_no_secrets(checked.data)
