"""Replay the recorded MogileFS 2.73 session against the fake tracker.

Every exchange of ``tests/data/transcript-2.73.txt`` is sent, in order, to a fresh fake
tracker that has three real Perlbal storage nodes on 127.0.0.1/.2/.3, and the transcript's
HTTP steps are done for real. Each step is its own test (id ``L<line>-<command>``); a
step's test replays every earlier step first, so any selection (``-k``) still sees the
right history.

How responses are compared
--------------------------
``OK``/``ERR`` and the error code must match, and so must the ERR message and callid. OK
arguments are compared as a decoded key/value set (``parse_qsl``), never as text, because
the real tracker sends them in Perl hash order. On top of that, these rules apply, each
because the value is not the tracker's to choose or is documented as random:

* Port: the transcript's nodes listened on 7500. The nodes here use one free port (so the
  test runs while a dev stack holds 7500), and ``127.0.0.N:7500`` / ``port=7500`` are
  rewritten to that port in requests and expected responses alike.
* Device choice: create_open picks devices at random, weighted by free space. Before each
  create_open the replay tells the fake which devices the real tracker picked
  (``FakeTracker.hint_placement``); the fake honours that only if the devices are ones it
  would pick itself (alive, observed writeable, host alive, space), so eligibility is
  still tested, and the rest of the transcript can be replayed literally.
* Enumeration order (``hostN_*``, ``devN_*``, ``domainN…classM…``, ``pathN``): N is
  arbitrary on the real tracker, so these items are compared as an
  unordered collection of records.
* ``get_devices`` ``mb_total``/``mb_used``/``mb_free``: the free space of the disk the test
  runs on (and, on the real tracker, whether the first usage read had landed yet); only
  their form (a number or empty) is checked.
* ``fsck_status`` ``current_time``: the server's clock; it must be an integer.
* ``size_verify_error``: the message ends in ``; error: <last error>``, an unrelated stale
  message left from an earlier request; only the text before it is compared.
* ``!stats`` numbers (uptime, query counters) and ``!jobs`` pids: the line names, their
  order, the job counts and the number of pids per job must match.
* Latencies are not compared.

Timing: a few exchanges ran after the real tracker's background jobs had worked (see
``POLLED``); those are retried for up to ``POLL_SECONDS`` until they match.

Uploads the transcript does not show: the recording client PUT a body between several
create_open/create_close pairs without logging the PUT. ``IMPLIED_UPLOADS`` lists them,
with sizes taken from the transcript itself (create_close ``size``, file_info ``length``,
the size_mismatch ``actual``) and, for the MD5 class, a body whose MD5 is the transcript's.

Nothing is skipped. The last transcript line (replication times of 10 uploads) is a
measurement, not an exchange; ``test_replication_time_envelope`` checks the fake against it.
"""

from __future__ import annotations

import collections
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from django_mogilefs.testing.cluster import MogileCluster
from django_mogilefs.testing.faketracker import TrackerConfig
from django_mogilefs.testing.faketracker.client import TrackerClient, parse_reply

from conformance import transcript
from conformance.transcript import Exchange, HttpStep, Note, RawExchange, Step

pytestmark = pytest.mark.integration

STEPS = transcript.load()
REPLAYED = [(i, s) for i, s in enumerate(STEPS) if not isinstance(s, Note)]
NOTES = [s for s in STEPS if isinstance(s, Note)]
POLL_SECONDS = 10.0
TRANSCRIPT_PORT = 7500

# (request, occurrence) -> why the real tracker's answer needed background work first.
POLLED = {
    (
        "file_info domain=testdom&key=avatars/u1.jpg",
        1,
    ): "fid 2 (class avatar, mindevcount 3) had been replicated to 3 devices; replicas "
    "appear 0.3-2.7 s after create_close",
    (
        "file_info domain=testdom&key=thumbs/t1.png&devices=1",
        2,
    ): "after updateclass thumb->avatar, re-replication to 3 devices took 0.8-1.4 s",
}
POLLED_HTTP = "GET after delete: the delete job removes the copies 0.8-1.8 s after delete"

