"""create_close's checksum answers against real storage nodes, as MogileFS 2.73 gives them.

Every test runs against the fake cluster or a real one (``MOGILEFS_TRACKERS``), using
its ``avatar`` class (hashtype MD5, as mogile/cluster.toml has it). Then the client: a store
into an MD5 class is verified, and a mismatch leaves nothing under the key.
"""

from __future__ import annotations

import hashlib
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from django_mogilefs.client import MogileFSClient
from django_mogilefs.exceptions import ChecksumMismatchError
from django_mogilefs.testing.cluster import MogileCluster
from django_mogilefs.testing.faketracker.client import Reply, TrackerClient

pytestmark = pytest.mark.integration

BODY = b"checksummed\n"
MD5 = "MD5:" + hashlib.md5(BODY).hexdigest()
SHA1 = "SHA-1:" + hashlib.sha1(BODY).hexdigest()
WRONG_MD5 = "MD5:" + "0" * 32


@pytest.fixture
def key() -> str:
    return f"ck-test/{uuid.uuid4().hex}"


class Upload:
    """create_open and a PUT of BODY; ``close(**args)`` sends create_close."""

    def __init__(self, client: TrackerClient, domain: str, key: str, cls: str) -> None:
        self.client, self.domain, self.key = client, domain, key
        opened = client.call("create_open", domain=domain, key=key, **{"class": cls})
        assert opened.ok, opened.raw
        self.fid, self.devid, self.path = (opened.args[k] for k in ("fid", "devid", "path"))
        put = urllib.request.Request(self.path, data=BODY, method="PUT")
        with urllib.request.urlopen(put, timeout=10) as resp:
            assert resp.status in (200, 201, 204)

    def close(self, **args: object) -> Reply:
        return self.client.call(
            "create_close",
            domain=self.domain,
            key=self.key,
            size=len(BODY),
            fid=self.fid,
            devid=self.devid,
            path=self.path,
            **args,
        )


def upload(tracker_client: TrackerClient, cluster: MogileCluster, key: str, cls: str) -> Upload:
    return Upload(tracker_client, cluster.domain, key, cls)


def file_info(cluster: MogileCluster, key: str) -> Reply:
    return cluster.call("file_info", domain=cluster.domain, key=key)


def test_a_verified_checksum_is_stored_and_shown_by_file_info(
    mogile_cluster, tracker_client, md5_class, key
) -> None:
    assert (
        upload(tracker_client, mogile_cluster, key, md5_class)
        .close(checksum=MD5, checksumverify=1)
        .ok
    )
    info = file_info(mogile_cluster, key)
    assert info.args["checksum"] == MD5 and info.args["class"] == md5_class


def test_a_mismatch_is_refused_and_the_upload_thrown_away(
    mogile_cluster, tracker_client, md5_class, key
) -> None:
    up = upload(tracker_client, mogile_cluster, key, md5_class)
    reply = up.close(checksum=WRONG_MD5, checksumverify=1)
    assert reply.code == "checksum_mismatch"
    assert reply.message == (
        f"Expected: Checksum[f={up.fid};MD5={'0' * 32}]; actual: {MD5}; path: {up.path}"
    )
    assert file_info(mogile_cluster, key).code == "unknown_key"
    assert up.close(checksum=MD5, checksumverify=1).code == "no_temp_file"


def test_a_mismatch_keeps_the_file_already_under_the_key(
    mogile_cluster, tracker_client, md5_class, key
) -> None:
    assert upload(tracker_client, mogile_cluster, key, md5_class).close(checksum=MD5).ok
    fid = file_info(mogile_cluster, key).args["fid"]
    up = upload(tracker_client, mogile_cluster, key, md5_class)
    assert up.close(checksum=WRONG_MD5, checksumverify=1).code == "checksum_mismatch"
    assert file_info(mogile_cluster, key).args["fid"] == fid


def test_without_checksumverify_the_sent_checksum_is_stored_unchecked(
    mogile_cluster, tracker_client, md5_class, key
) -> None:
    assert upload(tracker_client, mogile_cluster, key, md5_class).close(checksum=WRONG_MD5).ok
    assert file_info(mogile_cluster, key).args["checksum"] == WRONG_MD5


