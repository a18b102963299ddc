"""Every bad upload gets a 4xx and a message saying what is wrong, never a 500."""

from __future__ import annotations

import io
import re
import struct

import pytest
from avatars.models import Avatar
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

pytestmark = [pytest.mark.unit, pytest.mark.django_db]


def post(client, data: bytes | None, name: str = "me.jpg"):
    payload = {} if data is None else {"image": SimpleUploadedFile(name, data)}
    return client.post("/avatar/", payload)


def assert_refused(response, message: str, memory_storages, status: int = 400) -> None:
    assert response.status_code == status
    assert message in response.content.decode()
    assert not Avatar.objects.exists()
    assert memory_storages.all_files() == set()


def test_no_file(alice, memory_storages):
    assert_refused(post(alice, None), "Choose an image to upload.", memory_storages)


def test_empty_file(alice, memory_storages):
    response = post(alice, b"")
    assert_refused(response, "“me.jpg” was not accepted. The file is empty.", memory_storages)


def test_the_message_names_the_rejected_file_and_marks_the_input(alice, memory_storages):
    response = post(alice, b"not a picture", "holiday <2024>.png")
    assert_refused(response, "not an image we can read", memory_storages)
    page = response.content.decode()
    box = '<div class="errors" role="alert"><ul class="errorlist" id="id_image_error"><li>'
    assert box + "“holiday &lt;2024&gt;.png” was not accepted. The file is not an image" in page
    tag = re.search(r'<input type="file"[^>]*>', page)[0]
    assert 'aria-invalid="true"' in tag
    assert 'aria-describedby="id_image_helptext id_image_error"' in tag
    assert 'id="id_image_helptext"' in page


def test_a_long_file_name_is_shortened_in_the_message(alice, memory_storages):
    response = post(alice, b"nope", "x" * 200 + ".png")
    assert_refused(response, "“" + "x" * 59 + "…” was not accepted.", memory_storages)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"hello, I am text pretending to be a picture\n", "me.jpg"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "me.png"),
        (b"\x00" * 2048, "zeros.gif"),
    ],
)
def test_not_an_image_whatever_the_extension(alice, memory_storages, data, name):
    assert_refused(post(alice, data, name), "not an image we can read", memory_storages)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "PPM", "ICO"])
def test_wrong_format_named_in_the_message(alice, img, memory_storages, fmt):
    response = post(alice, img.bytes(fmt), "me.jpg")
    assert_refused(response, f"{fmt} images are not accepted", memory_storages)
    assert "JPEG, PNG, GIF or WebP" in response.content.decode()


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_jpeg(alice, img, memory_storages, cut):
    data = img.noisy_jpeg()
    response = post(alice, data[: int(len(data) * cut)])
    assert_refused(response, "damaged or truncated", memory_storages)


def test_truncated_png(alice, img, memory_storages):
    data = img.bytes("PNG", (300, 300))
    assert_refused(post(alice, data[:-40], "a.png"), "damaged or truncated", memory_storages)


def test_corrupt_png_checksum(alice, img, memory_storages):
    data = bytearray(img.bytes("PNG", (40, 40)))
    data[data.index(b"IDAT") + 6] ^= 0xFF  # in the pixel data: the chunk's CRC no longer matches
    assert_refused(post(alice, bytes(data), "a.png"), "damaged or truncated", memory_storages)


def test_png_with_a_broken_chunk_after_the_pixels(alice, img, memory_storages):
    # Decoding stops at the pixel data and would accept this; verify() reads every
    # chunk's checksum up to IEND and refuses it.
    data = img.bytes("PNG", (40, 40))
    end = data.index(b"IEND") - 4
    text = b"Comment\0hello"
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + b"\0\0\0\0"  # wrong CRC
    broken = data[:end] + chunk + data[end:]
    assert_refused(post(alice, broken, "a.png"), "damaged or truncated", memory_storages)


def test_too_many_bytes(alice, img, memory_storages, settings):
    data = img.noisy_jpeg((64, 64))
    settings.AVATAR_MAX_BYTES = len(data) - 1
    response = post(alice, data)
    assert_refused(response, "The file is too large", memory_storages)
    assert "the limit is" in response.content.decode()


def test_exactly_the_byte_limit_is_accepted(alice, img, memory_storages, settings):
    data = img.noisy_jpeg((64, 64))
    settings.AVATAR_MAX_BYTES = len(data)
    assert post(alice, data).status_code == 302
    assert Avatar.objects.count() == 1


