"""The Linux datapath's byte layouts: keys, masks and actions round-trip, and they match bpf/dp.c.

No root needed: these check `midonet.datapath.linux.layout` alone, against the C source (enums, #defines) and,
when bpftool and the compiled object are there, against the object's BTF (struct sizes and member offsets).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from midonet.datapath.base import (
    Flow,
    FlowKey,
    Output,
    PopVlan,
    PushVlan,
    SetFields,
    SetTunnel,
    Userspace,
)
from midonet.datapath.linux import layout
from midonet.datapath.linux.loader import SOURCE, object_path

C_SOURCE = SOURCE.read_text()


def c_enum(name: str) -> list[str]:
    body = re.search(r"enum " + name + r" \{(.*?)\};", C_SOURCE, re.S)
    assert body is not None, name
    return [item.split("=")[0].strip() for item in body.group(1).split(",") if item.strip()]


def c_define(name: str) -> int:
    found = re.search(r"#define " + name + r" \(?(0x[0-9A-Fa-f]+|\d+)(?:u << (\d+)\))?", C_SOURCE)
    assert found is not None, name
    value = int(found.group(1), 0)
    return value << int(found.group(2)) if found.group(2) else value


def test_constants_match_the_program() -> None:
    assert c_define("MAX_MASKS") == layout.MAX_MASKS
    assert c_define("MAX_ACTIONS") == layout.MAX_ACTIONS
    assert c_define("META_LEN") == layout.META_LEN == layout.META.size
    assert c_define("EXEC_LEN") == layout.EXEC_LEN == layout.EXEC.size
    assert c_define("PROBE_ETH_TYPE") == layout.PROBE_ETH_TYPE
    assert c_enum("mn_counter")[:-1] == ["C_" + c.name for c in layout.Counter]
    assert c_enum("mn_action_kind") == ["A_" + a.name for a in layout.Act]
    assert c_enum("mn_reason") == ["R_" + r.name for r in layout.Reason]
    for name, bit in layout.FIELD_BITS.items():
        if name in layout.KERNEL_FIELDS:
            macro = {"vlan_ids": "VLAN"}.get(name, name.upper())
            assert c_define("F_" + macro) == bit, name


def btf_structs() -> dict[str, tuple[int, dict[str, int]]]:
    """{struct: (size, {member: byte offset})} from the compiled object's BTF."""
    obj = object_path()
    if shutil.which("bpftool") is None or not obj.exists():
        pytest.skip("needs bpftool and the compiled object (make bpf)")
    text = subprocess.run(["bpftool", "btf", "dump", "file", str(obj), "format", "raw"], capture_output=True,
                          text=True, check=True).stdout
    structs: dict[str, tuple[int, dict[str, int]]] = {}
    current: dict[str, int] | None = None
    for line in text.splitlines():
        head = re.match(r"\[\d+\] STRUCT '(\w+)' size=(\d+)", line)
        if head:
            current = {}
            structs[head.group(1)] = (int(head.group(2)), current)
        elif line.startswith("["):
            current = None
        elif current is not None:
            member = re.match(r"\s+'(\w+)' type_id=\d+ bits_offset=(\d+)", line)
            if member:
                current[member.group(1)] = int(member.group(2)) // 8
    return structs


def test_structs_match_the_compiled_object() -> None:
    structs = btf_structs()
    assert structs["mn_key"][0] == layout.KEY_SIZE
    assert structs["mn_flow"][0] == layout.FLOW_SIZE
    assert structs["mn_action"][0] == layout.ACTION.size
    assert structs["mn_port"][0] == layout.PORT.size
    assert structs["mn_config"][0] == layout.CONFIG.size
    offsets = structs["mn_key"][1]
    for field, spans in layout._SPANS.items():
        c_name = {"vlan_ids": "vlan0"}.get(field, field)
        assert offsets[c_name] == spans[0][0], field
    assert structs["mn_flow"][1]["actions"] == layout.FLOW_HEADER.size


FULL_KEY = FlowKey.of({
    "in_port": 3, "eth_src": "02:00:00:00:00:0a", "eth_dst": "02:00:00:00:00:0b", "eth_type": 0x0800,
    "vlan_ids": (7, 4094), "ip_src": "10.0.0.1", "ip_dst": "10.0.0.2", "ip_proto": 6, "ip_tos": 0x10,
    "ip_ttl": 63, "ip_frag": "first", "tp_src": 40000, "tp_dst": 80, "tunnel_id": 0xABCDEF,
})  # fmt: skip
ARP_KEY = FlowKey.of({"in_port": 1, "eth_type": 0x0806, "arp_op": 1, "arp_sha": "02:00:00:00:00:0a",
                      "arp_spa": "10.0.0.1", "arp_tha": "00:00:00:00:00:00", "arp_tpa": "10.0.0.2"})


