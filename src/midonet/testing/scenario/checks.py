"""A step's packets and how it went: what a VM sends, what an expectation asks for, whether it held, and the report.

Role: shared by every runner (fake hosts, namespaces); a runner sends, captures what each VM received during a
step, and hands the captures here.

Sending: a send's spec is `simulation.packetspec`'s language (`midonet trace`'s); what is not given comes from the
sending VM, as its own stack would fill it in: `eth_src` its MAC, `ip_src` (and an ARP packet's `arp_spa`) its
address, `eth_dst` the MAC of the next hop (the destination on the VM's subnet, else its gateway), which the VM
finds with ARP (`packet_from`, `frame_from`, `needs_next_hop`).

Expecting: an expectation is a spec too, but only the keys it gives are compared, each normalised (`AA-BB-..` is
`aa:bb:..`, `ip_proto=17` is `udp`), so `ip_src=10.0.0.1,tp_dst=9` holds for any packet from 10.0.0.1 to port 9
(`expected`, `mismatches`). `expect_none_at` ignores ARP: a VM's stack answers or drops it, and a router resolving
a neighbour floods ARP requests on a bridge whatever the packet's fate (`check_send`).

Reporting:

    Report(source, setup, steps)               `lines()` for people, `to_json()` for programs
    └── StepResult(step, what, ok, line, captured, checks, error)
         └── Check(text, ok, detail)            "at vm2: ip_src=10.0.0.1,tp_dst=9"  /  "nothing at vm3"

`captured` is JSON-ready: for a `send` step {vm: [packet, ...]} (each packet in `midonet trace`'s keys,
`simulation.packetspec.describe_frame`); for an API step {"response": ...} or {"status": N, "error": "..."};
empty for the others unless a VM received something meanwhile.

May import: `testing.scenario.model`, `midonet.simulation.packetspec`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from midonet.simulation.packetspec import (
    ARP_OPS,
    DHCP_TYPES,
    ETH_TYPES,
    IP_FRAGS,
    IP_PROTOS,
    Packet,
    PacketValue,
    SpecError,
    build_frame,
    parse_items,
    split_spec,
    summary,
)
from midonet.testing.scenario.model import Send

# ---- packets ----

EXPECT_KEYS = ("dhcp_yiaddr",)        # report-only keys an expectation may ask for
_MACS = frozenset({"eth_src", "eth_dst", "arp_sha", "arp_tha"})
_IPS = frozenset({"arp_spa", "arp_tpa", "ip_src", "ip_dst", "dhcp_yiaddr"})
_NAMED: Mapping[str, Mapping[str, int]] = {"eth_type": ETH_TYPES, "ip_proto": IP_PROTOS, "arp_op": ARP_OPS,
                                           "dhcp": DHCP_TYPES}
PLACEHOLDER_MAC = "02:00:00:00:00:00"


def _normal(key: str, raw: str) -> PacketValue:
    """One expected value in the form `describe_frame` reports it; SpecError if it cannot be one."""
    text = raw.strip().lower()
    if key in _MACS:
        parts = text.replace("-", ":").split(":")
        if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
            raise SpecError(key, f"not a MAC address: {raw!r}")
        return ":".join(parts)
    if key in _IPS:
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise SpecError(key, f"not an IPv4 address: {raw!r}") from None
    if key in _NAMED:
        names = _NAMED[key]
        if text in names:
            return text
        try:
            number = int(text, 0)
        except ValueError:
            raise SpecError(key, f"must be {', '.join(names)} or a number, not {raw!r}") from None
        return next((name for name, n in names.items() if n == number), number)
    if key == "ip_frag":
        if text not in IP_FRAGS:
            raise SpecError(key, f"must be {', '.join(IP_FRAGS)}, not {raw!r}")
        return text
    try:
        return int(text, 0)
    except ValueError:
        raise SpecError(key, f"not a number: {raw!r}") from None


def expected(text: str) -> dict[str, PacketValue]:
    """The keys an expectation gives, normalised; SpecError for a bad key or value."""
    return {key: _normal(key, raw) for key, raw in split_spec(text, EXPECT_KEYS).items()}


def mismatches(want: Mapping[str, PacketValue], packet: Mapping[str, PacketValue]) -> list[str]:
    """The keys of `want` a captured packet does not match (empty: it matches)."""
    out = []
    for key, value in want.items():
        got = packet.get(key)
        ok = value in got if key == "vlan" and isinstance(got, list) else got == value
        if not ok:
            out.append(key)
    return out


def is_ipv4(items: Mapping[str, str]) -> bool:
    """Whether the spec describes an IPv4 packet (not ARP, not another EtherType)."""
    if any(key.startswith("arp_") for key in items):
        return False
    eth_type = items.get("eth_type", "ipv4").lower()
    return eth_type in ("ipv4", "0x800", "0x0800", "2048")


def needs_next_hop(items: Mapping[str, str]) -> bool:
    """Whether the sender's stack must find `eth_dst` (an IPv4 packet that names none and is not DHCP)."""
    return "eth_dst" not in items and "dhcp" not in items and is_ipv4(items)


