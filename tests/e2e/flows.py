"""Steps the end-to-end tests share: upload through the form, fetch through Perlbal."""

from __future__ import annotations

import re

import requests
from django_mogilefs.client import MogileFSClient
from django_mogilefs.exceptions import UnknownKeyError
from siteclient import AvatarLinks, SiteClient


def upload(client: SiteClient, username: str, data: bytes, name: str, ctype: str) -> AvatarLinks:
    response = client.upload(data, name, ctype)
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"] == f"/u/{username}/"
    links = client.avatar_links(username)
    assert links is not None, "the profile shows no avatar after the upload"
    return links


def served(client: SiteClient, url: str) -> requests.Response:
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]}"
    # Perlbal consumed the reproxy headers; storage URLs never reach the browser.
    assert not {"x-reproxy-url", "x-reproxy-cache-for"} & {h.lower() for h in response.headers}
    return response


def serve_counts(url: str) -> dict[str, float]:
    """The serve view's answers so far, by kind, from an app server's own /metrics."""
    text = requests.get(url + "/metrics", timeout=10).text
    pattern = r'^mogilefs_serve_responses_total\{kind="(\w+)"\} (\S+)$'
    return {kind: float(value) for kind, value in re.findall(pattern, text, re.M)}


def tracker_bytes(mogile: MogileFSClient, key: str) -> list[bytes]:
    """The content of every copy the tracker lists for ``key``, fetched from the nodes."""
    paths = mogile.get_paths(key, pathcount=3)
    assert paths, f"the tracker has no path for {key}"
    return [requests.get(path, timeout=10).content for path in paths]


def key_unknown(mogile: MogileFSClient, key: str) -> bool:
    try:
        mogile.file_info(key)
    except UnknownKeyError:
        return True
    return False
