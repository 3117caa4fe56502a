"""The REST form of a `Condition` (spec 2.1), shared by rules, mirrors and trace requests.

The DTO flattens the condition into camelCase members (`inPorts`, `invInPorts`, `nwSrcAddress` +
`nwSrcLength`, `tpDst: {start, end}`, `dlSrcMask: "ff:ff:ff:00:00:00"` ...). `condition_in` turns such a
DTO into the model's field data (validated later by the record), `condition_out` the other way.

May import: `midonet.topology`, `api.errors`, `api.devices` (CIDR helpers).
"""

from __future__ import annotations

from typing import Any

from midonet.api.devices import join_cidr, split_cidr
from midonet.api.errors import bad_request
from midonet.topology.chains import Condition
from midonet.topology.record import to_dict

# (dto member, model field): copied as they are.
PLAIN: tuple[tuple[str, str], ...] = (
    ("condInvert", "conjunction_inv"), ("matchForwardFlow", "match_forward_flow"),
    ("matchReturnFlow", "match_return_flow"), ("inPorts", "in_port_ids"), ("invInPorts", "in_port_inv"),
    ("outPorts", "out_port_ids"), ("invOutPorts", "out_port_inv"), ("portGroup", "port_group_id"),
    ("invPortGroup", "inv_port_group"), ("inPortGroup", "in_port_group_id"),
    ("invInPortGroup", "inv_in_port_group"), ("outPortGroup", "out_port_group_id"),
    ("invOutPortGroup", "inv_out_port_group"), ("ipAddrGroupSrc", "ip_addr_group_id_src"),
    ("invIpAddrGroupSrc", "inv_ip_addr_group_id_src"), ("ipAddrGroupDst", "ip_addr_group_id_dst"),
    ("invIpAddrGroupDst", "inv_ip_addr_group_id_dst"), ("dlType", "dl_type"), ("invDlType", "inv_dl_type"),
    ("dlSrc", "dl_src"), ("invDlSrc", "inv_dl_src"), ("dlDst", "dl_dst"), ("invDlDst", "inv_dl_dst"),
    ("nwTos", "nw_tos"), ("invNwTos", "nw_tos_inv"), ("nwProto", "nw_proto"), ("invNwProto", "nw_proto_inv"),
    ("invNwSrc", "nw_src_inv"), ("invNwDst", "nw_dst_inv"), ("tpSrc", "tp_src"), ("invTpSrc", "tp_src_inv"),
    ("tpDst", "tp_dst"), ("invTpDst", "tp_dst_inv"), ("traversedDevice", "traversed_device"),
    ("invTraversedDevice", "traversed_device_inv"), ("fragmentPolicy", "fragment_policy"),
    ("noVlan", "no_vlan"), ("vlan", "vlan"), ("invIcmpDataSrcIp", "icmp_data_src_ip_inv"),
    ("invIcmpDataDstIp", "icmp_data_dst_ip_inv"), ("matchNwDstRewritten", "match_nw_dst_rewritten"),
)
# (address member, length member, model field): CIDRs split in two.
CIDRS: tuple[tuple[str, str, str], ...] = (
    ("nwSrcAddress", "nwSrcLength", "nw_src_ip"), ("nwDstAddress", "nwDstLength", "nw_dst_ip"),
    ("icmpDataSrcIpAddress", "icmpDataSrcIpLength", "icmp_data_src_ip"),
    ("icmpDataDstIpAddress", "icmpDataDstIpLength", "icmp_data_dst_ip"),
)
MASKS: tuple[tuple[str, str], ...] = (("dlSrcMask", "dl_src_mask"), ("dlDstMask", "dl_dst_mask"))

RENAME: dict[str, str] = ({model: dto for dto, model in PLAIN} | {model: a for a, _, model in CIDRS}
                          | {model: dto for dto, model in MASKS})


def _mask_in(value: Any, prop: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            parts = value.replace("-", ":").split(":")
            if len(parts) != 6:
                raise ValueError
            return int("".join(f"{int(p, 16):02x}" for p in parts), 16)
        except ValueError:
            pass
    raise bad_request(f"is not a MAC mask (xx:xx:xx:xx:xx:xx): {value!r}", prop)


def _mask_out(value: int | None) -> str | None:
    if value is None:
        return None
    raw = f"{value & 0xFFFFFFFFFFFF:012x}"
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))


def condition_in(dto: dict[str, Any], old: Condition | None, default_fragment_policy: str = "any") -> dict[str, Any]:
    """Model field data of the condition described by `dto` (merged over `old`)."""
    data: dict[str, Any] = to_dict(old) if old is not None else {}
    for name, attr in PLAIN:
        if name in dto:
            data[attr] = dto[name]
    for addr, length, attr in CIDRS:
        if addr in dto or length in dto:
            data[attr] = join_cidr(dto, addr, length, None)
    for name, attr in MASKS:
        if name in dto:
            data[attr] = _mask_in(dto[name], name)
    if data.get("fragment_policy") is None:
        data["fragment_policy"] = default_fragment_policy
    elif isinstance(data["fragment_policy"], str):
        data["fragment_policy"] = data["fragment_policy"].lower()
    for flag in ("in_port_ids", "out_port_ids"):
        if data.get(flag) is None:
            data[flag] = []
    return data


def condition_out(cond: Condition) -> dict[str, Any]:
    """The DTO members of `cond`."""
    raw = to_dict(cond)
    dto: dict[str, Any] = {name: raw[attr] for name, attr in PLAIN}
    for addr, length, attr in CIDRS:
        dto[addr], dto[length] = split_cidr(raw[attr])
    for name, attr in MASKS:
        dto[name] = _mask_out(raw[attr])
    return dto
