"""The one error the packets library raises for bad input: `MalformedPacket`.

Role: every parser in `midonet.packets` (the whole-frame fast path `flowmatch.parse_frame`, and the per-protocol
`parse` functions) turns *any* defect of its input bytes -- truncation, a length field that points past the end,
a version or header-length nibble out of range, an option running off its header, a bad magic cookie -- into this
one exception, and never lets a `struct.error`, `IndexError`, `UnicodeDecodeError` or the like escape. Callers (the
agent's upcall handler, the DHCP service, tests) therefore need exactly one ``except`` clause. The hypothesis fuzz
tests in ``tests/unit/packets/test_fuzz.py`` hold the line.

    ValueError
     └── MalformedPacket   .layer: "ethernet" | "vlan" | "arp" | "ipv4" | "icmp" | "tcp" | "udp" | "dhcp" | "vxlan"

Programming errors are not malformed packets: building a header from out-of-range arguments (a port above 65535, an
unparsable MAC string) raises a plain `ValueError`, and passing a `str` where bytes are expected a `TypeError`.

May import: nothing (standard library only).
"""

from __future__ import annotations

__all__ = ["MalformedPacket"]


class MalformedPacket(ValueError):
    """The input bytes are not a well-formed packet of the expected protocol.

    `layer` names the protocol whose header was found wanting; `reason` says what was wrong, in words a trace or a
    drop counter can show.
    """

    def __init__(self, layer: str, reason: str) -> None:
        super().__init__(f"{layer}: {reason}")
        self.layer = layer
        self.reason = reason

    def __reduce__(self) -> tuple[type[MalformedPacket], tuple[str, str]]:
        return (MalformedPacket, (self.layer, self.reason))
