"""Namespace and cluster administration: domains, classes, hosts, devices."""

from __future__ import annotations

import re

from .base import Args, CommandBase, CommandError
from .db import Duplicate
from .protocol import perl_int, perl_num, perl_true
from .store import DEVICE_STATES, HASH_TYPES, HOST_STATES, Device, Host

Pairs = list[tuple[str, object]]
_POLICY = re.compile(r"\s*(\w+)\b(.*)", re.ASCII | re.DOTALL)
_POLICY_ARGS = re.compile(r"\s*\(\s*(\d*)\s*\)\s*", re.ASCII)
KNOWN_POLICIES = ("MultipleHosts", "MultipleDevices")


def check_replpolicy(text: str) -> None:
    """ReplicationPolicy->new_from_policy_string; the error text imitates Perl's."""
    match = _POLICY.fullmatch(text)
    if not match:
        raise CommandError("invalid_replpolicy", f"Failed to parse policy string: {text}\n")
    name, rest = match.groups()
    if name not in KNOWN_POLICIES:
        module = f"MogileFS/ReplicationPolicy/{name}.pm"
        raise CommandError(
            "invalid_replpolicy",
            f"Can't locate {module} in @INC (you may need to install the "
            f"MogileFS::ReplicationPolicy::{name} module) at (eval 1) line 1.\n",
        )
    if not _POLICY_ARGS.fullmatch(rest):
        raise CommandError(
            "invalid_replpolicy",
            f"MogileFS::ReplicationPolicy::{name} failed to parse args: {rest}\n",
        )


def _opt_int(value: str | None) -> int | None:
    return perl_int(value) if value not in (None, "") else None