def packet_from(items: Mapping[str, str], *, mac: str | None, ip: str | None,
                eth_dst: str | None = None) -> Packet:
    """The complete packet a VM with `mac` and `ip` sends for `items`, `eth_dst` being its next hop's MAC."""
    given = dict(items)
    if mac is not None:
        given.setdefault("eth_src", mac)
    if ip is not None:
        if any(key.startswith("arp_") for key in given):
            given.setdefault("arp_spa", ip)
        elif "dhcp" not in given and is_ipv4(given):
            given.setdefault("ip_src", ip)
    if eth_dst is not None:
        given.setdefault("eth_dst", eth_dst)
    return parse_items(given)


def frame_from(items: Mapping[str, str], *, mac: str | None, ip: str | None, eth_dst: str | None = None) -> bytes:
    return build_frame(packet_from(items, mac=mac, ip=ip, eth_dst=eth_dst))


def check_spec(items: Mapping[str, str], *, mac: str | None, ip: str | None) -> None:
    """Raise SpecError if `items` cannot make a packet for this VM (before anything runs)."""
    packet_from(items, mac=mac or PLACEHOLDER_MAC, ip=ip, eth_dst=PLACEHOLDER_MAC)


# ---- results ----

@dataclass(frozen=True, slots=True)
class Check:
    text: str
    ok: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.text, "ok": self.ok}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True)
class StepResult:
    step: int                              # 1-based, in the file's order
    what: str
    ok: bool
    line: int | None = None
    captured: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step, "ok": self.ok, "what": self.what, "line": self.line,
                               "captured": dict(self.captured), "checks": [c.to_json() for c in self.checks]}
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class Report:
    source: str
    setup: str                             # what was built: "2 hosts, 9 objects, 3 VMs"
    steps: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.steps]

    def lines(self) -> list[str]:
        """The report for people: a header, one line per step, its checks and captures indented, a total."""
        out = [f"{self.source}: {self.setup}"]
        for s in self.steps:
            at = f"  (line {s.line})" if s.line is not None else ""
            out.append(f"{'PASS' if s.ok else 'FAIL'} {s.step:>3}  {s.what}{at}")
            if s.error is not None:
                out.append(f"            error: {s.error}")
            for check in s.checks:
                detail = f": {check.detail}" if check.detail else ""
                out.append(f"            {'ok  ' if check.ok else 'FAIL'} {check.text}{detail}")
            out.extend(f"            {line}" for line in captured_lines(s.captured))
        failed = sum(1 for s in self.steps if not s.ok)
        out.append(f"{len(self.steps)} steps: {len(self.steps) - failed} passed, {failed} failed")
        return out


def captured_lines(captured: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for where, what in captured.items():
        if isinstance(what, list):
            out.extend(f"{where} got {summary(p)}" for p in what)
        else:
            out.append(f"{where}: {'(empty)' if what is None else what}")
    return out


def is_arp(packet: Mapping[str, Any]) -> bool:
    return packet.get("eth_type") == "arp"


def check_send(step: Send, captured: Mapping[str, Sequence[Packet]]) -> tuple[Check, ...]:
    """The expectations of a `send` step, judged on the packets each VM received."""
    checks = []
    for expect in step.expect:
        want = expected(expect.text)
        got = captured.get(expect.at, [])
        text = f"at {expect.at}: {expect.text}"
        if any(not mismatches(want, p) for p in got):
            checks.append(Check(text, True))
        elif not got:
            checks.append(Check(text, False, "it received nothing"))
        else:
            closest = min(got, key=lambda p: sum(1 if k in p else 2 for k in mismatches(want, p)))
            wrong = ", ".join(f"{k}={closest.get(k)}" for k in mismatches(want, closest))
            checks.append(Check(text, False, f"no packet matched; the closest has {wrong}"))
    for vm in step.expect_none_at:
        got = [p for p in captured.get(vm, []) if not is_arp(p)]
        text = f"nothing at {vm}"
        checks.append(Check(text, not got, f"it received {summary(got[0])}" if got else ""))
    return tuple(checks)


__all__ = ["EXPECT_KEYS", "Check", "Report", "StepResult", "captured_lines", "check_send", "check_spec", "expected",
           "frame_from", "mismatches", "needs_next_hop", "packet_from"]