def upload_form(page: str) -> str:
    form = re.search(
        r'<form method="post" enctype="multipart/form-data" class="upload"[^>]*>(.*?)</form>',
        page,
        re.S,
    )
    assert form, page
    return form[1]


def test_huge_request_ends_on_the_upload_form(alice, img, memory_storages, settings):
    settings.REQUEST_MAX_BYTES = 10_000
    settings.AVATAR_MAX_BYTES = 9_000
    response = post(alice, b"\xff" * 20_000)
    assert_refused(response, "That upload was too large", memory_storages, status=413)
    page = response.content.decode()
    # The upload form again, the reason and the limit in its field's error box.
    form = upload_form(page).replace("\xa0", " ")  # filesizeformat's no-break spaces
    assert 'name="csrfmiddlewaretoken"' in form
    error = re.search(r'<ul class="errorlist" id="id_image_error"><li>(.*?)</li>', form)
    assert error, form
    assert re.fullmatch(
        r"That upload was too large \(19\.\d KB\) and was not stored\. "
        r"Images may be at most 8\.8 KB\.",
        error[1],
    ), error[1]
    assert 'aria-invalid="true"' in re.search(r'<input type="file"[^>]*>', form)[0]
    assert "at most 8.8 KB and 16 megapixels" in form  # the help text
    # The site's page for the logged-in user, as on every other page.
    assert 'href="/u/alice/">alice</a>' in page
    assert 'action="/accounts/logout/"' in page
    assert "Sign up" not in page and 'href="/accounts/login/"' not in page
    # The form works: the next, smaller upload is taken.
    assert post(alice, img.bytes("PNG")).status_code == 302
    assert Avatar.objects.count() == 1