# transcript fid -> (create_open path argument to PUT to, body). See the module docstring.
IMPLIED_UPLOADS: dict[int, tuple[str, bytes]] = {
    3: ("path_1", b"t1 thumb\n"),  # closed with size=9, on devid_1/path_1
    4: ("path", b"t2 first\n"),  # replaced by fid 5 before anything reads it
    5: ("path", b"t2 second!!\n"),  # file_info: length=12
    6: ("path", b"special key\n"),
    5001: ("path", b"hello"),  # size_mismatch: "actual: 5"
    5003: ("path", b"discarded\n"),  # closed without key
    5004: ("path", b"checksummed\n"),  # MD5 dfcb8ae30950b37e23159bf66d74acef, length 12
    5005: ("path", b"checksummed\n"),  # checksum_mismatch: actual MD5:dfcb8ae3...
}
# fid 5000 is never closed and fid 5002 is closed deliberately without an upload.

IGNORED = "<ignored>"
_FID_IN_URL = re.compile(r"/(\d{10})\.fid$")


def step_id(step: Step) -> str:
    if isinstance(step, Exchange):
        name = step.request.split(" ", 1)[0]
    elif isinstance(step, RawExchange):
        name = "raw-" + re.sub(r"\W+", "-", step.sent.decode().split("\r\n")[0]).strip("-")
    elif isinstance(step, HttpStep):
        name = f"http-{step.method}" + ("-after-delete" if step.after_delete else "")
    else:
        name = "note"
    return f"L{step.lineno:03d}-{name}"


# ---------------------------------------------------------------------------- comparison


def _pop_groups(args: dict[str, str], pattern: str) -> dict[tuple[str, ...], dict[str, str]]:
    """Move keys matching ``pattern`` (index groups…, field) out of ``args``, grouped."""
    groups: dict[tuple[str, ...], dict[str, str]] = collections.defaultdict(dict)
    for key in list(args):
        match = re.fullmatch(pattern, key)
        if match:
            *index, name = match.groups()
            groups[tuple(index)][name] = args.pop(key)
    return groups


def _records(groups: dict[tuple[str, ...], dict[str, str]]) -> list[tuple]:
    return sorted(tuple(sorted(fields.items())) for fields in groups.values())


def canonical(command: str, line: str) -> dict[str, object]:
    """The comparable form of a response line (see the module docstring)."""
    reply = parse_reply(line)
    if not reply.ok:
        message = reply.message or ""
        if reply.code == "size_verify_error" and "; error: " in message:
            message = message.split("; error: ", 1)[0] + "; error: <last error>"
        return {"<ERR code>": reply.code, "<message>": message, "<callid>": reply.callid}
    args: dict[str, object] = {}
    raw = dict(reply.args)
    if command == "get_devices":
        for key in list(raw):
            if re.fullmatch(r"dev\d+_mb_(total|used|free)", key) and re.fullmatch(r"\d*", raw[key]):
                raw[key] = IGNORED
    if command == "fsck_status" and re.fullmatch(r"\d+", raw.get("current_time", "")):
        raw["current_time"] = IGNORED
    if command == "get_hosts":
        args["<hosts>"] = _records(_pop_groups(raw, r"host(\d+)_(\w+)"))
    elif command == "get_devices":
        args["<devices>"] = _records(_pop_groups(raw, r"dev(\d+)_(\w+)"))
    elif command == "get_paths":
        args["<paths>"] = sorted(
            v for v in _pop_groups(raw, r"path(\d+)()").values() for v in v.values()
        )
    elif command == "get_domains":
        classes = _pop_groups(raw, r"domain(\d+)class(\d+)(name|mindevcount|replpolicy|hashtype)")
        domains = _pop_groups(raw, r"domain(\d+)(|classes)")
        args["<domains>"] = sorted(
            (
                tuple(sorted(fields.items())),
                _records({k: v for k, v in classes.items() if k[0] == index[0]}),
            )
            for index, fields in domains.items()
        )
    args.update(raw)
    return args


