"""File commands: create_open/create_close, get_paths, file_info/debug, delete, rename, …"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from . import httpio
from .base import Args, CommandBase, CommandError, weighted_list
from .protocol import perl_int, perl_num, perl_true, to_bytes
from .state import HASH_TYPES, HASHLIB_NAMES, Checksum, Device, FileRow, TempFile

_CHECKSUM = re.compile(r"([\w-]+):([a-fA-F0-9]{32,128})", re.ASCII)
Pairs = list[tuple[str, object]]


def valid_key(key: str | None) -> bool:
    return key is not None and key != ""


def parse_checksum(fid: int, text: str) -> Checksum:
    """MogileFS::Checksum->from_string; ``invalid_checksum_format`` on any problem."""
    match = _CHECKSUM.fullmatch(text)
    if not match or match.group(1) not in HASH_TYPES:
        raise CommandError("invalid_checksum_format")
    hexdigest = match.group(2)
    # Perl's pack("H*") pads an odd digit count with a 0 nibble: 39 digits are a SHA-1.
    digest = bytes.fromhex(hexdigest + "0" * (len(hexdigest) % 2))
    if len(digest) != HASH_TYPES[match.group(1)]:
        raise CommandError("invalid_checksum_format")
    return Checksum(fid, match.group(1), digest)


class FileCommands(CommandBase):
    # ------------------------------------------------------------------ create

    def _pick_devices(self, size: float | None, count: int) -> list[Device]:
        """create_open's device choice: by free space, weighted, one per host."""
        devices = list(self.state.devices.values())
        if size:
            fits = [d for d in devices if d.mb_free is not None and d.mb_free * 1048576 > size]
            devices = fits or [d for d in devices if d.mb_free is None]
        usable = sorted(
            (d for d in devices if self.state.should_get_new_files(d)),
            key=lambda d: d.percent_free,
            reverse=True,
        )[:20]
        ordered: list[Device] = weighted_list(self.rng, [(d, 100 * d.percent_free) for d in usable])
        if self.state.placement_hints:
            # A test may ask for particular devices; honoured only if all are eligible.
            hint = self.state.placement_hints.pop(0)
            wanted = [d for devid in hint for d in ordered if d.devid == devid]
            if len(wanted) == len(hint):
                ordered = wanted + [d for d in ordered if d not in wanted]
        dests: list[Device] = []
        for dev in ordered:
            if len(dests) == count:
                break
            if all(dev.hostid != other.hostid for other in dests):
                dests.append(dev)
        return dests

    def cmd_create_open(self, args: Args) -> Pairs:
        dom = self.check_domain(args)
        key = args["key"] if perl_true(args.get("key")) else ""
        multi = perl_true(args.get("multi_dest"))
        size = perl_num(args["size"]) if perl_true(args.get("size")) else None
        wanted_fid = perl_int(args["fid"]) if perl_true(args.get("fid")) else None
        classid = 0
        if perl_true(args.get("class")):
            with self.state.lock:
                cls = dom.class_by_name(args["class"])
            # Query.pm: `... ->id or return err_line("unreg_class")`, so classid 0 fails too.
            if cls is None or cls.classid == 0:
                raise CommandError("unreg_class")
            classid = cls.classid
        self.tracker.monitor.wait_first_round()
        with self.state.lock:
            dests = self._pick_devices(size, 3 if multi else 1)
            if not dests:
                raise CommandError("no_devices")
            fid = self.state.alloc_fid(wanted_fid)
            if fid is None:
                raise CommandError("fid_in_use")
            devids = ",".join(str(d.devid) for d in dests)
            self.state.tempfiles[fid] = TempFile(fid, dom.dmid, key, classid, devids)
            urls = [self.state.device_url(d.devid, fid) for d in dests]
        if not multi:
            return [("fid", fid), ("devid", dests[0].devid), ("path", urls[0])]
        pairs: Pairs = [("fid", fid), ("dev_count", len(dests))]
        for n, (dev, url) in enumerate(zip(dests, urls, strict=True), 1):
            pairs += [(f"devid_{n}", dev.devid), (f"path_{n}", url)]
        return pairs

    def cmd_create_close(self, args: Args) -> None:
        dom = self.check_domain(args)
        key = args.get("key")
        for name in ("fid", "devid", "path"):
            if not perl_true(args.get(name)):
                raise CommandError(f"no_{name}")
        fid, devid, path = perl_int(args["fid"]), perl_int(args["devid"]), args["path"]
        checksum = None
        if perl_true(args.get("checksum")):
            checksum = parse_checksum(fid, args["checksum"])
        with self.state.lock:
            if devid not in self.state.devices:
                raise RuntimeError(f"no device {devid}")  # Perl dies building the URL
            if path != self.state.device_url(devid, fid):
                raise CommandError("bogus_args")
            trow = self.state.tempfiles.pop(fid, None)
            if trow is None:
                raise CommandError("no_temp_file")

        def failed() -> None:  # the upload is thrown away (and deleted from the node)
            with self.state.lock:
                self.state.delete_file(fid)
                self.state.enqueue_delete(fid, [devid])

        if not re.search(rf"\b{devid}\b", trow.devids):
            failed()
            raise CommandError(
                "invalid_destdev",
                f"File uploaded to invalid dest {devid}. Valid devices were: {trow.devids}",
            )
        if key is None or not valid_key(key):
            failed()
            return None
        size = self._verify_upload(args, path, checksum, failed)
        with self.state.lock:
            old = self.state.file_by_key(dom.dmid, key)
            if old is not None:
                self.state.delete_file(old.fid)
            self.state.files[fid] = FileRow(fid, dom.dmid, key, size, trow.classid, [devid])
            self.state.keys[(dom.dmid, key)] = fid
            cls = dom.class_by_id(trow.classid)
            if checksum and cls is not None and cls.hashtype == checksum.hashtype:
                self.state.checksums[fid] = checksum
            self.state.enqueue_replication(fid, self.tracker.config.replicate_min_delay)
        return None

    def _verify_upload(
        self, args: Args, path: str, checksum: Checksum | None, failed: Callable[[], None]
    ) -> int:
        """create_close's HEAD size check and optional checksum verification; the size."""
        size = httpio.head_size(path, self.tracker.config.http_timeout)
        expected = args["size"] if perl_true(args.get("size")) else "-1"
        if size is None or size == httpio.FILE_MISSING:
            failed()
            kind = "cantreach" if size is None else "missing"
            raise CommandError(
                "size_verify_error",
                f"Expected: {expected}; actual: 0 ({kind}); path: {path}; "
                f"error: {self.tracker.last_error()}",
            )
        if perl_num(expected) > -1 and perl_num(expected) != size:
            failed()
            raise CommandError(
                "size_mismatch", f"Expected: {expected}; actual: {size}; path: {path}"
            )
        if checksum and perl_true(args.get("checksumverify")):
            actual = self._digest(path, checksum.hashtype)
            if actual != checksum.digest:
                failed()
                raise CommandError(
                    "checksum_mismatch",
                    f"Expected: {checksum}; actual: {checksum.hashtype}:{actual.hex()}; "
                    f"path: {path}",
                )
        return size

    def _digest(self, url: str, hashtype: str) -> bytes:
        try:
            res = httpio.request("GET", url, timeout=self.tracker.config.http_timeout)
        except OSError:
            return b""
        return hashlib.new(HASHLIB_NAMES[hashtype], res.body).digest() if res.ok else b""

    # ------------------------------------------------------------------ read

    def _file(self, args: Args, *, missing: str = "unknown_key") -> FileRow:
        dom = self.check_domain(args)
        if not valid_key(args.get("key")):
            raise CommandError("no_key")
        with self.state.lock:
            row = self.state.file_by_key(dom.dmid, args["key"])
        if row is None:
            raise CommandError(missing)
        return row

    def cmd_get_paths(self, args: Args) -> Pairs:
        row = self._file(args)
        pathcount = perl_num(args["pathcount"]) if perl_true(args.get("pathcount")) else 2
        pathcount = max(pathcount, 2)
        noverify = perl_true(args.get("noverify"))
        alt = args.get("zone") == "alt"
        with self.state.lock:
            devs = [self.state.devices[d] for d in row.devids if d in self.state.devices]
            ordered = weighted_list(self.rng, [(d, d.weight or 100) for d in devs])
            candidates = [
                (
                    self.state.device_url(d.devid, row.fid, get=True, alt=alt),
                    self.state.should_read_from(d),
                    d.status == "drain",
                )
                for d in ordered
                if d.hostid in self.state.hosts
            ]
        paths: list[str] = []
        drain: list[str] = []
        backup = None
        for url, up, draining in candidates:
            if not up:
                backup = url
                continue
            if not (paths or noverify or self._size_matches(url, row.length)):
                continue
            if draining:
                drain.append(url)
                continue
            paths.append(url)
            if len(paths) == pathcount:
                break
        for url in drain:
            if len(paths) >= pathcount:
                break
            paths.append(url)
        if backup and not paths:
            paths = [backup]
        return [("paths", len(paths))] + [(f"path{n}", p) for n, p in enumerate(paths, 1)]

    def _size_matches(self, url: str, length: int) -> bool:
        return httpio.head_size(url, self.tracker.config.http_timeout) == length

    def cmd_file_info(self, args: Args) -> Pairs:
        row = self._file(args)
        with self.state.lock:
            dom = self.state.domains[row.dmid]
            cls = dom.class_by_id(row.classid)
            pairs: Pairs = [
                ("fid", row.fid),
                ("domain", dom.name),
                ("class", cls.name if cls else None),
            ]
            if cls is not None and cls.hashtype:
                checksum = self.state.checksums.get(row.fid)
                pairs.append(("checksum", checksum.info() if checksum else "MISSING"))
            pairs += [("key", row.key), ("length", row.length), ("devcount", row.devcount)]
            if perl_true(args.get("devices")):
                pairs.append(("devids", ",".join(map(str, row.devids))))
        return pairs

    def cmd_file_debug(self, args: Args) -> Pairs:
        if perl_true(args.get("fid")):
            fid = perl_int(args["fid"])
            with self.state.lock:
                row = self.state.files.get(fid)
        else:
            row = self._file(args)
            fid = row.fid
        pairs: Pairs = []
        with self.state.lock:
            if row is not None:
                dom = self.state.domains[row.dmid]
                cls = dom.class_by_id(row.classid)
                pairs += [
                    ("fid_fid", row.fid),
                    ("fid_dmid", row.dmid),
                    ("fid_dkey", row.key),
                    ("fid_length", row.length),
                    ("fid_classid", row.classid),
                    ("fid_devcount", row.devcount),
                    ("fid_domain", dom.name),
                    ("fid_class", cls.name if cls else None),
                ]
            temp = self.state.tempfiles.get(fid)
            if temp is not None:
                pairs += [
                    ("tempfile_fid", fid),
                    ("tempfile_dmid", temp.dmid),
                    ("tempfile_dkey", temp.key),
                    ("tempfile_classid", temp.classid),
                    ("tempfile_devids", temp.devids),
                    ("tempfile_createtime", temp.createtime),
                ]
            for name, queue in (
                ("replqueue", self.state.replicate_queue),
                ("delqueue", self.state.delete_queue),
            ):
                if fid in queue:
                    nexttry = int(queue[fid].nexttry)
                    pairs += [
                        (f"{name}_fid", fid),
                        (f"{name}_nexttry", nexttry),
                        (f"{name}_failcount", queue[fid].failcount),
                    ]
            devids = list(row.devids) if row is not None else []
            for devid in devids:
                if devid in self.state.devices:
                    pairs.append((f"devpath_{devid}", self.state.device_url(devid, fid, get=True)))
            if devids:
                pairs.append(("devids", ",".join(map(str, devids))))
            checksum = self.state.checksums.get(fid)
            pairs.append(("checksum", checksum.info() if checksum else "NONE"))
        return pairs

    # ------------------------------------------------------------------ change

    def cmd_delete(self, args: Args) -> None:
        row = self._file(args)
        with self.state.lock:
            self.state.delete_file(row.fid)

    def cmd_rename(self, args: Args) -> None:
        dom = self.check_domain(args)
        from_key, to_key = args.get("from_key"), args.get("to_key")
        if not (valid_key(from_key) and valid_key(to_key)):
            raise CommandError("no_key")
        assert from_key is not None and to_key is not None
        with self.state.lock:
            row = self.state.file_by_key(dom.dmid, from_key)
            if row is None:
                raise CommandError("unknown_key")
            if from_key == to_key:
                return None
            if (dom.dmid, to_key) in self.state.keys:
                # The real worker also sends a stray OK, which its parent drops.
                raise CommandError("key_exists")
            del self.state.keys[(dom.dmid, from_key)]
            self.state.keys[(dom.dmid, to_key)] = row.fid
            row.key = to_key
        return None

    def cmd_updateclass(self, args: Args) -> None:
        dom = self.check_domain(args)
        if not valid_key(args.get("key")):
            raise CommandError("no_key")
        if not perl_true(args.get("class")):
            raise CommandError("no_class")
        with self.state.lock:
            cls = dom.class_by_name(args["class"])
            if cls is None:
                raise CommandError("class_not_found")
            row = self.state.file_by_key(dom.dmid, args["key"])
            if row is None:
                raise CommandError("invalid_key")
            if not row.devids:
                raise CommandError("no_devices")
            if row.classid != cls.classid:
                row.classid = cls.classid
                self.state.enqueue_replication(row.fid)
        return None

    # ------------------------------------------------------------------ list

    def cmd_list_keys(self, args: Args) -> Pairs:
        dom = self.check_domain(args)
        prefix, after = args.get("prefix"), args.get("after")
        if prefix and perl_true(after):
            try:  # Query.pm matches `after` against the prefix used as a regex
                matches = re.match(prefix, after or "") is not None
            except re.error:
                raise RuntimeError("bad regex in prefix") from None
            if not matches:
                raise CommandError("after_mismatch")
        limit = perl_int(args["limit"]) if perl_true(args.get("limit")) else 1000
        limit = min(limit, 1000)
        if limit < 0:
            raise RuntimeError("negative LIMIT")
        with self.state.lock:
            keys = sorted(
                (
                    k
                    for (dmid, k) in self.state.keys
                    if dmid == dom.dmid
                    and k.startswith(prefix or "")
                    and to_bytes(k) > to_bytes(after or "")
                ),
                key=to_bytes,
            )[:limit]
        if not keys:
            raise CommandError("none_match")
        pairs: Pairs = [(f"key_{n}", k) for n, k in enumerate(keys, 1)]
        return [*pairs, ("key_count", len(keys)), ("next_after", keys[-1])]

    def cmd_list_fids(self, args: Args) -> Pairs:
        start = perl_int(args.get("from"))
        count = perl_int(args.get("to")) or 100
        if count > 500 or count < 0:
            count = 500
        with self.state.lock:
            rows = [self.state.files[f] for f in sorted(self.state.files) if f > start][:count]
            pairs: Pairs = []
            for n, row in enumerate(rows, 1):
                dom = self.state.domains[row.dmid]
                cls = dom.class_by_id(row.classid)
                pairs += [
                    (f"fid_{n}_fid", row.fid),
                    (f"fid_{n}_domain", dom.name),
                    (f"fid_{n}_class", cls.name if cls else None),
                    (f"fid_{n}_key", row.key),
                    (f"fid_{n}_length", row.length),
                    (f"fid_{n}_devcount", row.devcount),
                ]
        return [*pairs, ("fid_count", len(rows))]
