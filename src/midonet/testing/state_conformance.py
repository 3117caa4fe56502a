"""The state-table conformance suite: every implementation of the `midonet.state` protocols must pass every check.

Role: the contract of `MacTable`, `Ip4MacTable`, `ArpCache`, `ConnTrack`, `NatTable` and `NatLeaser` as
executable checks (STYLE habit 6), written against the protocols only. A backend shows up with a factory
``make(clock) -> StateTables`` whose tables age by the `FakeClock` it is handed; the in-memory backend's factory is
`midonet.state.tables.in_memory`, the agent's store-backed tables will run the same checks
(tests/contract/test_state_contract.py).

    check(make) -> None     raises AssertionError when the implementation is wrong

Only what the protocols promise is checked: lookups, learning, MAC moves and reference counts (a forgotten MAC
stays until it expires), ARP staleness and expiry as seen through `lookup`, connection keys, NAT keys (kept,
referenced, deleted; return keys) and SNAT ports (unique per destination, shared across destinations). How an
implementation removes expired entries (a sweep, a store TTL) is its own business.

May import: `midonet.state`, `midonet.topology`, `midonet.testing.clock`.
"""

from __future__ import annotations

from collections.abc import Callable

from midonet.state.arp_cache import ARP_EXPIRATION, ARP_STALE, ArpEntry
from midonet.state.conntrack import ConnTrackKey
from midonet.state.nat import NatBinding, NatBlockNeeded, NatKey, NatKeyType, NatPortsExhausted
from midonet.state.tables import StateTables
from midonet.testing.clock import FakeClock
from midonet.topology.chains import NatTarget
from midonet.topology.ids import BridgeId, PortId, RouterId

Make = Callable[[FakeClock], StateTables]
Check = Callable[[Make], None]

BRIDGE = BridgeId("00000001-0000-4000-8000-00000000b001")
OTHER_BRIDGE = BridgeId("00000001-0000-4000-8000-00000000b002")
PORT_1, PORT_2 = PortId("00000002-0000-4000-8000-00000000a001"), PortId("00000002-0000-4000-8000-00000000a002")
ROUTER = RouterId("00000003-0000-4000-8000-00000000c001")
MAC_1, MAC_2 = "02:00:00:00:00:01", "02:00:00:00:00:02"


def check_mac_lookup_is_per_bridge_and_vlan(make: Make) -> None:
    t = make(FakeClock())
    assert t.mac_table.lookup(BRIDGE, 0, MAC_1) is None
    t.mac_table.learn(BRIDGE, 0, MAC_1, PORT_1)
    t.mac_table.learn(BRIDGE, 5, MAC_1, PORT_2)
    assert t.mac_table.lookup(BRIDGE, 0, MAC_1) == PORT_1
    assert t.mac_table.lookup(BRIDGE, 5, MAC_1) == PORT_2
    assert t.mac_table.lookup(OTHER_BRIDGE, 0, MAC_1) is None
    assert t.mac_table.lookup(BRIDGE, 0, MAC_2) is None


def check_mac_moves_to_the_last_port_learned(make: Make) -> None:
    t = make(FakeClock())
    t.mac_table.learn(BRIDGE, 0, MAC_1, PORT_1)
    t.mac_table.learn(BRIDGE, 0, MAC_1, PORT_2)
    assert t.mac_table.lookup(BRIDGE, 0, MAC_1) == PORT_2


def check_forgotten_mac_stays_a_while(make: Make) -> None:
    clock = FakeClock()
    t = make(clock)
    t.mac_table.learn(BRIDGE, 0, MAC_1, PORT_1)
    t.mac_table.forget(BRIDGE, 0, MAC_1, PORT_1)
    clock.advance(1)
    assert t.mac_table.lookup(BRIDGE, 0, MAC_1) == PORT_1


def check_forgetting_an_unknown_mac_is_harmless(make: Make) -> None:
    t = make(FakeClock())
    t.mac_table.forget(BRIDGE, 0, MAC_2, PORT_1)
    assert t.mac_table.lookup(BRIDGE, 0, MAC_2) is None


def check_ip4_mac_table(make: Make) -> None:
    t = make(FakeClock())
    assert t.ip4_mac.lookup(BRIDGE, "10.0.0.1") is None
    t.ip4_mac.put(BRIDGE, "10.0.0.1", MAC_1)
    t.ip4_mac.put(BRIDGE, "10.0.0.1", MAC_2)
    assert t.ip4_mac.lookup(BRIDGE, "10.0.0.1") == MAC_2
    assert t.ip4_mac.lookup(OTHER_BRIDGE, "10.0.0.1") is None


def check_arp_entry_fresh_then_stale_then_gone(make: Make) -> None:
    clock = FakeClock()
    t = make(clock)
    assert t.arp_cache.lookup(ROUTER, "10.0.0.1") is None
    t.arp_cache.learn(ROUTER, "10.0.0.1", MAC_1)
    assert t.arp_cache.lookup(ROUTER, "10.0.0.1") == ArpEntry(MAC_1, stale=False)
    clock.advance(ARP_STALE)
    assert t.arp_cache.lookup(ROUTER, "10.0.0.1") == ArpEntry(MAC_1, stale=True)
    clock.advance(ARP_EXPIRATION - ARP_STALE)
    assert t.arp_cache.lookup(ROUTER, "10.0.0.1") is None


