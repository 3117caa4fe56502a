"""What a simulation is told about the host it runs for: the inputs that are neither topology, state nor packet.

Role: the agent knows facts about its own host that change what the virtual network answers; the simulation never
looks them up (it does no I/O), the caller hands them in as a `SimulationConfig`. Tests and `midonet trace` use
`DEFAULT_CONFIG` or their own.

    underlay_mtu    the smallest MTU of the host's tunnel interfaces (the original's `DatapathController.minMtu`
                    comes from it): a DHCP offer never advertises more than `underlay_mtu - TUNNEL_OVERHEAD`,
                    so a VM's frames still fit once encapsulated (spec 3.11: 1500 -> 1450)
    dhcp_mtu        the interface MTU offered on a DHCP subnet that sets none (`agent.dhcp_mtu`, 1500)

May import: nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

TUNNEL_OVERHEAD: Final = 50
"""Bytes a VXLAN tunnel adds to an inner frame (outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8)."""


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    underlay_mtu: int = 1500
    dhcp_mtu: int = 1500

    def __post_init__(self) -> None:
        if self.underlay_mtu <= TUNNEL_OVERHEAD:
            raise ValueError(f"underlay MTU {self.underlay_mtu} leaves no room for the {TUNNEL_OVERHEAD}-byte tunnel")
        if self.dhcp_mtu < 68:
            raise ValueError(f"DHCP MTU {self.dhcp_mtu} is below the IPv4 minimum of 68")

    @property
    def overlay_mtu(self) -> int:
        """The largest frame payload a VM may send so that the tunnelled packet fits the underlay."""
        return self.underlay_mtu - TUNNEL_OVERHEAD


DEFAULT_CONFIG: Final = SimulationConfig()
