"""Object ids and tunnel keys.

Ids are canonical lower-case UUID strings (MidoNet's ids are UUIDs). `NewType`s keep a `BridgeId` from
being passed where a `PortId` is wanted; at run time they are plain `str`.

Tunnel keys (spec 1.5): the cluster gives every port and bridge a key of type 0 (a 24-bit VXLAN VNI space,
values 1..0x0FFFFF); agents generate keys of type 1 (`0x1` in bits 20-22) for local bindings. The store hands out
the sequence numbers (it alone can make them unique across API servers); this module turns them into keys.
"""

from __future__ import annotations

import uuid
from typing import NewType

BridgeId = NewType("BridgeId", str)
RouterId = NewType("RouterId", str)
PortId = NewType("PortId", str)
RouteId = NewType("RouteId", str)
ChainId = NewType("ChainId", str)
RuleId = NewType("RuleId", str)
HostId = NewType("HostId", str)
TunnelZoneId = NewType("TunnelZoneId", str)
PortGroupId = NewType("PortGroupId", str)
IPAddrGroupId = NewType("IPAddrGroupId", str)

TUNNEL_KEY_BITS = 20
MAX_CLUSTER_TUNNEL_KEY = (1 << TUNNEL_KEY_BITS) - 1
LOCAL_PORT_KEY_TYPE = 0x1 << TUNNEL_KEY_BITS


def new_id() -> str:
    """A fresh random id."""
    return str(uuid.uuid4())


def canonical_id(value: str) -> str:
    """`value` as a canonical UUID string; raises ValueError if it is not a UUID."""
    return str(uuid.UUID(str(value)))


def is_id(value: object) -> bool:
    try:
        canonical_id(str(value))
    except ValueError:
        return False
    return True


def cluster_tunnel_key(sequence: int) -> int:
    """The type-0 tunnel key for the store's `sequence`-th allocation (1-based), wrapping in 20 bits."""
    if sequence < 1:
        raise ValueError("tunnel key sequence starts at 1")
    return (sequence - 1) % MAX_CLUSTER_TUNNEL_KEY + 1


def local_tunnel_key(random_bits: int) -> int:
    """A type-1 (agent-generated) tunnel key from 20 random bits."""
    return LOCAL_PORT_KEY_TYPE | (random_bits & MAX_CLUSTER_TUNNEL_KEY)
