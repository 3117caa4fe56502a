"""The flow-state wire format: round trips, splitting at the size bound, and every malformed message refused."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from midonet.agent.flowstate_wire import (
    CONTROL_TOS,
    MAX_PAYLOAD,
    VERSION,
    FlowStateMessage,
    MalformedFlowState,
    MessageKind,
    decode,
    encode,
    frame,
    payload_of,
)
from midonet.state.conntrack import ConnTrackKey
from midonet.state.nat import NatBinding, NatKey, NatKeyType

HOST = "6d69646f-0000-4000-8000-000000000001"
PORT_IN, PORT_OUT = "6d69646f-0000-4000-8000-0000000000a1", "6d69646f-0000-4000-8000-0000000000a2"
ROUTER = "6d69646f-0000-4000-8000-0000000000c1"

CT = ConnTrackKey("10.0.2.1", 53, "192.0.2.1", 1025, 17, ROUTER)
FWD = NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 5000, "10.0.2.1", 53, 17, ROUTER)
SNAT = NatBinding("192.0.2.1", 1025)


def _message(**kw: object) -> FlowStateMessage:
    base: dict[str, object] = dict(sender=HOST, ingress_port=PORT_IN, egress_ports=(PORT_OUT,), conntrack=(CT,),
                                   nat=((FWD, SNAT), (FWD.return_key(SNAT), FWD.return_binding())))
    base.update(kw)
    return FlowStateMessage(**base)  # type: ignore[arg-type]


def test_a_message_round_trips() -> None:
    message = _message()
    [payload] = encode(message)
    assert payload[0] == VERSION
    assert decode(payload) == message
    assert len(payload) == 28 + 2 * 16 + 29 + 2 * 36


def test_request_and_last_response_round_trip() -> None:
    request = FlowStateMessage(HOST, MessageKind.REQUEST, ingress_port=PORT_IN, request_id=0xDEADBEEF)
    assert [decode(p) for p in encode(request)] == [request]
    end = FlowStateMessage(HOST, MessageKind.RESPONSE, request_id=7, last=True)
    assert [decode(p) for p in encode(end)] == [end]


def test_a_large_message_is_split_into_bounded_complete_messages() -> None:
    many_ports = tuple(f"6d69646f-0000-4000-8000-{i:012x}" for i in range(70))
    many_nat = tuple((FWD._replace(tp_src=i), SNAT._replace(port=1024 + i)) for i in range(80))
    message = _message(egress_ports=many_ports, nat=many_nat, request_id=3, kind=MessageKind.RESPONSE)
    payloads = encode(message)
    assert all(len(p) <= MAX_PAYLOAD for p in payloads)
    parts = [decode(p) for p in payloads]
    assert [p.last for p in parts] == [False] * (len(parts) - 1) + [True]
    assert {p.request_id for p in parts} == {3}
    by_ports: dict[tuple[str, ...], list[FlowStateMessage]] = {}
    for p in parts:
        by_ports.setdefault(p.egress_ports, []).append(p)
    assert sorted(port for ports in by_ports for port in ports) == sorted(many_ports)
    for group in by_ports.values():                    # every group of ports carries every key
        assert [k for p in group for k in p.nat] == list(many_nat)
        assert [k for p in group for k in p.conntrack] == [CT]


def test_ids_must_be_uuids() -> None:
    with pytest.raises(ValueError):
        encode(_message(sender="h1"))


@pytest.mark.parametrize("damage", ["version", "kind", "flags", "reserved", "nat type", "trailing", "request keys"])
def test_malformed_messages_are_refused(damage: str) -> None:
    payload = bytearray(encode(_message())[0])
    if damage == "version":
        payload[0] = 2
    elif damage == "kind":
        payload[1] = 9
    elif damage == "flags":
        payload[2] |= 0x80
    elif damage == "reserved":
        payload[6] = 1
    elif damage == "nat type":
        payload[28 + 32 + 29] = 7
    elif damage == "trailing":
        payload += b"\x00"
    else:
        payload[1] = MessageKind.REQUEST
    with pytest.raises(MalformedFlowState):
        decode(bytes(payload))


def test_every_truncation_is_refused() -> None:
    payload = encode(_message())[0]
    for end in range(len(payload)):
        with pytest.raises(MalformedFlowState):
            decode(payload[:end])


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    try:
        decode(bytes([VERSION]) + data)
    except MalformedFlowState:
        pass


_ports = st.integers(0, 65535)
_ips = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_ids = st.uuids().map(str)
_ct = st.builds(ConnTrackKey, _ips, _ports, _ips, _ports, st.sampled_from([1, 6, 17]), _ids)
_nat = st.tuples(st.builds(NatKey, st.sampled_from(list(NatKeyType)), _ips, _ports, _ips, _ports,
                           st.sampled_from([1, 6, 17]), _ids), st.builds(NatBinding, _ips, _ports))


@settings(max_examples=100)
@given(st.lists(_ct, max_size=60), st.lists(_nat, max_size=60), st.lists(_ids, max_size=40), st.booleans())
def test_split_messages_carry_every_key(ct: list[ConnTrackKey], nat: list[tuple[NatKey, NatBinding]],
                                        egress: list[str], with_ingress: bool) -> None:
    message = FlowStateMessage(HOST, ingress_port=PORT_IN if with_ingress else None, egress_ports=tuple(egress),
                               conntrack=tuple(ct), nat=tuple(nat))
    parts = [decode(p) for p in encode(message)]
    assert all(p.ingress_port == message.ingress_port for p in parts)
    groups = {p.egress_ports for p in parts}
    assert [port for g in sorted(groups, key=lambda g: egress.index(g[0]) if g else 0) for port in g] == egress
    for g in groups:
        assert [k for p in parts if p.egress_ports == g for k in p.conntrack] == ct
        assert [k for p in parts if p.egress_ports == g for k in p.nat] == nat


def test_the_frame_is_what_the_original_sends_and_scapy_reads_it() -> None:
    payload = encode(_message())[0]
    data = frame(payload)
    pkt = Ether(data)
    assert (pkt[Ether].src, pkt[Ether].dst) == ("ac:ca:ba:00:15:01", "ac:ca:ba:00:15:02")
    assert (pkt[IP].src, pkt[IP].dst, pkt[IP].tos) == ("169.254.15.1", "169.254.15.2", CONTROL_TOS)
    assert (pkt[UDP].sport, pkt[UDP].dport) == (2925, 2925)
    assert bytes(pkt[UDP].payload) == payload
    assert payload_of(data) == payload


def test_a_damaged_frame_is_refused() -> None:
    data = bytearray(frame(encode(_message())[0]))
    data[-1] ^= 0xFF                                  # the UDP checksum no longer holds
    with pytest.raises(MalformedFlowState):
        payload_of(bytes(data))
    other = bytearray(frame(b"x"))
    struct.pack_into("!H", other, 14 + 20 + 2, 53)    # another UDP port
    with pytest.raises(MalformedFlowState):
        payload_of(bytes(other))
    with pytest.raises(MalformedFlowState):
        payload_of(b"\x00" * 10)