def differences(command: str, expected: str, actual: str) -> list[str]:
    want, got = canonical(command, expected), canonical(command, actual)
    if want == got:
        return []
    lines = [f"expected: {expected}", f"     got: {actual}"]
    for key in sorted(set(want) | set(got)):
        if want.get(key, "<absent>") != got.get(key, "<absent>"):
            lines.append(
                f"  {key}: expected {want.get(key, '<absent>')!r}, got {got.get(key, '<absent>')!r}"
            )
    return lines


def admin_lines(command: str, data: bytes) -> list[str]:
    """``!stats`` numbers and ``!jobs`` pids masked; everything else verbatim."""
    lines = data.decode().split("\r\n")
    if command == "!stats":
        return [re.sub(r"\d+", "N", line) for line in lines]
    if command == "!jobs":
        return [re.sub(r"\d+", "N", line) if " pids " in line else line for line in lines]
    return lines


# ---------------------------------------------------------------------------- replay


class Replay:
    """Runs the transcript's steps in order against one fake cluster."""

    def __init__(self, cluster: MogileCluster) -> None:
        assert cluster.tracker is not None
        self.cluster = cluster
        self.tracker = cluster.tracker
        self.port = cluster.nodes[0].port
        self.client = TrackerClient(cluster.trackers[0], timeout=30)
        self.outcomes: list[list[str]] = []
        self.bodies: dict[int, bytes] = {}
        self.seen: collections.Counter[str] = collections.Counter()

    def close(self) -> None:
        self.client.close()

    def rewrite(self, text: str) -> str:
        text = re.sub(rf"(127\.0\.0\.\d+):{TRANSCRIPT_PORT}\b", rf"\g<1>:{self.port}", text)
        return re.sub(rf"(port=){TRANSCRIPT_PORT}\b", rf"\g<1>{self.port}", text)

    def outcome(self, index: int) -> list[str]:
        """Problems found at step ``index`` (running all steps up to it once)."""
        while len(self.outcomes) <= index:
            step = STEPS[len(self.outcomes)]
            try:
                problems = self.run(step)
            except Exception as exc:  # recorded, so that later steps still run
                problems = [f"{type(exc).__name__}: {exc}"]
            self.outcomes.append(problems)
        return self.outcomes[index]

    def run(self, step: Step) -> list[str]:
        if isinstance(step, Exchange):
            return self.exchange(step)
        if isinstance(step, RawExchange):
            return self.raw_exchange(step)
        if isinstance(step, HttpStep):
            return self.http(step)
        return []

    def exchange(self, step: Exchange) -> list[str]:
        request, expected = self.rewrite(step.request), self.rewrite(step.response)
        command = request.split(" ", 1)[0].lower()
        self.seen[step.request] += 1
        polled = (step.request, self.seen[step.request]) in POLLED
        deadline = time.monotonic() + (POLL_SECONDS if polled else 0)
        while True:
            if command == "create_open":
                self.hint(expected)
            actual = self.client.request(request)
            problems = differences(command, expected, actual)
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if command == "create_open" and actual.startswith("OK "):
            problems += self.implied_upload(expected, actual)
        return problems

    def hint(self, expected: str) -> None:
        self.tracker.clear_placement_hints()
        reply = parse_reply(expected)
        if reply.ok:
            args = reply.args
            devids = (
                [args["devid"]]
                if "devid" in args
                else [args[f"devid_{n}"] for n in range(1, int(args.get("dev_count", 0)) + 1)]
            )
            self.tracker.hint_placement([int(d) for d in devids])

    def implied_upload(self, expected: str, actual: str) -> list[str]:
        fid = int(parse_reply(expected).args["fid"])
        if fid not in IMPLIED_UPLOADS:
            return []
        key, body = IMPLIED_UPLOADS[fid]
        status = self.put(parse_reply(actual).args[key], body)
        return [] if status == 200 else [f"implied PUT for fid {fid} answered {status}"]

    def put(self, url: str, body: bytes) -> int:
        match = _FID_IN_URL.search(url)
        if match:
            self.bodies[int(match.group(1))] = body
        request = urllib.request.Request(url, data=body, method="PUT")
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status

    def raw_exchange(self, step: RawExchange) -> list[str]:
        self.client.send(step.sent)
        if step.sent.startswith(b"!"):
            command = step.sent.decode().strip()
            received = b""
            while not received.endswith(b".\r\n"):
                received += self.client.read_raw_line()
            want, got = admin_lines(command, step.received), admin_lines(command, received)
        else:
            received = b"".join(
                self.client.read_raw_line() for _ in range(step.received.count(b"\n"))
            )
            want, got = [repr(step.received)], [repr(received)]
        return [] if want == got else [f"expected {step.received!r}", f"     got {received!r}"]

    def http(self, step: HttpStep) -> list[str]:
        url = self.rewrite(step.url)
        if step.method == "PUT":
            body = random.Random(step.lineno).randbytes(step.put_size or 0)
            status = self.put(url, body)
            return [] if status == step.status else [f"PUT {url}: {status}, not {step.status}"]
        deadline = time.monotonic() + (POLL_SECONDS if step.after_delete else 0)
        while True:
            status, body = get(url)
            if status == step.status or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        problems = [] if status == step.status else [f"GET {url}: {status}, not {step.status}"]
        if step.size is not None and len(body) != step.size:
            problems.append(f"GET {url}: {len(body)} bytes, not {step.size}")
        if step.identical is not None:
            match = _FID_IN_URL.search(url)
            sent = self.bodies.get(int(match.group(1))) if match else None
            if (body == sent) != step.identical:
                problems.append(f"GET {url}: body identical={body == sent}")
        return problems


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