def test_a_class_without_hashtype_still_verifies_but_stores_nothing(
    mogile_cluster, tracker_client, key
) -> None:
    up = upload(tracker_client, mogile_cluster, key, "thumb")
    assert up.close(checksum=WRONG_MD5, checksumverify=1).code == "checksum_mismatch"
    assert (
        upload(tracker_client, mogile_cluster, key, "thumb")
        .close(checksum=MD5, checksumverify=1)
        .ok
    )
    assert "checksum" not in file_info(mogile_cluster, key).args


def test_another_hash_than_the_class_one_is_verified_but_not_saved(
    mogile_cluster, tracker_client, md5_class, key
) -> None:
    up = upload(tracker_client, mogile_cluster, key, md5_class)
    assert up.close(checksum=SHA1, checksumverify=1).ok
    assert file_info(mogile_cluster, key).args["checksum"] == "MISSING"


def test_a_malformed_checksum_keeps_the_temp_file(
    mogile_cluster, tracker_client, md5_class, key
) -> None:
    up = upload(tracker_client, mogile_cluster, key, md5_class)
    assert up.close(checksum="MD5:xyz", checksumverify=1).code == "invalid_checksum_format"
    assert up.close(checksum=MD5, checksumverify=1).ok


# -- the client ----------------------------------------------------------------------


@pytest.fixture
def client(mogile_cluster: MogileCluster) -> Iterator[MogileFSClient]:
    c = MogileFSClient(mogile_cluster.trackers, mogile_cluster.domain)
    yield c
    c.close()


def test_the_client_stores_into_an_md5_class_with_a_verified_checksum(
    client, md5_class, key
) -> None:
    client.store(key, BODY, cls=md5_class)
    assert client.file_info(key).checksum == MD5


def test_a_mismatch_is_a_typed_error_and_nothing_is_left_under_the_key(
    client, md5_class, key, monkeypatch
) -> None:
    # The bytes that reach the node differ from the ones the client hashed.
    monkeypatch.setattr("django_mogilefs.client._HashingReader.hexdigest", lambda self: "0" * 32)
    with pytest.raises(ChecksumMismatchError, match="checksum_mismatch"):
        client.store(key, BODY, cls=md5_class)
    assert not client.exists(key)


REPLICATION_DEADLINE = 60.0


def wait_for_copies(cluster: MogileCluster, key: str, copies: int) -> Reply:
    deadline = time.monotonic() + REPLICATION_DEADLINE
    while True:
        info = file_info(cluster, key)
        if int(info.args.get("devcount", 0)) >= copies:
            return info
        assert time.monotonic() < deadline, f"{key}: {info.args.get('devcount')} copies"
        time.sleep(0.25)


def test_replication_checks_every_copy_it_reads_against_the_stored_checksum(
    mogile_cluster, tracker_client, md5_class, key
) -> None:
    # Replicate.pm: a stored checksum that the bytes do not match ("checksum mismatch on
    # GET") leaves the file at its one copy; the same upload with the right one gets 3.
    assert upload(tracker_client, mogile_cluster, key, md5_class).close(checksum=WRONG_MD5).ok
    good = f"{key}-good"
    assert upload(tracker_client, mogile_cluster, good, md5_class).close(checksum=MD5).ok
    wait_for_copies(mogile_cluster, good, 3)
    time.sleep(2)  # the replicator has had its turns at the first one too
    assert file_info(mogile_cluster, key).args["devcount"] == "1"


def test_replication_gives_a_file_stored_without_checksum_its_class_one(
    mogile_cluster, tracker_client, md5_class, key
) -> None:
    assert upload(tracker_client, mogile_cluster, key, md5_class).close().ok
    # file_info says MISSING for a file of a class with a hashtype that has none.
    assert file_info(mogile_cluster, key).args["checksum"] == "MISSING"
    wait_for_copies(mogile_cluster, key, 3)
    deadline = time.monotonic() + 5
    while (checksum := file_info(mogile_cluster, key).args["checksum"]) == "MISSING":
        assert time.monotonic() < deadline, "no checksum after replication"
        time.sleep(0.1)
    assert checksum == MD5
