"""The in-memory underlay: real VXLAN bytes (checked with scapy), routing by outer address, counted drops."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from midonet.datapath.base import (
    OVERLAY_UDP_PORT,
    DatapathError,
    DropReason,
    Flow,
    FlowKey,
    Output,
    PortKind,
    SetTunnel,
)
from midonet.datapath.memory import MemoryDatapath, MemoryHost, MemoryUnderlay, UnderlayDrop, underlay_mac
from midonet.packets import vxlan
from midonet.testing.datapath_conformance import udp_frame
from tests.unit.datapath.conftest import IP1, IP2, World


def tunnel_to(world: World, vni: int, dst: str = IP2) -> None:
    world.dp1.install(Flow(FlowKey.of({"in_port": world.vm1.number}),
                           (SetTunnel(vni, IP1, dst), Output(world.vx1.number))))


def test_the_underlay_carries_real_vxlan_frames(world: World) -> None:
    seen: list[bytes] = []
    world.underlay.observe(seen.append)
    tunnel_to(world, 0xABCDE)
    inner = udp_frame()
    world.h1.interfaces.inject("vm1", inner)
    (outer,) = seen
    pkt = Ether(outer)
    assert (pkt.src, pkt.dst) == (underlay_mac(IP1), underlay_mac(IP2))
    ip = pkt[IP]
    assert (ip.src, ip.dst, ip.proto, ip.ttl) == (IP1, IP2, 17, 64)
    rebuilt = ip.copy()
    del rebuilt.chksum, rebuilt[UDP].chksum
    assert IP(bytes(rebuilt)).chksum == ip.chksum, "outer IPv4 checksum"
    assert "DF" in str(ip.flags)
    assert pkt[UDP].dport == OVERLAY_UDP_PORT == 6677 and pkt[UDP].sport >= 49152
    header = VXLAN(bytes(pkt[UDP].payload))
    assert header.vni == 0xABCDE and header.flags & 0x08
    assert bytes(header.payload) == inner
    assert len(outer) == len(inner) + vxlan.OVERHEAD


def test_delivery_reaches_the_host_at_the_outer_destination(world: World) -> None:
    tunnel_to(world, 77)
    world.h1.interfaces.inject("vm1", udp_frame())
    (upcall,) = world.upcalls2
    assert (upcall.port, upcall.tunnel_id, upcall.tunnel_src, upcall.packet) == (
        world.vx2.number, 77, IP1, udp_frame())
    assert world.underlay.statistics().delivered == 1


def test_a_frame_to_an_unknown_address_is_dropped_and_counted(world: World) -> None:
    tunnel_to(world, 77, dst="10.0.0.99")
    world.h1.interfaces.inject("vm1", udp_frame())
    stats = world.underlay.statistics()
    assert (stats.delivered, stats.dropped(UnderlayDrop.UNKNOWN_DESTINATION)) == (0, 1)
    assert world.upcalls2 == []


def test_a_host_without_a_tunnel_port_has_no_listener(world: World) -> None:
    world.dp2.remove_port(world.vx2.number)
    tunnel_to(world, 77)
    world.h1.interfaces.inject("vm1", udp_frame())
    assert world.underlay.statistics().dropped(UnderlayDrop.NO_LISTENER) == 1


def test_frames_that_are_not_udp_over_ipv4_are_dropped() -> None:
    underlay = MemoryUnderlay()
    underlay.deliver(b"\x00" * 20)
    not_udp = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.2", dst="10.0.0.1", proto=6)
    underlay.deliver(bytes(not_udp / (b"x" * 30)))
    assert underlay.statistics().dropped(UnderlayDrop.MALFORMED) == 2


def test_a_wrong_vxlan_header_is_a_bad_encapsulation_on_the_receiver(world: World) -> None:
    good = vxlan.encapsulate(udp_frame(), vni=5, eth_src=underlay_mac(IP1), eth_dst=underlay_mac(IP2),
                             ip_src=IP1, ip_dst=IP2, dst_port=OVERLAY_UDP_PORT)
    bad = bytearray(good)
    bad[14 + 20 + 8] = 0                               # clear the I flag of the VXLAN header
    world.h1.send_underlay(bytes(bad))
    assert world.dp2.statistics().dropped(DropReason.BAD_ENCAPSULATION) == 1
    world.h1.send_underlay(good)
    assert [u.tunnel_id for u in world.upcalls2] == [5]


def test_addresses_are_unique_and_hosts_leave() -> None:
    underlay = MemoryUnderlay()
    host = MemoryHost("a", "10.1.1.1", underlay)
    with pytest.raises(DatapathError):
        MemoryHost("b", "10.1.1.1", underlay)
    assert underlay.addresses() == ["10.1.1.1"] and underlay.host("10.1.1.1") is host
    host.close()
    assert underlay.addresses() == []
    with pytest.raises(ValueError):
        MemoryHost("c", "not-an-ip", underlay)


def test_the_overlay_port_can_be_bound_once_per_host(world: World) -> None:
    other = MemoryDatapath("other", world.h1)
    with pytest.raises(DatapathError, match="already bound"):
        other.add_port("tnvxlan-overlay", PortKind.VXLAN)
