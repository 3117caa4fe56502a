"""The `Datapath` contract the agent drives (spec 1.7, 3.12; ARCHITECTURE.md rule 6).

A datapath has numbered ports and a flow table. A packet arriving on a port is looked up in the table; a
packet matching an installed flow has the flow's actions applied without the agent hearing of it (the fast
path). A packet matching no flow is handed to the agent as an `Upcall` (a "miss"); the agent simulates it,
installs a flow and `execute`s the packet with the same actions.

Flows are *masked* matches (megaflows): a `FlowKey` names the fields it matches exactly (the fields the
simulation read, spec 3.1) and their values; every other field is wildcarded. Field names are
`midonet.packets.flowmatch.FIELDS` plus `tunnel_id` (the VNI of a packet that arrived on a tunnel port). Two
installed flows never overlap in a way the agent relies on: the agent installs at most one flow per key.

Actions, applied in order to the packet (a flow with no actions drops):

    SetFields(changes)    rewrite header fields: eth_src, eth_dst, ip_src, ip_dst, ip_ttl, ip_tos, tp_src,
                          tp_dst (checksums fixed up); changes are (field, value) pairs
    PushVlan(vid)         push an 802.1Q tag
    PopVlan()             pop the outermost tag
    SetTunnel(key, src, dst)
                          set the tunnel metadata for a following Output to a VXLAN port: VNI `key`,
                          underlay source and destination IPv4 addresses
    Output(port)          send a copy of the packet, as it is now, out of datapath port `port`
    Userspace()           hand the packet to the agent (a flow the datapath cannot express, spec 1.7)

Stats: each flow counts packets and bytes and remembers when it was last used (`time.monotonic()`), which
the agent reads to expire idle flows. The datapath as a whole counts hits, misses, upcalls and drops by
`DropReason` (ARCHITECTURE.md rule 7: every drop has a reason), read as one frozen `DatapathStatistics`.

Tunnels: the VXLAN port is the overlay port between agents, UDP `OVERLAY_UDP_PORT` (6677, spec 1.6 and 5.1);
a packet arriving on it is matched with `tunnel_id` = its VNI, and its upcall carries the VNI and the outer
source address.

Errors: `DatapathError` (a port that does not exist, a name already in use, a backend failure).

May import: `midonet.packets`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from midonet.packets.flowmatch import FIELDS, FieldValue, FlowMatch

TUNNEL_FIELDS: tuple[str, ...] = ("tunnel_id",)
KEY_FIELDS: tuple[str, ...] = FIELDS + TUNNEL_FIELDS
SETTABLE_FIELDS: frozenset[str] = frozenset(
    {"eth_src", "eth_dst", "ip_src", "ip_dst", "ip_ttl", "ip_tos", "tp_src", "tp_dst"})
_ORDER = {name: i for i, name in enumerate(KEY_FIELDS)}
OVERLAY_UDP_PORT = 6677   # tnvxlan-overlay (spec 1.6)


class DatapathError(Exception):
    """A datapath operation failed (unknown port, name in use, backend failure)."""


class PortKind(enum.StrEnum):
    NETDEV = "netdev"   # a VM's or container's interface (tap, veth)
    VXLAN = "vxlan"     # the overlay tunnel port (collect-metadata VXLAN)


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    """One network interface of a host, as the original's `HostState` interface entry (state.proto): what a
    datapath's interface source reports (netlink for the Linux datapath, the fake interfaces for the memory one)
    and the agent publishes and binds ports to."""

    name: str
    mac: str | None = None
    mtu: int = 1500
    up: bool = True
    has_link: bool = True
    addresses: tuple[str, ...] = ()
    type: str = "Virtual"            # Physical | Virtual | Tunnel | Unknown
    endpoint: str = "UNKNOWN"        # DATAPATH | PHYSICAL | VM | GRE | CAPWAP | LOCALHOST | TUNTAP | UNKNOWN
    port_type: str | None = None     # NetDev | Internal | Gre | VXLan | Gre64 | Lisp

    @property
    def usable(self) -> bool:
        """Whether a port bound to it may be activated: the interface is up and has a link."""
        return self.up and self.has_link


@dataclass(frozen=True, slots=True)
class DpPort:
    number: int
    name: str
    kind: PortKind


_ORDERED: dict[int, tuple[Iterable[str], tuple[str, ...]]] = {}   # a set of fields (by identity): its names in order


@dataclass(frozen=True, slots=True)
class FlowKey:
    """A masked match: exact values for `fields` (in `KEY_FIELDS` order), every other field wildcarded.

    Its hash is computed once: a key is hashed about ten times a new flow (the agent's table, its tag index, the
    datapath's table) and hashing a dozen (name, value) pairs costs about 0.8 us. Pickling rebuilds it (string
    hashes differ between processes)."""

    fields: tuple[tuple[str, FieldValue], ...]
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash(self.fields))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[FlowKey], tuple[tuple[tuple[str, FieldValue], ...]]]:
        return (FlowKey, (self.fields,))   # the hash is computed again where the key is rebuilt

    @classmethod
    def of(cls, values: dict[str, FieldValue]) -> FlowKey:
        unknown = set(values) - set(KEY_FIELDS)
        if unknown:
            raise ValueError(f"not datapath match fields: {sorted(unknown)}")
        return cls(tuple(sorted(values.items(), key=lambda kv: _ORDER[kv[0]])))

    @classmethod
    def from_match(cls, match: FlowMatch, fields: Iterable[str], tunnel_id: int | None = None) -> FlowKey:
        """The key matching `match` on `fields` (use `match.mask_fields()`), and on the tunnel id if given.

        Once per new flow: the names are put in order by their position (once for each set of fields, which
        `FlowMatch.mask_fields` gives again for the same mask), the values read in one call (`FlowMatch.key`),
        no dictionary in between."""
        found = _ORDERED.get(id(fields))
        if found is not None and found[0] is fields:
            names = found[1]
        else:
            names = tuple(sorted((f for f in fields if f in _ORDER), key=_ORDER.__getitem__))
            if isinstance(fields, (frozenset, tuple)):   # immutable: known again by its identity
                if len(_ORDERED) >= 1 << 12:
                    _ORDERED.clear()
                _ORDERED[id(fields)] = (fields, names)   # the set kept alive with its id
        pairs = tuple(zip(names, match.key(names), strict=True))
        if tunnel_id is not None:
            pairs += (("tunnel_id", tunnel_id),)   # the last of KEY_FIELDS
        return cls(pairs)

    @property
    def mask(self) -> tuple[str, ...]:
        return tuple([name for name, _ in self.fields])

    def get(self, field: str) -> FieldValue:
        return dict(self.fields).get(field)


@dataclass(frozen=True, slots=True)
class Output:
    port: int


@dataclass(frozen=True, slots=True)
class SetFields:
    changes: tuple[tuple[str, FieldValue], ...]

    def __post_init__(self) -> None:
        bad = {name for name, _ in self.changes} - SETTABLE_FIELDS
        if bad:
            raise ValueError(f"a datapath cannot set {sorted(bad)}")


@dataclass(frozen=True, slots=True)
class PushVlan:
    vid: int


@dataclass(frozen=True, slots=True)
class PopVlan:
    pass


@dataclass(frozen=True, slots=True)
class SetTunnel:
    key: int
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class Userspace:
    pass


Action = Output | SetFields | PushVlan | PopVlan | SetTunnel | Userspace


@dataclass(frozen=True, slots=True)
class Flow:
    key: FlowKey
    actions: tuple[Action, ...]   # empty: drop


@dataclass(frozen=True, slots=True)
class FlowStats:
    packets: int = 0
    bytes: int = 0
    last_used: float | None = None   # time.monotonic() of the last packet, None if never used


@dataclass(frozen=True, slots=True)
class Upcall:
    """A packet that matched no flow (or hit a Userspace action), handed to the agent."""

    port: int
    packet: bytes
    tunnel_id: int | None = None
    tunnel_src: str | None = None


class DropReason(enum.StrEnum):
    """Why a datapath dropped a packet (a flow with no actions is not a drop: the flow's stats count it)."""

    MALFORMED = "malformed"                  # the frame could not be parsed
    NO_HANDLER = "no_upcall_handler"         # a miss or Userspace action with no handler set
    HANDLER_FAILED = "upcall_handler_failed"  # the upcall handler raised
    NO_PORT = "no_such_port"                 # Output to a port that does not exist (any more)
    LINK_DOWN = "link_down"                  # Output to an interface that is down
    TOO_BIG = "too_big"                      # Output of a frame larger than the interface's MTU
    NO_TUNNEL = "no_tunnel_metadata"         # Output to a VXLAN port without a SetTunnel before it
    BAD_ENCAPSULATION = "bad_encapsulation"  # a tunnel frame that is not VXLAN to the overlay port
    ACTION_FAILED = "action_failed"          # an action that does not apply to the packet (PopVlan untagged ...)
    UPCALL_QUEUE_FULL = "upcall_queue_full"  # a miss that found no room on its way up (the agent far behind)


@dataclass(frozen=True, slots=True)
class DatapathStatistics:
    """Counters since the datapath was created: hits + misses = packets looked up."""

    hits: int = 0       # packets that matched an installed flow
    misses: int = 0     # packets that matched none
    upcalls: int = 0    # upcalls handed to the handler (misses and Userspace actions)
    drops: tuple[tuple[DropReason, int], ...] = ()   # by reason, only reasons that happened

    @classmethod
    def of(cls, hits: int, misses: int, upcalls: int, drops: Mapping[DropReason, int]) -> DatapathStatistics:
        return cls(hits, misses, upcalls, tuple(sorted((r, n) for r, n in drops.items() if n)))

    def dropped(self, reason: DropReason | None = None) -> int:
        """Packets dropped for `reason`, or for any reason."""
        return sum(n for r, n in self.drops if reason is None or r == reason)


class Datapath(Protocol):
    """See the module docstring."""

    @property
    def name(self) -> str: ...

    def add_port(self, name: str, kind: PortKind = PortKind.NETDEV) -> DpPort:
        """Attach the interface `name` (NETDEV) or create the tunnel port (VXLAN); DatapathError if in use."""

    def remove_port(self, number: int) -> None:
        """Detach a port; flows that output to it stay (they drop those copies) until the agent removes them."""

    def ports(self) -> list[DpPort]: ...

    def install(self, flow: Flow) -> None:
        """Install `flow`, replacing an installed flow with the same key (its stats restart)."""

    def remove(self, key: FlowKey) -> FlowStats | None:
        """Remove the flow with this key; its final stats, or None if there was none."""

    def flows(self) -> list[tuple[Flow, FlowStats]]: ...

    def flow_stats(self, keys: Sequence[FlowKey]) -> dict[FlowKey, FlowStats]:
        """The stats of the installed flows among `keys` (a key not installed is left out): what the agent's idle
        expiry reads, for the few flows due a look, instead of every flow's."""

    def execute(self, packet: bytes, actions: Sequence[Action], in_port: int | None = None) -> None:
        """Apply `actions` to `packet` (as if it had arrived on `in_port`), without a flow lookup."""

    def on_upcall(self, handler: Callable[[Upcall], None]) -> None:
        """Deliver misses to `handler` (one handler; replacing it is allowed)."""

    def statistics(self) -> DatapathStatistics: ...

    def close(self) -> None: ...
