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
PHONE = {"width": 375, "height": 740}  # an iPhone's width in CSS pixels
# Thumbnails are shown at 128 CSS pixels and stored at twice that, for 2x screens.
THUMB_CSS, THUMB_STORED = 128, 256
TIMEOUT_MS = 20_000
MAX_BYTES = int(os.environ.get("E2E_AVATAR_MAX_BYTES", str(5 * 1024 * 1024)))
STAFF_NOTE = "The page you asked for is for staff: log in with a staff account."
LOGGED_OUT = "You have been logged out."


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


def check_screenshot(path: Path, viewport: dict = VIEWPORT) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width == viewport["width"] and im.height >= viewport["height"] // 2


def assert_fits_the_width(page, width: int) -> None:
    """Nothing sticks out sideways: no horizontal scrolling, the header within the screen."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll} px wide on a {width} px screen"
    for selector in ("header.top", "header.top nav", "main"):
        right = page.locator(selector).evaluate("e => e.getBoundingClientRect().right")
        assert right <= width, f"{selector} ends at {right} px on a {width} px screen"


# Each piece of text in the navigation, with the (top, bottom) of each box it is laid
# out in: a piece that wraps has boxes one below the other.
NAV_TEXT_BOXES = """nav => {
  const pieces = [];
  const walk = document.createTreeWalker(nav, NodeFilter.SHOW_TEXT);
  for (let node = walk.nextNode(); node; node = walk.nextNode()) {
    if (!node.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const boxes = Array.from(range.getClientRects(), r => [r.top, r.bottom]);
    pieces.push([node.textContent.trim(), boxes]);
  }
  return pieces;
}"""


def assert_nav_on_one_line(page, items: list[str]) -> None:
    """Every navigation item shows, and all of them on one line, none wrapped."""
    nav = page.locator("header.top nav")
    pieces = nav.evaluate(NAV_TEXT_BOXES)
    assert [text for text, _ in pieces] == items, pieces
    boxes = [box for _, text_boxes in pieces for box in text_boxes]
    # One line: every box overlaps every other vertically.
    assert max(top for top, _ in boxes) < min(bottom for _, bottom in boxes), pieces
    for item in nav.locator(":scope > *").all():
        assert item.is_visible()


def new_context(browser, target: Target, viewport: dict, **options):
    context = browser.new_context(base_url=target.site_url, viewport=viewport, **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def log_in(page, username: str, password: str, then: str) -> None:
    page.goto(f"/accounts/login/?next={then}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"**{then}")


def assert_logged_out(page, target: Target) -> None:
    """A log out lands on the home page, which says so and offers to log in again."""
    page.wait_for_url(target.site_url + "/")
    assert page.locator(".messages").inner_text() == LOGGED_OUT
    assert page.locator("header.top nav").get_by_text("Log in").is_visible()


def rendered_size(page, selector: str) -> tuple[int, int]:
    """The decoded size of an ``<img>``, once the browser has finished loading it."""
    image = page.locator(selector)
    image.wait_for()
    page.wait_for_function("img => img.complete", arg=image.element_handle())
    return tuple(image.evaluate("img => [img.naturalWidth, img.naturalHeight]"))


def test_sign_up_and_upload_in_a_browser(target: Target, browser, shots: Path):
    username = new_username("ada_", 6)
    context = new_context(browser, target, VIEWPORT)
    try:
        page = context.new_page()
        page.goto("/accounts/signup/")
        page.fill("#id_username", username)
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD + "!")
        page.click("main form button[type=submit]")
        # The mismatch is shown in the site's error box, tied to the input.
        error = page.locator("#id_password2_error")
        assert "didn" in error.inner_text()
        assert page.locator("#id_password2_error").evaluate("e => e.closest('.errors') !== null")
        assert page.get_attribute("#id_password2", "aria-invalid") == "true"
        assert "id_password2_error" in page.get_attribute("#id_password2", "aria-describedby")
        page.screenshot(path=shots / "signup-error.png")
        check_screenshot(shots / "signup-error.png")

        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url("**/avatar/")

        # A phone's portrait photo: stored 720 x 480, shown 480 x 720 (EXIF orientation).
        page.set_input_files(
            "#id_image",
            files=[
                {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": images.phone_photo()}
            ],
        )
        page.click("form.upload button[type=submit]")
        page.wait_for_url(f"**/u/{username}/")

        thumb = ".profile .avatar-frame img"
        assert rendered_size(page, thumb) == (THUMB_STORED, THUMB_STORED)
        shown = page.locator(thumb).evaluate("i => [i.clientWidth, i.clientHeight]")
        assert shown == [THUMB_CSS, THUMB_CSS]
        assert page.locator(".profile h1").inner_text() == username
        assert "480 \u00d7 720 pixels" in page.locator(".profile .meta").inner_text()
        assert page.request.get("/favicon.ico").status == 200

        page.screenshot(path=shots / "profile.png")
        check_screenshot(shots / "profile.png")

        # The original behind the thumbnail's link renders, upright.
        page.click(".profile .avatar-frame")
        assert rendered_size(page, "img") == (480, 720)

        # Logging out from the navigation's button says so on the page it lands on.
        page.go_back()
        page.click("header.top nav button:text('Log out')")
        assert_logged_out(page, target)
    finally:
        context.close()


def test_phone_width_log_out_and_remove(target: Target, browser, shots: Path):
    client = target.client()
    # A long name (30 characters): the navigation cuts it rather than wrap.
    username = new_username("bea_", 26)
    assert client.sign_up(username, PASSWORD).status_code == 302
    upload = client.upload(images.portrait(), "me.png", "image/png")
    assert upload.status_code == 302, upload.text[:2000]

    context = new_context(browser, target, PHONE, device_scale_factor=2, is_mobile=True)
    try:
        page = context.new_page()
        log_in(page, username, PASSWORD, "/avatar/")
        assert_fits_the_width(page, PHONE["width"])
        assert_nav_on_one_line(page, ["Gallery", username, "My avatar", "Log out"])
        page.goto(f"/u/{username}/")
        assert_fits_the_width(page, PHONE["width"])
        page.screenshot(path=shots / "profile-phone.png", scale="css")
        check_screenshot(shots / "profile-phone.png", PHONE)

        # Remove asks first; "Keep it" keeps it.
        page.goto("/avatar/")
        page.click("text=Remove avatar…")
        page.wait_for_url("**/avatar/remove/")
        assert page.locator("h1").inner_text() == "Remove your avatar?"
        page.click("text=Keep it")
        page.wait_for_url("**/avatar/")
        assert client.avatar_links(username) is not None
        page.click("text=Remove avatar…")
        page.click("main form button.danger")
        page.wait_for_url("**/avatar/")
        assert "Your avatar has been removed." in page.locator(".messages").inner_text()
        assert client.avatar_links(username) is None

        # An oversized upload ends on the upload form, which says the limit and works.
        page.set_input_files(
            "#id_image",
            files=[{"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * 6_000_000}],
        )
        with page.expect_response("**/avatar/") as answer:
            page.click("form.upload button[type=submit]")
        assert answer.value.status == 413
        page.wait_for_load_state()  # the answer has come; its page may still be rendering
        assert page.locator("h1").inner_text() == "Your avatar"
        error = page.locator("#id_image_error").inner_text().replace("\xa0", " ")
        assert "That upload was too large" in error and "not stored" in error, error
        limit = f"Images may be at most {MAX_BYTES / 1024**2:.1f} MB."
        assert limit in error, error
        assert page.get_attribute("#id_image", "aria-invalid") == "true"
        assert page.locator("header.top nav").get_by_text(username).is_visible()
        assert client.avatar_links(username) is None
        page.set_input_files(
            "#id_image",
            files=[{"name": "me.png", "mimeType": "image/png", "buffer": images.portrait()}],
        )
        page.click("form.upload button[type=submit]")
        page.wait_for_url(f"**/u/{username}/")
        assert client.avatar_links(username) is not None

        # The status page tells a non-staff user so, and offers to log in as staff.
        page.goto("/status/")
        assert page.locator("h1").inner_text() == "Staff only"
        assert "which is not a staff account" in page.locator("main").inner_text()
        page.click("text=Log out and log in as staff")
        page.wait_for_url("**/accounts/login/?next=/status/")
        assert page.locator(".messages").inner_text() == LOGGED_OUT
        assert page.locator("main .notice").inner_text() == STAFF_NOTE
        assert_fits_the_width(page, PHONE["width"])

        # A typed /accounts/logout/ is a page with the button, not the browser's error.
        log_in(page, username, PASSWORD, "/avatar/")
        page.goto("/accounts/logout/")
        assert page.locator("h1").inner_text() == "Log out"
        page.click("main form button[type=submit]")
        assert_logged_out(page, target)
    finally:
        context.close()


def test_staff_sees_the_cluster_status(target: Target, browser, shots: Path):
    if target.staff is None:
        pytest.skip("no staff account: set E2E_STAFF_USERNAME and E2E_STAFF_PASSWORD")
    for name, viewport in (("cluster-status", VIEWPORT), ("cluster-status-phone", PHONE)):
        context = new_context(browser, target, viewport)
        try:
            page = context.new_page()
            # Asked for anonymously, the page sends to the login page, which says why.
            page.goto("/status/")
            page.wait_for_url("**/accounts/login/?next=/status/")
            assert page.locator("main .notice").inner_text() == STAFF_NOTE
            page.fill("#id_username", target.staff[0])
            page.fill("#id_password", target.staff[1])
            page.click("main form button[type=submit]")
            page.wait_for_url("**/status/")
            assert page.locator("h1").inner_text() == "MogileFS cluster status"
            nav = ["Gallery", target.staff[0], "My avatar", "Status", "Log out"]
            assert_nav_on_one_line(page, nav)
            hosts = {host.name for host in target.admin.get_hosts()}
            table = page.locator("section").first.inner_text()
            assert hosts and all(name in table for name in hosts)
            # Sizes in human units; the native stack's devices share one disk, and say so.
            devices = page.locator("table.devices").inner_text().replace("\xa0", " ")
            assert " GB" in devices or " TB" in devices, devices
            if target.stack is not None:
                assert "taken as one filesystem" in page.locator("main").inner_text()
            if viewport is PHONE:
                assert_fits_the_width(page, PHONE["width"])

            page.screenshot(path=shots / f"{name}.png", full_page=True)
            check_screenshot(shots / f"{name}.png", viewport)
        finally:
            context.close()