@pytest.mark.parametrize("key", [FULL_KEY, ARP_KEY, FlowKey.of({"in_port": 1, "ip_src": None, "vlan_ids": ()}),
                                 FlowKey.of({})], ids=["ipv4", "arp", "none-values", "empty"])
def test_key_round_trips(key: FlowKey) -> None:
    raw = layout.pack_key(key, 5)
    mask = layout.pack_mask(key.mask)
    assert layout.key_slot(raw) == 5
    assert layout.mask_fields(mask) == key.mask
    assert layout.unpack_key(raw, key.mask) == key
    masked = bytes(a & b for a, b in zip(raw, mask, strict=True))
    assert masked[4:] == raw[4:], "a flow key is already masked"


@pytest.mark.parametrize("key", [
    FlowKey.of({"icmp_id": 5}), FlowKey.of({"icmp_data": b"x"}), FlowKey.of({"vlan_ids": (1, 2, 3)}),
    FlowKey.of({"ip_src": "not-an-address"}), FlowKey.of({"tp_src": 70000}), FlowKey.of({"eth_dst": None}),
], ids=["icmp_id", "icmp_data", "three-vlans", "bad-ip", "bad-port", "eth_dst-none"])
def test_inexpressible_keys(key: FlowKey) -> None:
    with pytest.raises(layout.Inexpressible):
        layout.check_key(key)


def test_different_masks_give_different_kernel_masks() -> None:
    assert layout.pack_mask(("in_port",)) != layout.pack_mask(("in_port", "eth_dst"))
    assert layout.pack_mask(("ip_src",)) != layout.pack_mask(("ip_dst",))


ACTIONS = (
    SetFields((("eth_src", "02:00:00:00:00:fe"), ("eth_dst", "02:00:00:00:00:ef"))),
    SetFields((("ip_src", "172.16.0.1"), ("ip_dst", "172.16.0.2"), ("ip_ttl", 9), ("ip_tos", 0x10))),
    SetFields((("tp_src", 5555),)),
    SetFields((("tp_dst", 6666),)),
    PushVlan(100), PopVlan(), SetTunnel(0x12345, "10.99.0.1", "10.99.0.2"), Output(2), Output(7), Userspace(),
)  # fmt: skip


def test_actions_round_trip_with_their_grouping() -> None:
    assert layout.unpack_actions(layout.pack_actions(ACTIONS)) == ACTIONS
    flow = layout.unpack_flow(layout.pack_flow(ACTIONS))
    assert flow.actions == ACTIONS and (flow.packets, flow.bytes, flow.last_used_ns) == (0, 0, 0)
    assert len(layout.pack_flow(ACTIONS)) == layout.FLOW_SIZE


@pytest.mark.parametrize("actions", [
    (Userspace(), Output(1)), tuple(Output(i) for i in range(layout.MAX_ACTIONS + 1)), (SetFields(()),),
    (SetTunnel(1 << 24, "10.0.0.1", "10.0.0.2"),), (SetTunnel(1, "10.0.0.1", "fe80::1"),), (PushVlan(5000),),
], ids=["userspace-first", "too-many", "empty-setfields", "wide-vni", "ipv6-tunnel", "bad-vid"])
def test_inexpressible_actions(actions: tuple[Output, ...]) -> None:
    with pytest.raises(layout.Inexpressible):
        layout.pack_actions(actions)


