"""Wire formats: parse and build the packets MidoNet simulates, and `FlowMatch`, the packet as the simulation sees it.

Role: the bottom layer (ARCHITECTURE.md "Package layout"). Pure: no I/O, no clock, no randomness.
May import: nothing of ours outside this package (an import-linter contract holds it), standard library only.

Modules, one concept each:
    errors     -- `MalformedPacket`, the one error every parser raises for bad input
    checksum   -- the internet checksum, pseudo-header sums, incremental update (RFC 1071, 1624)
    ethernet   -- Ethernet II, 802.1Q tags (stacked), MAC addresses
    arp        -- ARP for IPv4 over Ethernet, gratuitous ARP (RFC 826, 5227)
    ipv4       -- IPv4 header, options, fragmentation and reassembly, addresses (RFC 791)
    icmp       -- echo and errors with their quoted datagram, its parsing and NAT rewriting (RFC 792, 1191)
    tcp        -- TCP header, flags, options, checksum (RFC 9293)
    udp        -- UDP header and checksum, 0 = none (RFC 768)
    dhcp       -- BOOTP/DHCP messages and the options MidoNet serves (RFC 2131, 2132, 3442)
    vxlan      -- the VXLAN header and whole-frame encapsulation (RFC 7348)
    flowmatch  -- `FlowMatch` (fields + seen / modified record) and `parse_frame`, the fast path
    frame      -- whole frames: `build` from a FlowMatch-like spec, `apply` rewrites with checksum fix-up

Every parser raises `MalformedPacket` (a `ValueError`) and nothing else for malformed input; the tests fuzz that
with hypothesis and cross-check every format against scapy, both ways.
"""

from midonet.packets.errors import MalformedPacket
from midonet.packets.flowmatch import FIELDS, FlowMatch, parse_frame

__all__ = ["FIELDS", "FlowMatch", "MalformedPacket", "parse_frame"]