class AdminCommands(CommandBase):
    # ------------------------------------------------------------------ domains

    def cmd_create_domain(self, args: Args) -> object:
        name = args.get("domain")
        if not perl_true(name):
            raise CommandError("no_domain")
        if self.store.domain_by_name(name):
            raise CommandError("domain_exists")
        try:
            self.store.create_domain(name or "")
        except Duplicate:
            raise CommandError("domain_exists") from None
        return self.clear_cache({"domain": name})

    def cmd_delete_domain(self, args: Args) -> object:
        name = args.get("domain")
        if not perl_true(name):
            raise CommandError("no_domain")
        dom = self.store.domain_by_name(name)
        if dom is None:
            raise CommandError("domain_not_found")
        if self.store.domain_has_files(dom.dmid):
            raise CommandError("domain_has_files")
        if self.store.classes(dom.dmid):
            raise CommandError("domain_has_classes")
        self.store.delete_domain(dom.dmid)
        return self.clear_cache({"domain": name})

    def cmd_get_domains(self, args: Args) -> Pairs:
        domains = self.store.domains()
        self.rng.shuffle(domains)
        pairs: Pairs = [("domains", len(domains))]
        for d, dom in enumerate(domains, 1):
            classes = self.store.domain_classes(dom.dmid)
            self.rng.shuffle(classes)
            pairs += [(f"domain{d}", dom.name), (f"domain{d}classes", len(classes))]
            for c, cls in enumerate(classes, 1):
                pre = f"domain{d}class{c}"
                pairs += [
                    (f"{pre}name", cls.name),
                    (f"{pre}mindevcount", cls.mindevcount),
                    (f"{pre}replpolicy", cls.policy_string),
                    (f"{pre}hashtype", cls.hashtype_string),
                ]
        return pairs

    # ------------------------------------------------------------------ classes

    def cmd_create_class(self, args: Args, update: bool = False) -> object:
        name, classname = args.get("domain"), args.get("class")
        if not name:
            raise CommandError("no_domain")
        if not classname:
            raise CommandError("no_class")
        mindevcount = perl_int(args.get("mindevcount"))
        if mindevcount <= 0:
            raise CommandError("invalid_mindevcount")
        replpolicy = args.get("replpolicy") if perl_true(args.get("replpolicy")) else ""
        if replpolicy:
            check_replpolicy(replpolicy)
        hashtype = args.get("hashtype") if perl_true(args.get("hashtype")) else None
        if hashtype and hashtype != "NONE" and hashtype not in HASH_TYPES:
            raise CommandError("invalid_hashtype")
        dom = self.store.domain_by_name(name)
        if dom is None:
            raise CommandError("domain_not_found")
        cls = next((c for c in self.store.classes(dom.dmid) if c.name == classname), None)
        if update and cls is None and classname != "default":
            raise CommandError("class_not_found")
        if not update and cls is not None:
            raise CommandError("class_exists")
        if cls is None:
            try:
                classid = self.store.create_class(dom.dmid, classname, mindevcount)
            except Duplicate:
                raise CommandError("class_exists") from None
        else:
            classid = cls.classid
        changes: dict[str, object] = {"mindevcount": mindevcount}
        if replpolicy:
            changes["replpolicy"] = replpolicy
        if hashtype:
            changes["hashtype"] = None if hashtype == "NONE" else hashtype
        self.store.update_class(dom.dmid, classid, **changes)
        return self.clear_cache({"class": classname, "mindevcount": mindevcount, "domain": name})

    def cmd_update_class(self, args: Args) -> object:
        return self.cmd_create_class(args, update=True)

    def cmd_delete_class(self, args: Args) -> object:
        name, classname = args.get("domain"), args.get("class")
        if not name:
            raise CommandError("no_domain")  # Query.pm checks `length $domain` twice
        if classname == "default":
            raise CommandError("nodel_default_class")
        dom = self.store.domain_by_name(name)
        if dom is None:
            raise CommandError("domain_not_found")
        cls = next((c for c in self.store.classes(dom.dmid) if c.name == classname), None)
        if cls is None:
            raise CommandError("class_not_found")
        if self.store.class_has_files(dom.dmid, cls.classid):
            raise CommandError("class_has_files")
        self.store.delete_class(dom.dmid, cls.classid)
        return self.clear_cache({"domain": name, "class": classname})

    # ------------------------------------------------------------------ hosts

    def cmd_create_host(self, args: Args, update: bool = False) -> object:
        hostname = args.get("host")
        if not perl_true(hostname):
            raise CommandError("no_host")
        status = args.get("status")
        host = self.store.host_by_name(hostname)
        if update and host is None:
            raise CommandError("host_not_found")
        if not update:
            if host is not None:
                raise CommandError("host_exists")
            if not perl_true(args.get("ip")):
                raise CommandError("no_ip")
            if not perl_true(args.get("port")):
                raise CommandError("no_port")
            status = status or "down"
        if status and status not in HOST_STATES:
            raise CommandError("unknown_state")
        try:
            if host is None:
                hostid = self.store.create_host(hostname or "", args["ip"])
                host = Host(hostid, hostname or "", args["ip"])
            self.store.update_host(host.hostid, self._host_changes(args, status))
        except Duplicate:  # UNIQUE(hostip) / UNIQUE(altip): the store throws "dup"
            raise CommandError("dup") from None
        return self.clear_cache({"hostid": host.hostid, "hostname": hostname})

    @staticmethod
    def _host_changes(args: Args, status: str | None) -> dict[str, object]:
        changes: dict[str, object] = {}
        if status:
            changes["status"] = status
        if "ip" in args:
            changes["hostip"] = args["ip"]
        if "port" in args:
            changes["http_port"] = _opt_int(args["port"])
        if "getport" in args:
            changes["http_get_port"] = _opt_int(args["getport"])
        if "altip" in args:
            changes["altip"] = args["altip"] or None
        if "altmask" in args:
            changes["altmask"] = args["altmask"] or None
        return changes

    def cmd_update_host(self, args: Args) -> object:
        return self.cmd_create_host(args, update=True)

    def cmd_delete_host(self, args: Args) -> object:
        host = self.store.host_by_name(args.get("host"))
        if host is None:
            raise CommandError("unknown_host")
        if any(d.hostid == host.hostid for d in self.store.devices()):
            raise CommandError("host_not_empty")
        self.store.delete_host(host.hostid)
        return self.clear_cache()

    def cmd_get_hosts(self, args: Args) -> Pairs:
        wanted = args.get("hostid")
        hosts = [h for h in self.store.hosts() if wanted is None or h.hostid == perl_num(wanted)]
        self.rng.shuffle(hosts)
        pairs: Pairs = [("hosts", len(hosts))]
        for n, host in enumerate(hosts, 1):
            pairs += [(f"host{n}_{k}", v) for k, v in host.fields().items()]
        return pairs

    # ------------------------------------------------------------------ devices

    def cmd_create_device(self, args: Args) -> object:
        status = args.get("state") or "alive"
        if status not in DEVICE_STATES:
            raise CommandError("invalid_state")
        devid = args.get("devid")
        if not perl_true(devid) or not re.fullmatch(r"\d+", devid or "", re.ASCII):
            raise CommandError("invalid_devid")
        hostid_arg, hostname = args.get("hostid"), args.get("hostname")
        if perl_true(hostid_arg) and re.fullmatch(r"\d+", hostid_arg or "", re.ASCII):
            if self.store.host_by_id(int(hostid_arg or 0)) is None:
                raise CommandError("unknown_hostid")
            hostid = int(hostid_arg or 0)
        elif perl_true(hostname):
            host = self.store.host_by_name(hostname)
            if host is None:
                raise CommandError("unknown_host")
            hostid = host.hostid
        else:
            raise CommandError("bad_args", "No hostid/hostname parameter")
        try:
            self.store.create_device(int(devid or 0), hostid, status)
        except Duplicate:
            raise CommandError("existing_devid") from None
        return self.clear_cache()

    def cmd_get_devices(self, args: Args) -> Pairs:
        wanted = args.get("devid")
        view = self.tracker.view()
        devices = [
            d for d in view.devices.values() if wanted is None or d.devid == perl_num(wanted)
        ]
        self.rng.shuffle(devices)
        pairs: Pairs = [("devices", len(devices))]
        for n, dev in enumerate(devices, 1):
            fields = {
                "devid": dev.devid,
                "hostid": dev.hostid,
                "status": dev.status,
                "weight": dev.row.weight,
                "observed_state": dev.observed_state,
                "mb_total": dev.mb_total,
                "mb_used": dev.mb_used,
                "mb_free": dev.mb_free,
                "mb_asof": None,
                "utilization": None,
                "reject_bad_md5": 1,
            }
            pairs += [(f"dev{n}_{k}", v) for k, v in fields.items()]
        return pairs

    def _device_for(self, args: Args) -> Device:
        """set_state/set_weight: ``no_device`` / ``host_mismatch``."""
        dev = self.store.device(perl_int(args.get("device")))
        if dev is None:
            raise CommandError("no_device")
        host = self.store.host_by_id(dev.hostid)
        if host is None or host.hostname != args.get("host"):
            raise CommandError("host_mismatch")
        return dev

    def cmd_set_state(self, args: Args) -> object:
        state = args.get("state")
        if not (
            perl_true(args.get("host")) and perl_int(args.get("device")) and state in DEVICE_STATES
        ):
            raise CommandError("bad_params")
        dev = self._device_for(args)
        if dev.status == "dead" and state == "alive":
            raise CommandError("state_too_high")
        self.store.set_device_state(dev.devid, state or dev.status)
        return self.clear_cache()

    def cmd_set_weight(self, args: Args) -> object:
        weight = perl_int(args.get("weight"))
        if not (perl_true(args.get("host")) and perl_int(args.get("device")) and weight >= 0):
            raise CommandError("bad_params")
        self.store.set_device_weight(self._device_for(args).devid, weight)
        return self.clear_cache()