# ---------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def replay(make_fake_cluster: Callable[..., MogileCluster]) -> Iterator[Replay]:
    # test_write_interval=60: the transcript's readonly device still shows the
    # observed_state of its last test write (done within mogilefsd's 15 s window);
    # widened so a slow run cannot straddle a new test write. The monitor keeps the
    # tracker's own interval, and the transcript creates its domain itself.
    cluster = make_fake_cluster(
        bootstrap=False, monitor_interval=TrackerConfig.monitor_interval, test_write_interval=60.0
    )
    replayer = Replay(cluster)
    try:
        yield replayer
    finally:
        replayer.close()


def test_transcript_is_fully_parsed() -> None:
    kinds = collections.Counter(type(step).__name__ for step in STEPS)
    assert kinds == {"Exchange": 155, "RawExchange": 4, "HttpStep": 8, "Note": 1}


@pytest.mark.parametrize("index", [i for i, _ in REPLAYED], ids=[step_id(s) for _, s in REPLAYED])
def test_step(replay: Replay, index: int) -> None:
    step = STEPS[index]
    problems = replay.outcome(index)
    assert not problems, (
        f"transcript line {step.lineno} [{step.section}] "
        f"{getattr(step, 'request', step)}:\n" + "\n".join(problems)
    )


def test_replication_time_envelope(replay: Replay) -> None:
    """The transcript's last line: 10 avatar uploads reached devcount=3 after 0.31-2.65 s.

    Runs after the replay (it needs the domain and classes the transcript created).
    """
    replay.outcome(len(STEPS) - 1)
    assert NOTES, "the transcript's timing note is missing"
    client, port = replay.client, replay.port
    closed: dict[str, float] = {}
    for n in range(10):
        key = f"timing/{n}"
        opened = client.call("create_open", domain="testdom", key=key, **{"class": "avatar"})
        assert opened.ok, opened.raw
        assert f":{port}/" in opened.args["path"]
        assert replay.put(opened.args["path"], b"x" * 1000) == 200
        reply = client.call(
            "create_close",
            domain="testdom",
            key=key,
            size=1000,
            fid=opened.args["fid"],
            devid=opened.args["devid"],
            path=opened.args["path"],
        )
        assert reply.ok, reply.raw
        closed[key] = time.monotonic()
    took: dict[str, float] = {}
    deadline = time.monotonic() + POLL_SECONDS
    while len(took) < len(closed) and time.monotonic() < deadline:
        for key in set(closed) - set(took):
            if client.call("file_info", domain="testdom", key=key).args["devcount"] == "3":
                took[key] = time.monotonic() - closed[key]
        time.sleep(0.05)
    assert len(took) == len(closed), f"not replicated within {POLL_SECONDS} s: {took}"
    assert max(took.values()) < 3.0, took  # the real tracker's slowest of 10: 2.65 s
