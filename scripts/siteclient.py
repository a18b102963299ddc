"""A small HTTP client for the avatar site, as a browser without JavaScript would use it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

import requests

TIMEOUT = 30
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass(frozen=True)
class AvatarLinks:
    """The URLs a profile page shows: the original (link) and its thumbnail (image)."""

    image_url: str
    thumb_url: str


class _ProfileParser(HTMLParser):
    """Finds ``<a class="avatar-frame" href=original><img src=thumbnail></a>``."""

    def __init__(self) -> None:
        super().__init__()
        self.in_frame = False
        self.image: str | None = None
        self.thumb: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "a" and "avatar-frame" in (attr.get("class") or "").split():
            self.in_frame = True
            self.image = attr.get("href")
        elif tag == "img" and self.in_frame and self.thumb is None:
            self.thumb = attr.get("src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self.in_frame = False


class SiteClient:
    """One user's session (cookies, CSRF token) against ``base_url``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/"))

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self.http.get(self.url(path), **kwargs)

    def csrf_token(self, path: str) -> str:
        page = self.get(path)
        page.raise_for_status()
        match = _CSRF.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post(self, path: str, data: dict, files: dict | None = None) -> requests.Response:
        """POST a form with the CSRF token of the page at ``path``; redirects are not followed."""
        data = {"csrfmiddlewaretoken": self.csrf_token(path), **data}
        return self.http.post(
            self.url(path),
            data=data,
            files=files,
            allow_redirects=False,
            timeout=TIMEOUT,
            headers={"Referer": self.url(path)},
        )

    def sign_up(self, username: str, password: str) -> requests.Response:
        return self.post(
            "/accounts/signup/",
            {"username": username, "password1": password, "password2": password},
        )

    def log_in(self, username: str, password: str) -> requests.Response:
        return self.post("/accounts/login/", {"username": username, "password": password})

    def upload(self, data: bytes, filename: str, content_type: str) -> requests.Response:
        return self.post("/avatar/", {}, files={"image": (filename, data, content_type)})

    def remove_avatar(self) -> requests.Response:
        data = {"csrfmiddlewaretoken": self.csrf_token("/avatar/remove/")}  # the confirmation
        return self.http.post(
            self.url("/avatar/remove/"), data=data, allow_redirects=False, timeout=TIMEOUT
        )

    def avatar_links(self, username: str) -> AvatarLinks | None:
        """The avatar URLs on ``username``'s profile page, ``None`` when it shows no avatar."""
        page = self.get(f"/u/{username}/")
        page.raise_for_status()
        parser = _ProfileParser()
        parser.feed(page.text)
        if parser.image is None:
            return None
        assert parser.thumb, "the avatar link holds no thumbnail image"
        return AvatarLinks(parser.image, parser.thumb)


def key_of(url: str, media_url: str) -> str:
    """The MogileFS key behind a media URL (the storage's ``url()`` is media_url + quoted key)."""
    path = urlsplit(url).path
    prefix = urlsplit(media_url).path
    assert path.startswith(prefix), f"{url} is not under {media_url}"
    return unquote(path[len(prefix) :])