def check_arp_relearning_refreshes(make: Make) -> None:
    clock = FakeClock()
    t = make(clock)
    t.arp_cache.learn(ROUTER, "10.0.0.1", MAC_1)
    clock.advance(ARP_STALE + 1)
    t.arp_cache.learn(ROUTER, "10.0.0.1", MAC_2)
    assert t.arp_cache.lookup(ROUTER, "10.0.0.1") == ArpEntry(MAC_2, stale=False)


def check_conntrack_keys(make: Make) -> None:
    t = make(FakeClock())
    key = ConnTrackKey("10.0.0.1", 1000, "10.0.0.2", 80, 6, BRIDGE)
    assert not t.conntrack.contains(key)
    t.conntrack.track(key)
    assert t.conntrack.contains(key)
    assert not t.conntrack.contains(key.reply(BRIDGE))
    t.conntrack.release(key)
    assert t.conntrack.contains(key)              # released keys idle out later, not at once


def check_nat_binding_kept_and_referenced(make: Make) -> None:
    t = make(FakeClock())
    key = NatKey(NatKeyType.FWD_DNAT, "10.0.0.1", 1000, "10.0.0.100", 80, 6, ROUTER)
    assert t.nat.get(key) is None
    t.nat.bind(key, NatBinding("10.0.0.2", 8080))
    t.nat.bind(key, NatBinding("10.0.0.3", 8080))     # an existing key keeps its binding
    assert t.nat.get(key) == NatBinding("10.0.0.2", 8080)
    t.nat.unref(key)
    t.nat.unref(key)
    assert t.nat.get(key) == NatBinding("10.0.0.2", 8080)     # unreferenced keys idle out later, not at once
    t.nat.delete(key)
    assert t.nat.get(key) is None
    t.nat.unref(key)                                        # harmless on a missing key


def check_nat_return_key(make: Make) -> None:
    del make
    fwd = NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 5000, "10.0.2.1", 53, 17, ROUTER)
    binding = NatBinding("192.0.2.1", 1024)
    assert fwd.return_key(binding) == NatKey(NatKeyType.REV_SNAT, "10.0.2.1", 53, "192.0.2.1", 1024, 17, ROUTER)
    assert fwd.return_binding() == NatBinding("10.0.1.1", 5000)
    dnat = NatKey(NatKeyType.FWD_STICKY_DNAT, "10.0.1.1", 0, "10.0.2.100", 80, 6, ROUTER)
    assert dnat.return_key(NatBinding("10.0.2.1", 8080)) == NatKey(
        NatKeyType.REV_STICKY_DNAT, "10.0.2.1", 8080, "10.0.1.1", 0, 6, ROUTER)
    assert dnat.return_binding() == NatBinding("10.0.2.100", 80)


def check_snat_ports_unique_per_destination(make: Make) -> None:
    t = make(FakeClock())
    targets = (NatTarget(nw_start="192.0.2.1", nw_end="192.0.2.1", tp_start=1024, tp_end=1087),)
    try:
        first = t.nat_leaser.allocate(ROUTER, targets, "10.0.2.1", 53)
    except NatBlockNeeded:
        return                      # a backend that only leases asynchronously: checked by the agent's tests
    second = t.nat_leaser.allocate(ROUTER, targets, "10.0.2.1", 53)
    other = t.nat_leaser.allocate(ROUTER, targets, "10.0.2.2", 53)
    assert first.ip == second.ip == "192.0.2.1"
    assert first.port != second.port
    assert 1024 <= min(first.port, second.port, other.port) <= max(first.port, second.port, other.port) <= 1087
    t.nat_leaser.release(ROUTER, "10.0.2.1", 53, first)
    again = {t.nat_leaser.allocate(ROUTER, targets, "10.0.2.1", 53).port for _ in range(63)}
    assert first.port in again and second.port not in again
    # all 64 ports are in use towards 10.0.2.1:53, yet each is still free towards another destination
    assert 1024 <= t.nat_leaser.allocate(ROUTER, targets, "10.0.2.2", 53).port <= 1087
    try:
        t.nat_leaser.allocate(ROUTER, targets, "10.0.2.1", 53)
        raise AssertionError("a 65th port towards one destination from a 64-port range")
    except (NatBlockNeeded, NatPortsExhausted):
        pass


CHECKS: tuple[Check, ...] = (
    check_mac_lookup_is_per_bridge_and_vlan,
    check_mac_moves_to_the_last_port_learned,
    check_forgotten_mac_stays_a_while,
    check_forgetting_an_unknown_mac_is_harmless,
    check_ip4_mac_table,
    check_arp_entry_fresh_then_stale_then_gone,
    check_arp_relearning_refreshes,
    check_conntrack_keys,
    check_nat_binding_kept_and_referenced,
    check_nat_return_key,
    check_snat_ports_unique_per_destination,
)