def test_huge_replacement_keeps_the_current_avatar(
    alice, user, img, memory_storages, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert post(alice, img.bytes("PNG")).status_code == 302
    avatar = Avatar.objects.get(user=user)
    files = memory_storages.all_files()
    settings.REQUEST_MAX_BYTES = 10_000
    with django_capture_on_commit_callbacks(execute=True):
        response = post(alice, b"\xff" * 20_000)
    assert response.status_code == 413
    assert avatar.thumbnail.url in response.content.decode()
    assert "Replace with an image" in upload_form(response.content.decode())
    assert Avatar.objects.get(user=user).image.name == avatar.image.name
    assert memory_storages.all_files() == files


def test_form_fields_over_the_memory_limit_end_on_the_upload_form(
    alice, img, memory_storages, settings
):
    # Django's own limit on the form's other fields (RequestDataTooBig), under ours.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    data = {"image": SimpleUploadedFile("me.png", img.bytes("PNG")), "note": "x" * 5_000}
    response = alice.post("/avatar/", data)
    assert_refused(response, "was not read and nothing was stored", memory_storages, status=413)
    form = upload_form(response.content.decode())
    assert "more than 1000\xa0bytes of form fields" in form
    assert 'name="csrfmiddlewaretoken"' in form
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
    assert post(alice, img.bytes("PNG")).status_code == 302


def test_huge_request_of_an_anonymous_client(client, memory_storages, settings):
    settings.REQUEST_MAX_BYTES = 10_000
    response = post(client, b"\xff" * 20_000)
    assert_refused(response, "That upload is too large", memory_storages, status=413)
    assert 'href="/accounts/login/"' in response.content.decode()


def test_too_many_pixels_checked_from_the_header(alice, img, memory_storages, settings):
    settings.AVATAR_MAX_PIXELS = 100 * 100
    response = post(alice, img.bytes("PNG", (101, 100)), "wide.png")
    assert_refused(response, "The image is too big (101x100 pixels)", memory_storages)
    assert "0.01 megapixels" in response.content.decode()


def test_decompression_bomb_header_is_never_decoded(alice, img, memory_storages, monkeypatch):
    # 60 000 x 60 000 = 3.6 gigapixels claimed by a file of a few hundred bytes.
    # Decoding it would take ~10 GB; the header check refuses it first.
    bomb = img.bomb(60_000, 60_000)
    assert len(bomb) < 1000
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded a bomb"))
    response = post(alice, bomb, "bomb.png")
    # Pillow refuses it before telling its size; the header is read again for the message.
    assert_refused(
        response,
        "“bomb.png” was not accepted. The image is too big (60000x60000 pixels); "
        "the limit is 16 megapixels.",
        memory_storages,
    )


def test_pillows_own_bomb_limit_applies_when_ours_is_higher(
    alice, img, memory_storages, settings, monkeypatch
):
    # Our limit is set absurdly high. Between Image.MAX_IMAGE_PIXELS (~89 megapixels)
    # and twice that, Pillow only warns (DecompressionBombWarning): that must still be
    # a refusal, from the header, without decoding.
    settings.AVATAR_MAX_PIXELS = 10**12
    side = int((Image.MAX_IMAGE_PIXELS * 1.5) ** 0.5)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded a bomb"))
    with pytest.warns(Image.DecompressionBombWarning):
        response = post(alice, img.bomb(side, side), "bomb.png")
    assert_refused(response, f"The image is too big ({side}x{side} pixels)", memory_storages)
    assert "the limit is 89.5 megapixels" in response.content.decode()


def test_each_accepted_format(alice, img, memory_storages, django_capture_on_commit_callbacks):
    cases = [
        ("JPEG", "RGB", {}, "image/jpeg", "jpg"),
        ("PNG", "RGB", {}, "image/png", "jpg"),
        ("PNG", "RGBA", {}, "image/png", "png"),
        ("GIF", "RGB", {}, "image/gif", "jpg"),
        ("GIF", "RGBA", {}, "image/gif", "png"),  # transparent GIF -> PNG thumbnail
        ("WEBP", "RGB", {}, "image/webp", "jpg"),
        ("WEBP", "RGBA", {"lossless": True}, "image/webp", "png"),
    ]
    for fmt, mode, save_args, content_type, thumb_ext in cases:
        with django_capture_on_commit_callbacks(execute=True):
            response = post(alice, img.bytes(fmt, (200, 100), mode, **save_args), "x.bin")
        assert response.status_code == 302, (fmt, mode, response.content[:500])
        avatar = Avatar.objects.get()
        assert avatar.content_type == content_type
        assert avatar.image.name.endswith("." + content_type.split("/")[1].replace("jpeg", "jpg"))
        assert avatar.thumbnail.name.endswith("." + thumb_ext), (fmt, mode)
        with avatar.thumbnail.open() as f:
            thumb = Image.open(io.BytesIO(f.read()))
            assert thumb.size == (256, 256)
            assert thumb.mode == ("RGBA" if thumb_ext == "png" else "RGB")
    assert len(memory_storages.all_files()) == 2  # each replace deleted the previous pair


def test_exif_orientation_is_applied_to_the_thumbnail(
    alice, user, img, memory_storages, django_capture_on_commit_callbacks
):
    # Stored 200 wide x 100 high, red on the left; orientation 6 says "rotate 90 degrees
    # clockwise to display", so it shows 100 wide x 200 high with red at the top.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = img.bytes("JPEG", (200, 100), exif=exif.tobytes())
    with django_capture_on_commit_callbacks(execute=True):
        assert post(alice, data).status_code == 302
    avatar = Avatar.objects.get(user=user)
    assert (avatar.width, avatar.height) == (100, 200)  # as displayed, upright
    assert (avatar.thumb_width, avatar.thumb_height) == (256, 256)
    assert "100 \u00d7 200 pixels" in alice.get("/u/alice/").content.decode()
    with avatar.thumbnail.open() as f:
        thumb = Image.open(io.BytesIO(f.read()))
        assert thumb.size == (256, 256)
        top, bottom = thumb.getpixel((128, 10)), thumb.getpixel((128, 245))
    assert top[0] > 200 and top[2] < 60, top  # red
    assert bottom[2] > 200 and bottom[0] < 60, bottom  # blue
    with avatar.image.open() as f, Image.open(io.BytesIO(f.read())) as original:
        # The original is not re-encoded and keeps its orientation, so it shows upright.
        assert original.size == (200, 100)
        assert dict(original.getexif()) == {0x0112: 6}
        assert original.tobytes() == Image.open(io.BytesIO(data)).tobytes()


def test_large_image_within_limits_is_thumbnailed(
    alice, user, img, memory_storages, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert post(alice, img.noisy_jpeg((1600, 1200))).status_code == 302
    avatar = Avatar.objects.get(user=user)
    assert (avatar.width, avatar.height, avatar.thumb_width, avatar.thumb_height) == (
        1600,
        1200,
        256,
        256,
    )


def test_form_error_page_keeps_the_current_avatar(
    alice, user, img, memory_storages, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post(alice, img.bytes())
    avatar = Avatar.objects.get(user=user)
    response = post(alice, b"not an image")
    assert response.status_code == 400
    assert avatar.thumbnail.url in response.content.decode()
    assert Avatar.objects.get(user=user).image.name == avatar.image.name
    assert len(memory_storages.all_files()) == 2