@given(st.lists(st.sampled_from(ACTIONS), max_size=layout.MAX_ACTIONS // 4))
def test_any_expressible_action_list_round_trips(actions: list[Output]) -> None:
    actions = [a for a in actions if not isinstance(a, Userspace)]
    assert list(layout.unpack_actions(layout.pack_actions(actions))) == actions


def test_meta_header() -> None:
    raw = layout.META.pack(0x02, layout.Reason.MISS, 9, 0x80000000 | 0x12345, 0x0A630001, b"\x88\xb5")
    assert layout.unpack_meta(raw + b"frame") == layout.Meta(layout.Reason.MISS, 9, 0x12345, "10.99.0.1")
    plain = layout.META.pack(0x02, layout.Reason.USERSPACE, 4, 0, 0, b"\x88\xb5")
    assert layout.unpack_meta(plain) == layout.Meta(layout.Reason.USERSPACE, 4, None, None)
    assert layout.unpack_meta(b"\x00" * 16) is None and layout.unpack_meta(b"short") is None


def test_exec_trailer() -> None:
    key_bytes = layout.with_slot(layout.pack_key(FULL_KEY, 0), 5)
    trailer = layout.exec_trailer(key_bytes, 0x1_0000_0007, 9)
    assert len(trailer) == layout.EXEC_LEN and trailer.startswith(key_bytes)
    assert layout.exec_seq(b"frame" + trailer) == 7
    assert layout.exec_seq(b"frame" + trailer[:-1] + b"?") is None and layout.exec_seq(b"short") is None


def test_probe_frames() -> None:
    frame = layout.probe_frame(b"token123")
    assert layout.probe_token(frame) == b"token123"
    assert layout.probe_token(frame[:20]) is None


def test_flow_is_a_value() -> None:
    assert Flow(FULL_KEY, ACTIONS) == Flow(layout.unpack_key(layout.pack_key(FULL_KEY, 0), FULL_KEY.mask), ACTIONS)


def test_packed_flows_are_kept_by_their_action_list_a_changed_list_packed_again() -> None:
    actions = (SetFields((("ip_ttl", 63),)), Output(4))
    packed = layout.pack_flow(actions)
    assert layout.pack_flow(actions) is packed                                  # packed once
    equal = (SetFields((("ip_ttl", 63),)), Output(4))
    assert layout.pack_flow(equal) == packed                                   # an equal one: the same bytes
    other = (SetFields((("ip_ttl", 62),)), Output(4))
    assert layout.unpack_flow(layout.pack_flow(other)).actions == other        # a different one: its own
    changing = list(other)
    assert layout.unpack_flow(layout.pack_flow(changing)).actions == other     # any sequence
    changing[0] = SetFields((("ip_ttl", 61),))
    assert layout.unpack_flow(layout.pack_flow(changing)).actions == tuple(changing)   # a list by its value


_KEY_VALUES = {
    "in_port": st.integers(0, 1 << 32), "tunnel_id": st.integers(0, 1 << 24),
    "eth_src": st.sampled_from(["02:00:00:00:00:0a", "ff:ff:ff:ff:ff:ff", "02:00:00:00:00"]),
    "eth_dst": st.sampled_from(["02:00:00:00:00:0b", "00:00:00:00:00:00"]),
    "eth_type": st.sampled_from([0x0800, 0x0806, 0x86DD, 1 << 16]),
    "vlan_ids": st.lists(st.integers(0, 4096), max_size=3).map(tuple),
    "ip_src": st.sampled_from(["10.0.0.1", "255.255.255.255", "not-an-address"]),
    "ip_dst": st.sampled_from(["10.0.0.2", "0.0.0.0"]), "ip_proto": st.integers(0, 256),
    "ip_tos": st.integers(0, 255), "ip_ttl": st.integers(0, 256),
    "ip_frag": st.sampled_from(["none", "first", "later", "bogus"]),
    "tp_src": st.integers(0, 1 << 16), "tp_dst": st.integers(0, 65535), "arp_op": st.integers(0, 2),
    "arp_spa": st.sampled_from(["10.0.0.1"]), "arp_tpa": st.sampled_from(["10.0.0.2"]),
    "arp_sha": st.sampled_from(["02:00:00:00:00:0c"]), "arp_tha": st.sampled_from(["00:00:00:00:00:00"]),
}  # fmt: skip


@st.composite
def kernel_keys(draw: st.DrawFn) -> FlowKey:
    names = draw(st.lists(st.sampled_from(sorted(_KEY_VALUES)), unique=True))
    return FlowKey.of({name: draw(st.none() | _KEY_VALUES[name]) for name in names})


@given(kernel_keys(), st.integers(0, 31))
def test_a_key_packed_by_its_masks_struct_is_the_key_packed_field_by_field(key: FlowKey, slot: int) -> None:
    try:
        expected = layout._pack_key_by_field(key, slot)
    except layout.Inexpressible:
        with pytest.raises(layout.Inexpressible):
            layout.pack_key(key, slot)
        return
    assert layout.pack_key(key, slot) == expected
