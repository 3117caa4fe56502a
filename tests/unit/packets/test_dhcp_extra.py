"""Extra DHCP options from operator text (`packets.dhcp_extra`, the original's `DhcpValueParser`)."""

from __future__ import annotations

import pytest

from midonet.packets.dhcp_extra import OPTIONS, encode_extra, option_code


@pytest.mark.parametrize(("name", "code"), [
    ("26", 26), (" 121 ", 121), ("interface-mtu", 26), ("INTERFACE_MTU", 26), ("domain name", 15),
    ("Domain-Name", 15), ("ntp_servers", 42), ("broadcast address", 28), ("vss-option", 221),
    ("no-such-option", None), ("0", None), ("255", None), ("84", None),
])
def test_option_names_and_numbers(name: str, code: int | None) -> None:
    assert option_code(name) == code


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("interface-mtu", "1400", (26, b"\x05\x78")),
    ("ip-lease-time", "3600", (51, b"\x00\x00\x0e\x10")),
    ("time-offset", "-1", (2, b"\xff\xff\xff\xff")),
    ("ntp-servers", "10.0.0.1, 10.0.0.2", (42, bytes([10, 0, 0, 1, 10, 0, 0, 2]))),
    ("router", "10.0.0.1", (3, bytes([10, 0, 0, 1]))),
    ("swap-server", "10.0.0.9", (16, bytes([10, 0, 0, 9]))),
    ("domain-name", "example.org", (15, b"example.org")),
    ("ip-fowarding-enable-disable", "true", (19, b"\x01")),
    ("ip-fowarding-enable-disable", "0x0", (19, b"\x00")),
    ("default-ip-ttl", "0x1f", (23, b"\x1f")),
    ("policy-filter", "10.1.2.3/16", (21, bytes([10, 1, 0, 0, 255, 255, 0, 0]))),
    ("classless-static-routes", "10.1.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1",
     (121, bytes([16, 10, 1, 10, 0, 0, 254, 0, 10, 0, 0, 1]))),
    ("netbios-over-tcp-ip-node-type", "8", (46, b"\x08")),
    ("client-identifier", "1, abc", (61, b"\x01abc")),
    ("slp-directory-agent", "true,10.0.0.1", (78, bytes([1, 10, 0, 0, 1]))),
    ("status-code", "4,not allowed", (151, b"\x04not allowed")),
])
def test_values_are_encoded_by_the_kind_of_option(name: str, value: str, expected: tuple[int, bytes]) -> None:
    assert encode_extra(name, value) == expected


@pytest.mark.parametrize(("name", "value"), [
    ("no-such-option", "1"),
    ("interface-mtu", "big"),
    ("interface-mtu", "70000"),
    ("ntp-servers", "10.0.0.300"),
    ("ip-fowarding-enable-disable", "maybe"),
    ("default-ip-ttl", "64"),                       # a "byte" option takes 0..31, as the original
    ("classless-static-routes", "10.1.0.0/16"),     # a destination without its gateway
    ("netbios-over-tcp-ip-node-type", "3"),
    ("dhcp-geoconf", "short"),                      # 5 bytes are not a multiple of the 16-byte unit
    ("domain-name", ""),
])
def test_invalid_values_are_left_out(name: str, value: str) -> None:
    assert encode_extra(name, value) is None


def test_domain_search_lists_are_compressed_as_rfc_3397_shows() -> None:
    code, data = encode_extra("domain-search", "eng.apple.com., marketing.apple.com.") or (0, b"")
    assert code == 119
    assert data == b"\x03eng\x05apple\x03com\x00\x09marketing\xc0\x04"


def test_every_option_has_a_positive_unit_length() -> None:
    assert all(unit > 0 and kind for unit, kind in OPTIONS.values())
