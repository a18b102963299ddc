"""File commands: create_open/create_close, get_paths, file_info/debug, delete, rename, …"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from django_mogilefs.exceptions import StorageNodeError

from .base import Args, CommandBase, CommandError, weighted_list
from .db import Duplicate
from .httpfile import FILE_MISSING, head_size
from .observe import ClusterView, DeviceView
from .protocol import perl_int, perl_num, perl_true
from .store import HASH_BYTES, HASHLIB_NAMES, Checksum, FileRow

_CHECKSUM = re.compile(r"([\w-]+):([a-fA-F0-9]{32,128})", re.ASCII)
Pairs = list[tuple[str, object]]


def valid_key(key: str | None) -> bool:
    return key is not None and key != ""


def parse_checksum(fid: int, text: str) -> Checksum:
    """MogileFS::Checksum->from_string; ``invalid_checksum_format`` on any problem."""
    match = _CHECKSUM.fullmatch(text)
    if not match or match.group(1) not in HASH_BYTES:
        raise CommandError("invalid_checksum_format")
    hexdigest = match.group(2)
    # Perl's pack("H*") pads an odd digit count with a 0 nibble: 39 digits are a SHA-1.
    digest = bytes.fromhex(hexdigest + "0" * (len(hexdigest) % 2))
    if len(digest) != HASH_BYTES[match.group(1)]:
        raise CommandError("invalid_checksum_format")
    return Checksum(fid, match.group(1), digest)


class FileCommands(CommandBase):
    # ------------------------------------------------------------------ create

    def _pick_devices(self, view: ClusterView, size: float | None, count: int) -> list[DeviceView]:
        """create_open's device choice: by free space, weighted, one per host."""
        devices = list(view.devices.values())
        if size:
            fits = [d for d in devices if d.mb_free is not None and d.mb_free * 1048576 > size]
            devices = fits or [d for d in devices if d.mb_free is None]
        usable = sorted(
            (d for d in devices if d.should_get_new_files),
            key=lambda d: d.percent_free,
            reverse=True,
        )[:20]
        ordered: list[DeviceView] = weighted_list(
            self.rng, [(d, 100 * d.percent_free) for d in usable]
        )
        hint = self.tracker.take_placement_hint()
        if hint:
            # A test may ask for particular devices; honoured only if all are eligible.
            wanted = [d for devid in hint for d in ordered if d.devid == devid]
            if len(wanted) == len(hint):
                ordered = wanted + [d for d in ordered if d not in wanted]
        dests: list[DeviceView] = []
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
            cls = self.store.class_by_name(dom.dmid, args["class"])
            # Query.pm: `... ->id or return err_line("unreg_class")`, so classid 0 fails too.
            if cls is None or cls.classid == 0:
                raise CommandError("unreg_class")
            classid = cls.classid
        self.tracker.monitor.wait_first_round()
        view = self.tracker.view()
        dests = self._pick_devices(view, size, 3 if multi else 1)
        if not dests:
            raise CommandError("no_devices")
        devids = ",".join(str(d.devid) for d in dests)
        try:
            fid = self.store.register_tempfile(wanted_fid, dom.dmid, key, classid, devids)
        except Duplicate:
            raise CommandError("fid_in_use") from None
        urls = [view.url(d.devid, fid) for d in dests]
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
        view = self.tracker.view()
        if devid not in view.devices:
            raise RuntimeError(f"no device {devid}")  # Perl dies building the URL
        if path != view.url(devid, fid):
            raise CommandError("bogus_args")
        temp = self.store.take_tempfile(fid)
        if temp is None:
            raise CommandError("no_temp_file")

        def failed() -> None:  # the upload is thrown away (and deleted from the node)
            self.store.add_file_on(fid, devid)
            self.store.delete_file(fid)

        if not re.search(rf"\b{devid}\b", temp.devids):
            failed()
            raise CommandError(
                "invalid_destdev",
                f"File uploaded to invalid dest {devid}. Valid devices were: {temp.devids}",
            )
        if key is None or not valid_key(key):
            failed()
            return None
        size = self._verify_upload(args, path, checksum, failed)
        old = self.store.file_by_key(dom.dmid, key)
        if old is not None and old.fid == fid:
            raise CommandError("fid_exists")
        self.store.close_file(temp, key, size, devid)
        cls = self.store.class_by_id(dom.dmid, temp.classid)
        if checksum and cls is not None and cls.hashtype == checksum.hashtype:
            self.store.set_checksum(checksum)  # Checksum->maybe_save
        self.store.enqueue_replication(fid)
        return None

    def _verify_upload(
        self, args: Args, path: str, checksum: Checksum | None, failed: Callable[[], None]
    ) -> int:
        """create_close's HEAD size check and optional checksum verification; the size."""
        size = head_size(self.tracker.http, path)
        expected = args["size"] if perl_true(args.get("size")) else "-1"
        if size is None or size == FILE_MISSING:
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
            res = self.tracker.http.request("GET", url)
        except StorageNodeError:
            return b""
        ok = res.status_code == 200
        return hashlib.new(HASHLIB_NAMES[hashtype], res.content).digest() if ok else b""

    # ------------------------------------------------------------------ read

    def _file(self, args: Args, *, missing: str = "unknown_key") -> FileRow:
        dom = self.check_domain(args)
        if not valid_key(args.get("key")):
            raise CommandError("no_key")
        row = self.store.file_by_key(dom.dmid, args["key"])
        if row is None:
            raise CommandError(missing)
        return row

    def cmd_get_paths(self, args: Args) -> Pairs:
        row = self._file(args)
        pathcount = perl_num(args["pathcount"]) if perl_true(args.get("pathcount")) else 2
        pathcount = max(pathcount, 2)
        noverify = perl_true(args.get("noverify"))
        alt = args.get("zone") == "alt"
        view = self.tracker.view()
        devs = [view.devices[d] for d in self.store.devids(row.fid) if d in view.devices]
        ordered = weighted_list(self.rng, [(d, d.row.weight or 100) for d in devs])
        paths: list[str] = []
        drain: list[str] = []
        backup = None
        for dev in ordered:
            if dev.hostid not in view.hosts:
                continue
            url = view.url(dev.devid, row.fid, get=True, alt=alt)
            if not dev.should_read_from:
                backup = url
                continue
            if not (paths or noverify or self._size_matches(url, row.length)):
                continue
            if dev.draining:
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
        return head_size(self.tracker.http, url) == length

    def cmd_file_info(self, args: Args) -> Pairs:
        row = self._file(args)
        dom = self.store.domain_by_id(row.dmid)
        cls = self.store.class_by_id(row.dmid, row.classid)
        pairs: Pairs = [
            ("fid", row.fid),
            ("domain", dom.name if dom else None),
            ("class", cls.name if cls else None),
        ]
        if cls is not None and cls.hashtype:
            checksum = self.store.checksum(row.fid)
            pairs.append(("checksum", checksum.info() if checksum else "MISSING"))
        pairs += [("key", row.key), ("length", row.length), ("devcount", row.devcount)]
        if perl_true(args.get("devices")):
            pairs.append(("devids", ",".join(map(str, self.store.devids(row.fid)))))
        return pairs

    def cmd_file_debug(self, args: Args) -> Pairs:
        if perl_true(args.get("fid")):
            fid = perl_int(args["fid"])
            row = self.store.file_by_fid(fid)
        else:
            row = self._file(args)
            fid = row.fid
        pairs: Pairs = []
        if row is not None:
            dom = self.store.domain_by_id(row.dmid)
            cls = self.store.class_by_id(row.dmid, row.classid)
            pairs += [
                ("fid_fid", row.fid),
                ("fid_dmid", row.dmid),
                ("fid_dkey", row.key),
                ("fid_length", row.length),
                ("fid_classid", row.classid),
                ("fid_devcount", row.devcount),
                ("fid_domain", dom.name if dom else None),
                ("fid_class", cls.name if cls else None),
            ]
        temp = self.store.tempfile(fid)
        if temp is not None:
            pairs += [
                ("tempfile_fid", fid),
                ("tempfile_dmid", temp.dmid),
                ("tempfile_dkey", temp.key),
                ("tempfile_classid", temp.classid),
                ("tempfile_devids", temp.devids),
                ("tempfile_createtime", temp.createtime),
            ]
        for name, queue in (("replqueue", "file_to_replicate"), ("delqueue", "file_to_delete2")):
            qrow = self.store.queue_row(queue, fid)
            if qrow is not None:
                pairs += [
                    (f"{name}_fid", fid),
                    (f"{name}_nexttry", qrow.nexttry),
                    (f"{name}_failcount", qrow.failcount),
                ]
        devids = self.store.devids(fid) if row is not None else []
        view = self.tracker.view()
        for devid in devids:
            if devid in view.devices and view.devices[devid].hostid in view.hosts:
                pairs.append((f"devpath_{devid}", view.url(devid, fid, get=True)))
        if devids:
            pairs.append(("devids", ",".join(map(str, devids))))
        checksum = self.store.checksum(fid)
        pairs.append(("checksum", checksum.info() if checksum else "NONE"))
        return pairs

    # ------------------------------------------------------------------ change

    def cmd_delete(self, args: Args) -> None:
        row = self._file(args)
        self.store.delete_file(row.fid)

    def cmd_rename(self, args: Args) -> None:
        dom = self.check_domain(args)
        from_key, to_key = args.get("from_key"), args.get("to_key")
        if not (valid_key(from_key) and valid_key(to_key)):
            raise CommandError("no_key")
        assert from_key is not None and to_key is not None
        row = self.store.file_by_key(dom.dmid, from_key)
        if row is None:
            raise CommandError("unknown_key")
        if from_key == to_key:
            return None
        try:
            self.store.rename_file(row.fid, to_key)
        except Duplicate:
            # The real worker also sends a stray OK, which its parent drops.
            raise CommandError("key_exists") from None
        return None

    def cmd_updateclass(self, args: Args) -> None:
        dom = self.check_domain(args)
        if not valid_key(args.get("key")):
            raise CommandError("no_key")
        if not perl_true(args.get("class")):
            raise CommandError("no_class")
        cls = self.store.class_by_name(dom.dmid, args["class"])
        if cls is None:
            raise CommandError("class_not_found")
        row = self.store.file_by_key(dom.dmid, args["key"])
        if row is None:
            raise CommandError("invalid_key")
        if not self.store.devids(row.fid):
            raise CommandError("no_devices")
        if row.classid != cls.classid:
            self.store.update_classid(row.fid, cls.classid)
            self.store.enqueue_replication(row.fid)
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
        keys = self.store.list_keys(dom.dmid, prefix or "", after or "", limit)
        if not keys:
            raise CommandError("none_match")
        pairs: Pairs = [(f"key_{n}", k) for n, k in enumerate(keys, 1)]
        return [*pairs, ("key_count", len(keys)), ("next_after", keys[-1])]

    def cmd_list_fids(self, args: Args) -> Pairs:
        start = perl_int(args.get("from"))
        count = perl_int(args.get("to")) or 100
        if count > 500 or count < 0:
            count = 500
        rows = self.store.files_after(start, count)
        domains = {d.dmid: d.name for d in self.store.domains()}
        classes = {(c.dmid, c.classid): c.name for c in self.store.classes()}
        pairs: Pairs = []
        for n, row in enumerate(rows, 1):
            name = classes.get((row.dmid, row.classid), "default" if row.classid == 0 else None)
            pairs += [
                (f"fid_{n}_fid", row.fid),
                (f"fid_{n}_domain", domains.get(row.dmid)),
                (f"fid_{n}_class", name),
                (f"fid_{n}_key", row.key),
                (f"fid_{n}_length", row.length),
                (f"fid_{n}_devcount", row.devcount),
            ]
        return [*pairs, ("fid_count", len(rows))]
