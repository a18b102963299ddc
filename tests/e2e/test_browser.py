"""A real browser (Debian's Chromium, driven by Playwright) signs up and uploads an avatar.

Also takes the screenshots the README shows: set E2E_SCREENSHOT_DIR (``make
screenshots`` sets docs/screenshots) to keep them; otherwise they go to a
temporary folder and are only checked to be real images.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from e2e import images
from e2e.conftest import PASSWORD, Target, new_username

pytestmark = pytest.mark.e2e

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1100, "height": 720}
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium", pytrace=False)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Path]:
    """Where screenshots go; copied to E2E_SCREENSHOT_DIR (if set) once they are checked."""
    yield tmp_path
    keep = os.environ.get("E2E_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in tmp_path.glob("*.png"):
            shutil.copy(shot, Path(keep) / shot.name)


def check_screenshot(path: Path) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width == VIEWPORT["width"] and im.height >= VIEWPORT["height"] // 2


def rendered_size(page, selector: str) -> tuple[int, int]:
    """The decoded size of an ``<img>``, once the browser has finished loading it."""
    image = page.locator(selector)
    image.wait_for()
    page.wait_for_function("img => img.complete", arg=image.element_handle())
    return tuple(image.evaluate("img => [img.naturalWidth, img.naturalHeight]"))


def test_sign_up_and_upload_in_a_browser(target: Target, browser, shots: Path):
    username = new_username("ada_", 6)
    context = browser.new_context(base_url=target.site_url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/accounts/signup/")
        page.fill("#id_username", username)
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url("**/avatar/")

        page.set_input_files(
            "#id_image",
            files=[{"name": "portrait.png", "mimeType": "image/png", "buffer": images.portrait()}],
        )
        page.click("form.upload button[type=submit]")
        page.wait_for_url(f"**/u/{username}/")

        width, height = rendered_size(page, ".profile .avatar-frame img")
        assert width > 0 and height > 0, "the avatar thumbnail did not render"
        assert page.locator(".profile h1").inner_text() == username

        page.screenshot(path=shots / "profile.png")
        check_screenshot(shots / "profile.png")

        # The original behind the thumbnail's link renders too.
        page.click(".profile .avatar-frame")
        assert rendered_size(page, "img") == (480, 480)
    finally:
        context.close()


def test_staff_sees_the_cluster_status(target: Target, browser, shots: Path):
    if target.staff is None:
        pytest.skip("no staff account: set E2E_STAFF_USERNAME and E2E_STAFF_PASSWORD")
    context = browser.new_context(base_url=target.site_url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/accounts/login/?next=/status/")
        page.fill("#id_username", target.staff[0])
        page.fill("#id_password", target.staff[1])
        page.click("main form button[type=submit]")
        page.wait_for_url("**/status/")
        assert page.locator("h1").inner_text() == "MogileFS cluster status"
        hosts = {host.name for host in target.admin.get_hosts()}
        table = page.locator("section").first.inner_text()
        assert hosts and all(name in table for name in hosts)

        page.screenshot(path=shots / "cluster-status.png", full_page=True)
        check_screenshot(shots / "cluster-status.png")
    finally:
        context.close()
