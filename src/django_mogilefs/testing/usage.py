"""Write ``<docroot>/devN/usage`` like mogstored's ``[diskusage]`` child.

The tracker's monitor reads this file over HTTP; sizes are in KB (``df -k``)::

    available: 83159844
    device: /dev/vda
    disk: /srv/store1/dev1
    time: 1795639837
    total: 106390912
    use: 22%
    used: 23231068

Standard library only, so it also runs as a script:
``python usage.py --docroot DIR --devids 1,2 [--interval 5]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from pathlib import Path


def mount_device(path: Path) -> str:
    """The filesystem (``/proc/mounts`` source) that holds ``path``."""
    best, device = "", "unknown"
    target = str(path.resolve())
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return device
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        mount = fields[1]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best, device = mount, fields[0]
    return device


def usage_text(path: Path, now: int | None = None) -> str:
    """The usage file's content for the device directory ``path`` at ``now`` (Unix
    time; default: the clock's).

    The numbers are the ones mogstored's ``[diskusage]`` derives from ``df -P -l -k``
    (DiskUsage.pm): ``used`` and ``available`` as df prints them (KiB, rounded up),
    ``use`` as df's Capacity (from the block counts, rounded up) and ``total`` = used +
    available, so the blocks reserved for root are not counted.
    """
    st = os.statvfs(path)
    used_blocks = st.f_blocks - st.f_bfree
    used = _ceil_div(used_blocks * st.f_frsize, 1024)
    available = _ceil_div(st.f_bavail * st.f_frsize, 1024)
    seen = used_blocks + st.f_bavail
    use = _ceil_div(100 * used_blocks, seen) if seen else 0
    values = {
        "available": available,
        "device": mount_device(path),
        "disk": str(path),
        "time": int(time.time()) if now is None else now,
        "total": used + available,
        "use": f"{use}%",
        "used": used,
    }
    return "".join(f"{key}: {values[key]}\n" for key in sorted(values))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def write_usage(docroot: Path, devid: int) -> None:
    """Atomically (re)write ``docroot/devN/usage``; skipped if ``devN`` does not exist."""
    devdir = Path(docroot) / f"dev{devid}"
    if not devdir.is_dir():
        return
    tmp = devdir / ".usage.tmp"
    tmp.write_text(usage_text(devdir))
    os.replace(tmp, devdir / "usage")


def run(docroot: Path, devids: list[int], interval: float, stop: threading.Event) -> None:
    while True:
        for devid in devids:
            write_usage(docroot, devid)
        if stop.wait(interval):
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docroot", required=True, type=Path)
    parser.add_argument("--devids", required=True, help="comma-separated device ids")
    parser.add_argument("--interval", type=float, default=5.0)
    opts = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(opts.docroot, [int(d) for d in opts.devids.split(",") if d], opts.interval, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
