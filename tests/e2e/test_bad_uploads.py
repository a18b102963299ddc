"""Every kind of bad upload gets its 4xx through Perlbal, and nothing is stored."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from e2e import images
from e2e.conftest import Target

pytestmark = pytest.mark.e2e

MAX_BYTES = int(os.environ.get("E2E_AVATAR_MAX_BYTES", str(5 * 1024 * 1024)))
# The site refuses a request body above MAX_BYTES + 256 KiB from Content-Length alone.
REQUEST_SLACK = 256 * 1024


def _encoded(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(images.picture(seed=7))).save(out, fmt)
    return out.getvalue()


def _padded_jpeg(size: int) -> bytes:
    """A real JPEG followed by padding, ``size`` bytes in all."""
    data = images.picture(seed=8, fmt="JPEG")
    return data + b"\0" * (size - len(data))


CASES = {
    # name: (bytes, file name, declared type, status, a phrase of the error message)
    "not an image": (b"just some text\n" * 50, "notes.png", "image/png", 400, "not an image"),
    "truncated JPEG": (
        images.truncated(images.picture(seed=9, fmt="JPEG")),
        "cut.jpg",
        "image/jpeg",
        400,
        "damaged or truncated",
    ),
    "truncated PNG": (
        images.truncated(images.picture(seed=10)),
        "cut.png",
        "image/png",
        400,
        "damaged or truncated",
    ),
    "BMP": (_encoded("BMP"), "me.bmp", "image/bmp", 400, "BMP images are not accepted"),
    "TIFF": (_encoded("TIFF"), "me.tif", "image/tiff", 400, "TIFF images are not accepted"),
    "too many pixels": (
        images.png_claiming(10_000, 10_000),
        "huge.png",
        "image/png",
        400,
        "too big",
    ),
    "empty": (b"", "empty.png", "image/png", 400, "empty"),
    "just over the size limit": (
        _padded_jpeg(MAX_BYTES + 1),
        "big.jpg",
        "image/jpeg",
        400,
        "too large",
    ),
    "far over the size limit": (
        _padded_jpeg(MAX_BYTES + REQUEST_SLACK + 1024 * 1024),
        "huge.jpg",
        "image/jpeg",
        413,
        "too large",
    ),
}


@pytest.fixture(scope="module")
def uploader(target: Target):
    from e2e.conftest import PASSWORD, new_username

    client = target.client()
    username = new_username()
    assert client.sign_up(username, PASSWORD).status_code == 302
    return client, username


@pytest.mark.parametrize("case", list(CASES))
def test_bad_upload_is_refused(uploader, case: str):
    client, username = uploader
    data, name, ctype, status, phrase = CASES[case]
    response = client.upload(data, name, ctype)
    assert response.status_code == status, response.text[:2000]
    assert phrase in response.text.lower() or phrase in response.text
    assert client.avatar_links(username) is None, "a refused upload became the avatar"


def test_form_fields_over_djangos_limit_get_the_upload_form(uploader):
    # Form fields over DATA_UPLOAD_MAX_MEMORY_SIZE (256 KiB), under the site's own limit:
    # Django stops reading partway (RequestDataTooBig). The rest of the body is read and
    # dropped before the 413, else Perlbal never gets the answer (a 30 s timeout here).
    client, username = uploader
    image = ("big.jpg", _padded_jpeg(3 * 1024 * 1024), "image/jpeg")
    response = client.post("/avatar/", {"note": "x" * 400_000}, files={"image": image})
    assert response.status_code == 413, response.text[:2000]
    assert "was not read and nothing was stored" in response.text
    assert 'class="upload"' in response.text
    assert client.avatar_links(username) is None
