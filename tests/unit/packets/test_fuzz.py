"""Fuzzing: malformed input of any kind raises MalformedPacket and nothing else, from every parser.

Inputs are arbitrary bytes, bytes behind plausible headers (so the fuzzer gets past the EtherType), and valid
frames or messages mutated (bytes flipped or overwritten, cut short, bytes inserted or deleted).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from midonet.packets import FlowMatch, MalformedPacket, arp, dhcp, ethernet, frame, icmp, ipv4, parse_frame, tcp, udp
from midonet.packets import vxlan as vxlan_codec

from .strategies import frame_specs

MANY = settings(max_examples=400, deadline=None)


def only_malformed(parse: Callable[[bytes], object], data: bytes) -> None:
    """Call ``parse``; any exception other than MalformedPacket fails the test."""
    try:
        parse(data)
    except MalformedPacket:
        pass


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x05, 0x0F, 0x45, 0x4F, 0x80, 0xFF]))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


valid_frames = frame_specs().map(lambda sp: frame.build(*sp))
headers = st.sampled_from([
    b"", b"\x08\x00\x45", b"\x08\x00\x46\x00", b"\x08\x06\x00\x01\x08\x00\x06\x04", b"\x81\x00\x00\x0a\x08\x00\x45",
    b"\x88\xa8\x00\x01\x81\x00\x00\x02\x08\x06", b"\x81\x00",
])  # fmt: skip
plausible_frames = st.builds(lambda mac, head, rest: mac + head + rest, st.binary(min_size=12, max_size=12), headers,
                             st.binary(max_size=80))  # fmt: skip


@MANY
@given(st.binary(max_size=200))
def test_parse_frame_on_arbitrary_bytes(data: bytes) -> None:
    only_malformed(parse_frame, data)


@MANY
@given(plausible_frames)
def test_parse_frame_behind_plausible_headers(data: bytes) -> None:
    only_malformed(parse_frame, data)


@MANY
@given(mutated(valid_frames))
def test_parse_frame_on_mutated_frames(data: bytes) -> None:
    only_malformed(parse_frame, data)
    only_malformed(ethernet.parse, data)
    only_malformed(vxlan_codec.decapsulate, data)


@settings(max_examples=200, deadline=None)
@given(mutated(valid_frames), st.sampled_from([
    {"eth_src": "02:00:00:00:00:01"}, {"ip_src": "1.2.3.4", "tp_dst": 80}, {"ip_ttl": 1}, {"vlan_ids": (1, 2)},
    {"icmp_id": 5}, {"icmp_data": bytes(28)},
]))  # fmt: skip
def test_apply_on_mutated_frames(data: bytes, changes: dict[str, object]) -> None:
    try:
        frame.apply(data, changes)  # type: ignore[arg-type]
    except ValueError:  # MalformedPacket for the frame, plain ValueError for a change it cannot carry
        pass


layer_parsers: list[Callable[[bytes], object]] = [
    arp.parse, icmp.parse, icmp.parse_embedded, ipv4.parse_options, tcp.parse, tcp.parse_options, udp.parse,
    vxlan_codec.parse, lambda d: ipv4.parse(d, verify=True), lambda d: icmp.parse(d, verify=True),
    lambda d: dhcp.parse(d).decoded(),
]  # fmt: skip


@MANY
@given(st.binary(max_size=120))
def test_layer_parsers_on_arbitrary_bytes(data: bytes) -> None:
    for parse in layer_parsers:
        only_malformed(parse, data)


def _valid_layers() -> st.SearchStrategy[bytes]:
    options = dhcp.encode_options(dhcp.DhcpOptions(
        message_type=1, subnet_mask="255.255.0.0", routers=("10.0.0.1",), hostname="h", interface_mtu=1500,
        classless_routes=(dhcp.ClasslessRoute("10.0.0.0", 8, "10.0.0.1"),)))  # fmt: skip
    dhcp_message = dhcp.build(dhcp.DhcpMessage(op=1, xid=1, chaddr="02:00:00:00:00:01", options=options), min_length=0)
    datagram = ipv4.build(ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 6, options=bytes([7, 7, 4, 0, 0, 0, 0, 0])),
                          tcp.build(tcp.TcpHeader(1, 2, options=bytes([2, 4, 5, 180])), b"", "1.1.1.1", "2.2.2.2"))
    return st.sampled_from([
        dhcp_message, datagram, datagram[20:], icmp.build(icmp.unreachable(3, datagram)), arp.build(arp.request(
            "02:00:00:00:00:01", "1.1.1.1", "1.1.1.2")), udp.build(udp.UdpHeader(1, 2), b"x", "1.1.1.1", "2.2.2.2"),
        vxlan_codec.build(5, b"inner"),
    ])  # fmt: skip


@MANY
@given(mutated(_valid_layers()))
def test_layer_parsers_on_mutated_messages(data: bytes) -> None:
    for parse in (*layer_parsers, ipv4.parse):
        only_malformed(parse, data)


@settings(max_examples=100, deadline=None)
@given(st.lists(mutated(st.sampled_from(ipv4.fragment(ipv4.build(ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 17, ident=3),
                                                                  bytes(range(200))), 68))), max_size=6))  # fmt: skip
def test_reassemble_on_mutated_fragments(pieces: list[bytes]) -> None:
    try:
        ipv4.reassemble(pieces)
    except MalformedPacket:
        pass


def test_malformed_is_a_value_error_and_pickles() -> None:
    import pickle

    err = MalformedPacket("ipv4", "too short")
    assert isinstance(err, ValueError) and str(err) == "ipv4: too short"
    again = pickle.loads(pickle.dumps(err))
    assert (again.layer, again.reason) == ("ipv4", "too short")
    assert isinstance(parse_frame(bytes(14)), FlowMatch)
