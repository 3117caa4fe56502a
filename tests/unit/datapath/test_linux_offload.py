"""Completing checksum-partial packets and segmenting GSO ones, as the upcall channel must (scapy is the oracle)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP  # type: ignore[import-untyped]
from scapy.layers.l2 import Dot1Q, Ether  # type: ignore[import-untyped]

from midonet.datapath.linux.offload import (
    GSO_TCPV4,
    GSO_TCPV6,
    GSO_UDP_L4,
    NEEDS_CSUM,
    VnetHeader,
    finish,
)
from midonet.packets import checksum

SRC, DST = "10.0.0.1", "10.0.0.2"


def partial(frame: bytes, l4: int, csum_offset: int, proto: int) -> bytes:
    """`frame` as a VM with checksum offload sends it: the L4 checksum field holds the pseudo-header sum."""
    src, dst = bytes(map(int, SRC.split("."))), bytes(map(int, DST.split(".")))
    pseudo = checksum.pseudo_header_sum(src, dst, proto, len(frame) - l4)
    at = l4 + csum_offset
    return frame[:at] + pseudo.to_bytes(2, "big") + frame[at + 2 :]


@pytest.mark.parametrize("tagged", [False, True])
def test_partial_tcp_checksum_completed(tagged: bool) -> None:
    layers = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
    if tagged:
        layers = layers / Dot1Q(vlan=5)
    good = bytes(layers / IP(src=SRC, dst=DST) / TCP(sport=1234, dport=80, flags="S") / (b"x" * 33))
    l4 = 34 + (4 if tagged else 0)
    frame = partial(good, l4, 16, 6)
    assert frame != good
    assert finish(frame, VnetHeader(NEEDS_CSUM, 0, 0, 0, l4, 16)) == [good]


def test_partial_udp_checksum_completed() -> None:
    good = bytes(Ether() / IP(src=SRC, dst=DST) / UDP(sport=5, dport=53) / b"question")
    assert finish(partial(good, 34, 6, 17), VnetHeader(NEEDS_CSUM, 0, 0, 0, 34, 6)) == [good]


def test_plain_frames_untouched() -> None:
    frame = bytes(Ether() / IP(src=SRC, dst=DST) / UDP() / b"x")
    assert finish(frame, VnetHeader()) == [frame]


def test_tcp_super_packet_segmented() -> None:
    payload = bytes(range(256)) * 20   # 5,120 bytes
    big = Ether() / IP(src=SRC, dst=DST, id=100) / TCP(sport=1234, dport=80, seq=1000, flags="PA") / payload
    frame = partial(bytes(big), 34, 16, 6)
    segments = finish(frame, VnetHeader(NEEDS_CSUM, GSO_TCPV4, 66, 1448, 34, 16))
    assert [len(Ether(s)[TCP].payload) for s in segments] == [1448, 1448, 1448, 776]
    for i, raw in enumerate(segments):
        got = Ether(raw)
        expected = Ether(bytes(Ether() / IP(src=SRC, dst=DST, id=100 + i) /
                               TCP(sport=1234, dport=80, seq=1000 + 1448 * i, flags="PA" if i == 3 else "A") /
                               payload[1448 * i : 1448 * (i + 1)]))
        assert raw == bytes(expected), i
        assert got[IP].chksum == expected[IP].chksum and got[TCP].chksum == expected[TCP].chksum
    assert b"".join(bytes(Ether(s)[TCP].payload) for s in segments) == payload


def test_udp_l4_super_packet_segmented() -> None:
    payload = b"y" * 2500
    frame = bytes(Ether() / IP(src=SRC, dst=DST) / UDP(sport=9, dport=10) / payload)
    segments = finish(frame, VnetHeader(0, GSO_UDP_L4, 42, 1000, 0, 0))
    assert [len(Ether(s)[UDP].payload) for s in segments] == [1000, 1000, 500]
    for raw in segments:
        expected = Ether(raw)
        del expected[IP].chksum, expected[UDP].chksum, expected[UDP].len
        assert raw == bytes(expected)


def test_unsupported_gso_refused() -> None:
    frame = bytes(Ether() / IP(src=SRC, dst=DST) / TCP() / b"z")
    with pytest.raises(ValueError):
        finish(frame, VnetHeader(0, GSO_TCPV6, 0, 100, 0, 0))
