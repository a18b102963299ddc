"""Request encoding, response decoding and key validation."""

from urllib.parse import parse_qsl

import pytest
from django_mogilefs.exceptions import (
    InvalidKeyError,
    NoneMatchError,
    ProtocolError,
    TrackerError,
    UnknownKeyError,
    UnregisteredDomainError,
)
from django_mogilefs.protocol import encode_request, numbered, parse_response, validate_key

pytestmark = pytest.mark.unit

DANGEROUS = ["\r", "\n", "&", "=", "%", "+", " ", "é", "ä", "猫", "\r\nget_paths domain=x"]


@pytest.mark.parametrize("char", DANGEROUS)
def test_no_key_can_inject_a_command_or_argument(char):
    key = f"avatars/a{char}b{char}=c"
    line = encode_request("get_paths", {"domain": "d", "key": key, "noverify": 1})
    assert line.endswith(b"\r\n")
    body = line[:-2]
    assert b"\r" not in body and b"\n" not in body, "one request must stay one line"
    command, _, args = body.decode("ascii").partition(" ")
    assert command == "get_paths"
    assert dict(parse_qsl(args, strict_parsing=True)) == {
        "domain": "d",
        "key": key,
        "noverify": "1",
    }
    assert args.count("&") == 2, "no extra argument may appear"


def test_encode_request_without_args_has_no_trailing_space():
    assert encode_request("noop") == b"noop\r\n"


def test_encode_request_drops_none_and_maps_bools():
    line = encode_request("get_paths", {"domain": "d", "key": "k", "noverify": True, "zone": None})
    assert line == b"get_paths domain=d&key=k&noverify=1\r\n"


def test_encode_request_rejects_bad_command_names():
    with pytest.raises(ValueError):
        encode_request("noop\r\ndelete")


def test_parse_ok_decodes_form_urlencoding():
    line = b"OK key_1=dir+with+space/%C3%A4%26%3D%25%2B%3F%23.txt&key_count=1&next_after=x\r\n"
    assert parse_response(line) == {
        "key_1": "dir with space/ä&=%+?#.txt",
        "key_count": "1",
        "next_after": "x",
    }


def test_parse_ok_with_no_arguments_and_empty_values():
    assert parse_response(b"OK \r\n") == {}
    assert parse_response(b"OK host1_altip=&hosts=1\r\n") == {"host1_altip": "", "hosts": "1"}


def test_parse_err_maps_codes_to_typed_exceptions_and_keeps_code_and_message():
    with pytest.raises(UnregisteredDomainError) as info:
        parse_response(b"ERR unreg_domain Domain+name+invalid/not+found abc123\r\n")
    assert info.value.code == "unreg_domain"
    assert info.value.message == "Domain name invalid/not found"
    with pytest.raises(UnknownKeyError):
        parse_response(b"ERR unknown_key unknown_key\r\n")
    with pytest.raises(NoneMatchError):
        parse_response(b"ERR none_match No+keys+match\r\n")


def test_unlisted_error_code_is_a_plain_tracker_error():
    with pytest.raises(TrackerError) as info:
        parse_response(b"ERR weird_code Something+odd\r\n")
    assert type(info.value) is TrackerError
    assert (info.value.code, info.value.message) == ("weird_code", "Something odd")


@pytest.mark.parametrize("line", [b"", b"HELLO\r\n", b"OKAY x=1\r\n", b"ERR \r\n", b"\xff\xfe\r\n"])
def test_garbage_is_a_protocol_error(line):
    with pytest.raises(ProtocolError):
        parse_response(line)


def test_numbered_ignores_order_and_missing_items():
    data = {"path2": "b", "paths": "3", "path1": "a"}
    assert numbered(data, "paths", "path%d") == ["a", "b"]


@pytest.mark.parametrize("key", ["", "x" * 256, "é" * 128, "a\x00b"])
def test_invalid_keys_are_rejected(key):
    with pytest.raises(InvalidKeyError):
        validate_key(key)


def test_longest_keys_are_accepted():
    assert validate_key("x" * 255) == "x" * 255
    assert validate_key("é" * 127) == "é" * 127  # 254 bytes
