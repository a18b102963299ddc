"""The status page checks each node as the tracker does, not only what the tracker reports.

Real sockets on 127.0.0.1: a node that answers its usage file, a port that refuses, and
a port that listens but never answers (a stopped container's address, for the tracker:
it skips the host while ``get_devices`` still says ``writeable``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from avatars import status as status_module
from django_mogilefs.cluster import ClassInfo, DeviceInfo, HostInfo
from django_mogilefs.exceptions import NoDevicesError, TrackerUnavailableError
from django_mogilefs.probe import Verdict
from unit.stubs import SilentPort, StubNode, closed_port

pytestmark = pytest.mark.unit

SKIPS = "the tracker reports writeable but the node does not answer: the tracker skips it"
USAGE = b"total: 1000\nused: 250\n"


class Nodes:
    """One healthy node (dev1), one that refuses (dev2), one that hangs (dev3)."""

    def __init__(self) -> None:
        self.healthy = StubNode()
        self.healthy.files["/dev1/usage"] = USAGE
        self.silent = SilentPort()
        self.refused_port = int(closed_port().rpartition(":")[2])

    def host(self, hostid: int, name: str, port: int) -> HostInfo:
        return HostInfo(hostid=hostid, name=name, ip="127.0.0.1", http_port=port, status="alive")

    @property
    def healthy_port(self) -> int:
        return int(self.healthy.base.rpartition(":")[2])

    def close(self) -> None:
        self.healthy.close()
        self.silent.close()


@pytest.fixture
def nodes() -> Iterator[Nodes]:
    n = Nodes()
    yield n
    n.close()


class Admin:
    """What a real 2.73 tracker answers with these nodes: the refused one is unreachable,
    the gone one still writeable, and create_open offers only the healthy device."""

    def __init__(self, nodes: Nodes, destinations=(1,)) -> None:
        self.nodes = nodes
        self.destinations = destinations
        self.asked: list[tuple[str, str | None]] = []

    def get_hosts(self):
        n = self.nodes
        return [
            n.host(1, "stor1", n.healthy_port),
            n.host(2, "stor2", n.refused_port),
            n.host(3, "stor3", n.silent.port),
        ]

    def get_devices(self):
        return [
            DeviceInfo(1, 1, "alive", "writeable", 100, 1000, 250, 750),
            DeviceInfo(2, 2, "alive", "unreachable", 100, 1000, 250, 750),
            DeviceInfo(3, 3, "alive", "writeable", 100, 1000, 250, 750),
        ]

    def get_domains(self):
        return {"avatars": {"avatar": ClassInfo("avatar", 3, "MultipleHosts()", "NONE")}}

    def write_destinations(self, domain: str, cls: str | None = None) -> list[int]:
        self.asked.append((domain, cls))
        if isinstance(self.destinations, Exception):
            raise self.destinations
        return list(self.destinations)

    def close(self) -> None:
        pass


@pytest.fixture
def staff_client(client, django_user_model, settings):
    settings.STATUS_PROBE_TIMEOUT_MS = 1000
    settings.STATUS_ASK_CREATE_OPEN = True
    client.force_login(django_user_model.objects.create_user("ops", password="x", is_staff=True))
    return client


def device_rows(page: str) -> dict[str, str]:
    """The devices table's body rows by device name ("dev3": the row's HTML)."""
    table = page[page.index('<table class="cards devices">') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return {re.search(r'data-label="Dev">(dev\d+)<', row).group(1): row for row in rows}


def cell(row: str, label: str) -> str:
    match = re.search(rf'<td data-label="{re.escape(label)}"[^>]*>(.*?)</td>', row, re.S)
    assert match, (label, row)
    return " ".join(match.group(1).split())


@pytest.mark.django_db
def test_healthy_refused_and_gone_nodes(staff_client, nodes, status_cluster):
    admin = Admin(nodes)
    status_cluster(admin)
    started = time.monotonic()
    response = staff_client.get("/status/")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    page = response.content.decode()
    rows = device_rows(page)

    healthy = cell(rows["dev1"], "Node (our probe)")
    assert re.fullmatch(r'<span class="state ok">HTTP 200 in \d+ ms</span>', healthy)
    assert ("GET", "/dev1/usage") in nodes.healthy.log

    # Refused: the tracker has seen it too (unreachable), so nothing is flagged.
    assert cell(rows["dev2"], "Observed by the tracker") == (
        '<span class="state bad">unreachable</span>'
    )
    assert cell(rows["dev2"], "Node (our probe)") == (
        '<span class="state bad">Connection refused</span>'
    )

    # Gone: the tracker still reports writeable; the page says what the tracker does.
    assert (
        cell(rows["dev3"], "Observed by the tracker") == '<span class="state ok">writeable</span>'
    )
    gone = cell(rows["dev3"], "Node (our probe)")
    assert gone.startswith('<span class="state bad">no answer within 1 s</span>')
    assert SKIPS in gone
    assert SKIPS not in rows["dev1"] + rows["dev2"]
    assert f'<div class="errors" role="alert"><p>dev3 on stor3: {SKIPS}.</p></div>' in page

    # The summary counts the gone device as down, although the tracker says writeable.
    assert '<span class="state bad">1 of 3 devices up</span>' in page
    assert "within 1 s" in page
    assert admin.asked == [("avatars", "avatar")]
    assert re.search(r"class <code>avatar</code>\), the tracker would offer\s+dev1\.", page)
    assert elapsed < 2.5  # one probe timeout (1 s), not one per device


@pytest.mark.django_db
def test_all_nodes_healthy_says_so(staff_client, nodes, status_cluster):
    nodes.healthy.files["/dev2/usage"] = USAGE

    class Healthy(Admin):
        def get_hosts(self):
            port = self.nodes.healthy_port
            return [self.nodes.host(1, "stor1", port), self.nodes.host(2, "stor2", port)]

        def get_devices(self):
            return [
                DeviceInfo(1, 1, "alive", "writeable", 100, 1000, 250, 750),
                DeviceInfo(2, 2, "alive", "writeable", 100, 1000, 250, 750),
            ]

    status_cluster(Healthy(nodes, (2, 1)))
    page = staff_client.get("/status/").content.decode()
    assert '<span class="state ok">2 of 2 devices up</span>' in page
    assert 'role="alert"' not in page
    assert "does not answer" not in page
    assert re.search(r"the tracker would offer\s+dev2, dev1\.", page)


@pytest.mark.django_db
def test_the_page_stays_fast_when_every_node_hangs(staff_client, nodes, status_cluster, settings):
    settings.STATUS_PROBE_TIMEOUT_MS = 600

    class Hanging(Admin):
        def get_hosts(self):
            return [self.nodes.host(h, f"stor{h}", self.nodes.silent.port) for h in range(1, 9)]

        def get_devices(self):
            return [
                DeviceInfo(d, d, "alive", "writeable", 100, None, None, None) for d in range(1, 9)
            ]

    status_cluster(Hanging(nodes, (1, 2, 3)))
    started = time.monotonic()
    page = staff_client.get("/status/").content.decode()
    elapsed = time.monotonic() - started
    assert elapsed < 1.5  # 8 hanging nodes probed one after another would take 4.8 s
    assert page.count("<p>dev") == 8 and page.count(SKIPS) == 16  # alert and row, each
    assert '<span class="state bad">0 of 8 devices up</span>' in page
    assert "no answer within 0.6 s" in page


@pytest.mark.django_db
def test_create_open_without_devices_is_said(staff_client, nodes, status_cluster):
    admin = Admin(nodes, NoDevicesError("no_devices", "No devices found to store file"))
    status_cluster(admin)
    response = staff_client.get("/status/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "New files: the tracker offers no device for a new file (no_devices)." in page
    assert "would offer" not in page


@pytest.mark.django_db
def test_create_open_failing_otherwise_still_shows_the_page(staff_client, nodes, status_cluster):
    admin = Admin(nodes, TrackerUnavailableError("No MogileFS tracker answered 'create_open'"))
    status_cluster(admin)
    response = staff_client.get("/status/")
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        "New files: create_open failed: No MogileFS tracker answered &#x27;create_open&#x27;"
        in page
    )
    assert "1 of 3 devices up" in page


@pytest.mark.django_db
def test_create_open_is_not_asked_when_turned_off_or_the_domain_is_missing(
    staff_client, nodes, status_cluster, settings
):
    admin = Admin(nodes)
    status_cluster(admin)
    settings.STATUS_ASK_CREATE_OPEN = False
    page = staff_client.get("/status/").content.decode()
    assert "New files:" not in page
    settings.STATUS_ASK_CREATE_OPEN = True
    status_cluster(admin, domain="elsewhere")
    page = staff_client.get("/status/").content.decode()
    assert "The tracker does not know this domain." in page and "New files:" not in page
    assert admin.asked == []


def test_a_device_whose_host_the_tracker_does_not_list_is_not_probed(settings):
    settings.STATUS_PROBE_TIMEOUT_MS = 1000
    device = DeviceInfo(5, 9, "alive", "writeable", 100, None, None, None)
    (row,) = status_module.device_rows_probed([], [device])
    assert (row.host, row.probe, row.node_state, row.up, row.warning) == (
        "host 9",
        None,
        "warn",
        False,
        "",
    )


@pytest.mark.django_db
def test_a_refusing_node_the_tracker_has_not_noticed_yet_is_flagged(
    staff_client, nodes, status_cluster
):
    class NotYetNoticed(Admin):
        def get_devices(self):
            devices = super().get_devices()
            devices[1] = DeviceInfo(2, 2, "alive", "writeable", 100, 1000, 250, 750)
            return devices

    status_cluster(NotYetNoticed(nodes))
    page = staff_client.get("/status/").content.decode()
    refused = cell(device_rows(page)["dev2"], "Node (our probe)")
    assert refused.startswith('<span class="state bad">Connection refused</span>')
    assert "the node fails its check: the tracker marks the device unreachable" in refused
    assert '<span class="state bad">1 of 3 devices up</span>' in page


def test_a_device_on_a_host_that_is_not_alive_is_not_up(nodes):
    nodes.healthy.files["/dev2/usage"] = USAGE
    port = nodes.healthy_port
    hosts = [
        nodes.host(1, "stor1", port),
        HostInfo(hostid=2, name="stor2", ip="127.0.0.1", http_port=port, status="down"),
    ]
    devices = [DeviceInfo(d, d, "alive", "writeable", 100, None, None, None) for d in (1, 2)]
    rows = status_module.device_rows_probed(hosts, devices)
    assert [(row.probe.verdict, row.up, row.warning) for row in rows] == [
        (Verdict.ANSWERS, True, ""),
        (Verdict.ANSWERS, False, ""),
    ]
