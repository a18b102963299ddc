"""The fake tracker's wire format: eurl, request decoding, response lines."""

from __future__ import annotations

import random

import pytest
from django_mogilefs.exceptions import ProtocolError
from django_mogilefs.protocol import encode_request
from django_mogilefs.testing.faketracker.client import parse_reply
from django_mogilefs.testing.faketracker.protocol import (
    decode_url_args,
    err_line,
    eurl,
    ok_line,
    parse_request,
    perl_num,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("(", "%28"),
        (";", "%3B"),
        ("'", "%27"),
        ("&", "%26"),
        ("=", "%3D"),
        ("%", "%25"),
        ("+", "%2B"),
        ("?", "%3F"),
        ("#", "%23"),
        ("ä", "%C3%A4"),
        (" ", "+"),
        ("\n", "%0A"),
        ("azAZ09_,-./\\:", "azAZ09_,-./\\:"),
    ],
)
def test_eurl_keeps_only_its_safe_set(raw: str, encoded: str) -> None:
    assert eurl(raw) == encoded


def test_eurl_matches_the_recorded_responses() -> None:
    # transcript: list_keys key_3, get_domains replpolicy, a get_paths URL
    assert eurl("dir with space/ä&=%+?#.txt") == "dir+with+space/%C3%A4%26%3D%25%2B%3F%23.txt"
    assert eurl("MultipleHosts(2)") == "MultipleHosts%282%29"
    url = "http://127.0.0.1:7500/dev1/0/000/000/0000000002.fid"
    assert eurl(url) == url


def test_eurl_round_trips_undecodable_bytes() -> None:
    raw = b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert eurl(raw) == "%FF%FE"
    assert decode_url_args("k=%FF%FE") == {"k": raw}


def test_decode_url_args_like_perl() -> None:
    assert decode_url_args("a=x+y&b=x%20y&c=%C3%A4") == {"a": "x y", "b": "x y", "c": "ä"}
    assert decode_url_args("flag&empty=") == {"flag": "", "empty": ""}
    assert decode_url_args("a=b=c") == {"a": "b"}  # Perl split keeps only one value
    assert decode_url_args("&&0&k=v") == {"k": "v"}  # empty and "0" pairs are skipped
    assert decode_url_args("k=1&k=2") == {"k": "1\x002"}


def test_parse_request_command_is_case_insensitive_and_args_optional() -> None:
    assert parse_request("NOOP") == ("noop", {})
    assert parse_request("  get_paths domain=d&key=k") == ("get_paths", {"domain": "d", "key": "k"})
    assert parse_request("create_close ") == ("create_close", {})
    assert parse_request("   ") is None
    assert parse_request("!x") is None


def test_ok_line_always_has_a_space_and_appends_callid() -> None:
    assert ok_line() == "OK "
    assert ok_line(None, "abc123") == "OK callid=abc123"
    assert ok_line({"paths": 1, "x": None}) == "OK paths=1&x="


def test_ok_line_shuffles_keys_but_keeps_pairs() -> None:
    args = {f"k{n}": f"v {n}" for n in range(20)}
    orders = {ok_line(args, rng=random.Random(seed)) for seed in range(5)}
    assert len(orders) > 1
    assert all(parse_reply(line).args == args for line in orders)


def test_err_line_uses_the_default_text_or_repeats_the_code() -> None:
    assert err_line("unreg_domain") == "ERR unreg_domain Domain+name+invalid/not+found"
    assert err_line("unknown_key") == "ERR unknown_key unknown_key"
    assert err_line("bad_args", "No hostid/hostname parameter") == (
        "ERR bad_args No+hostid/hostname+parameter"
    )
    assert err_line("unreg_domain", callid="a b") == (
        "ERR unreg_domain Domain+name+invalid/not+found a+b"
    )


def test_parse_reply_decodes_ok_and_err() -> None:
    ok = parse_reply("OK key_1=dir+with+space/%C3%A4&key_count=1")
    assert ok.ok and ok.args == {"key_1": "dir with space/ä", "key_count": "1"}
    err = parse_reply("ERR unreg_domain Domain+name+invalid/not+found abc123")
    assert (err.ok, err.code, err.message, err.callid) == (
        False,
        "unreg_domain",
        "Domain name invalid/not found",
        "abc123",
    )
    with pytest.raises(ProtocolError):
        parse_reply("HELLO")


def test_what_the_package_client_encodes_the_fake_decodes() -> None:
    wire = encode_request("create_open", {"domain": "d", "key": "a b&c=d/ä", "size": None})
    assert wire == b"create_open domain=d&key=a+b%26c%3Dd%2F%C3%A4\r\n"
    assert parse_request(wire.decode().rstrip()) == (
        "create_open",
        {"domain": "d", "key": "a b&c=d/ä"},
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("12abc", 12),
        ("abc", 0),
        (" -3", -3),
        ("2.5", 2.5),
        (None, 0),
    ],
)
def test_perl_num(text: str | None, value: float) -> None:
    assert perl_num(text) == value
