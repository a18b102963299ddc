"""Decoding get_hosts / get_devices answers, whose records are numbered per answer."""

import pytest
from django_mogilefs.cluster import parse_devices, parse_hosts
from django_mogilefs.protocol import parse_response

pytestmark = pytest.mark.unit

# A real 2.73 answer (transcript, "hosts"): record numbers are not host ids.
REAL_GET_HOSTS = (
    b"OK host1_http_get_port=&host2_http_get_port=&host1_status=alive&host2_status=alive"
    b"&host3_hostname=mog1&host3_hostip=127.0.0.1&host1_http_port=7500&host2_http_port=7500"
    b"&host3_altmask=&host1_hostid=3&host2_hostid=2&host3_altip=&host2_altmask=&host1_altmask="
    b"&host3_http_port=7500&hosts=3&host3_hostid=1&host2_altip=&host1_altip="
    b"&host3_http_get_port=&host2_hostip=127.0.0.2&host2_hostname=mog2&host1_hostip=127.0.0.3"
    b"&host1_hostname=mog3&host3_status=alive\r\n"
)


def test_hosts_from_a_real_answer_are_sorted_by_id():
    hosts = parse_hosts(parse_response(REAL_GET_HOSTS))
    assert [(h.hostid, h.name, h.ip, h.http_port, h.http_get_port) for h in hosts] == [
        (1, "mog1", "127.0.0.1", 7500, None),
        (2, "mog2", "127.0.0.2", 7500, None),
        (3, "mog3", "127.0.0.3", 7500, None),
    ]


def test_record_1_and_record_10_do_not_mix():
    data = {"devices": "12"}
    for n in range(1, 13):
        data.update(
            {
                f"dev{n}_devid": str(100 + n),
                f"dev{n}_hostid": str(n),
                f"dev{n}_status": "alive",
                f"dev{n}_mb_total": "",
            }
        )
    devices = parse_devices(data)
    assert [(d.devid, d.hostid) for d in devices] == [(100 + n, n) for n in range(1, 13)]
    assert all(d.mb_total is None for d in devices)
