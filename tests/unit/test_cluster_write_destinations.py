"""ClusterAdmin.write_destinations: where the tracker would put a new file, leaving no temp file."""

from __future__ import annotations

import pytest
from django_mogilefs.cluster import ClusterAdmin
from django_mogilefs.exceptions import NoDevicesError, ProtocolError

from .stubs import StubTracker, ok

pytestmark = pytest.mark.unit

PATH = "http://127.0.0.{n}:7500/dev{n}/0/000/000/0000000042.fid"


def multi_dest(command: str, args: dict[str, str]) -> bytes:
    if command == "create_open":
        # The real tracker's key order is random; the destinations' numbers are what count.
        return ok(
            fid=42,
            dev_count=3,
            path_2=PATH.format(n=1),
            devid_1=3,
            path_1=PATH.format(n=3),
            devid_2=1,
            devid_3=2,
            path_3=PATH.format(n=2),
        )
    return ok()


def test_offers_the_devices_in_order_and_discards_the_temp_file():
    stub = StubTracker(multi_dest)
    admin = ClusterAdmin(stub.address)
    try:
        assert admin.write_destinations("avatars", "avatar") == [3, 1, 2]
    finally:
        admin.close()
        stub.close()
    (_, opened), (close, closed) = stub.requests
    assert opened == {"domain": "avatars", "class": "avatar", "multi_dest": "1"}
    assert close == "create_close"
    # No key: the tracker throws the temp file away and answers OK.
    assert closed == {"domain": "avatars", "fid": "42", "devid": "3", "path": PATH.format(n=3)}


def test_no_devices_raises_and_sends_nothing_more():
    stub = StubTracker(lambda c, a: b"ERR no_devices No+devices+found+to+store+file\r\n")
    admin = ClusterAdmin(stub.address)
    try:
        with pytest.raises(NoDevicesError):
            admin.write_destinations("avatars")
    finally:
        admin.close()
        stub.close()
    assert stub.commands() == ["create_open"]
    assert "class" not in stub.requests[0][1]  # no class: the domain's default


def test_an_answer_without_destinations_is_a_protocol_error():
    stub = StubTracker(lambda c, a: ok(fid=7, dev_count=0))
    admin = ClusterAdmin(stub.address)
    try:
        with pytest.raises(ProtocolError, match="offered no device"):
            admin.write_destinations("avatars", "avatar")
    finally:
        admin.close()
        stub.close()
    assert stub.commands() == ["create_open"]


def test_avoided_devices_are_the_alive_ones_not_writeable_or_not_offered():
    devices = {
        "devices": 5,
        # 1: offered; 2: refuses (unreachable); 3: gone (writeable, not offered);
        # 4: offered; 5: marked dead by the operator (not "avoided", just not alive).
        **{f"dev{n}_devid": n for n in range(1, 6)},
        **{f"dev{n}_hostid": n for n in range(1, 6)},
        **{f"dev{n}_status": "alive" for n in range(1, 5)},
        "dev5_status": "dead",
        **{f"dev{n}_observed_state": "writeable" for n in (1, 3, 4, 5)},
        "dev2_observed_state": "unreachable",
    }

    def answer(command: str, args: dict[str, str]) -> bytes:
        if command == "get_devices":
            return ok(**devices)
        if command == "create_open":
            return ok(
                fid=7,
                dev_count=2,
                devid_1=4,
                path_1=PATH.format(n=4),
                devid_2=1,
                path_2=PATH.format(n=1),
            )
        return ok()

    stub = StubTracker(answer)
    admin = ClusterAdmin(stub.address)
    try:
        assert admin.avoided_devices("avatars", "avatar") == {2, 3}
    finally:
        admin.close()
        stub.close()


def test_a_device_is_in_use_when_its_host_is_offered_on_any_of_several_asks():
    """Six devices on four hosts: one create_open names at most three hosts, so the
    admin asks again until every host with a writeable device was offered."""
    devices = {
        "devices": 6,
        **{f"dev{n}_devid": n for n in range(1, 7)},
        **{f"dev{n}_hostid": (n - 1) % 4 + 1 for n in range(1, 7)},  # 1,2,3,4,1,2
        **{f"dev{n}_status": "alive" for n in range(1, 7)},
        **{f"dev{n}_observed_state": "writeable" for n in range(1, 7)},
    }
    offers = iter([(1, 2, 3), (5, 6, 4), (1, 2, 3)])

    def answer(command: str, args: dict[str, str]) -> bytes:
        if command == "get_devices":
            return ok(**devices)
        if command == "create_open":
            ids = next(offers)
            fields = {f"devid_{i}": d for i, d in enumerate(ids, 1)}
            fields |= {f"path_{i}": PATH.format(n=d) for i, d in enumerate(ids, 1)}
            return ok(fid=7, dev_count=len(ids), **fields)
        return ok()

    stub = StubTracker(answer)
    admin = ClusterAdmin(stub.address)
    try:
        assert admin.avoided_devices("avatars", "avatar") == set()
    finally:
        admin.close()
        stub.close()
    assert stub.commands().count("create_open") == 2, "it stops once every host was offered"
