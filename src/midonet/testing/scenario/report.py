"""What playing a scenario gave: one `StepResult` per traffic step, the expectations checked, and the report
rendered for people (one line per step, then what was captured where) or for programs (JSON).

Role: shared by every runner (fake hosts, namespaces): a runner captures the frames each VM received during a step,
`check_send` judges a `send` step's expectations on them, `Report` renders the lot.

    Report(source, setup, steps)
    └── StepResult(step, what, ok, line, captured, checks, error)
         └── Check(text, ok, detail)       "at vm2: ip_src=10.0.0.1,tp_dst=9"  /  "nothing at vm3"

`captured` is JSON-ready: for a `send` step {vm: [packet, ...]} (each packet in `midonet trace`'s keys, see
`simulation.packetspec.describe_frame`); for an API step {"response": ...} or {"status": N, "error": "..."};
empty for the others unless a VM received something meanwhile.

`expect_none_at` ignores ARP: a VM's stack answers or drops it, and a router resolving a neighbour floods ARP
requests on a bridge whatever the packet's fate.

May import: `testing.scenario.*`, `midonet.simulation.packetspec`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from midonet.simulation.packetspec import Packet, summary
from midonet.testing.scenario import packets
from midonet.testing.scenario.model import Send


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
        want = packets.expected(expect.text)
        got = captured.get(expect.at, [])
        text = f"at {expect.at}: {expect.text}"
        if any(not packets.mismatches(want, p) for p in got):
            checks.append(Check(text, True))
        elif not got:
            checks.append(Check(text, False, "it received nothing"))
        else:
            closest = min(got, key=lambda p: sum(1 if k in p else 2 for k in packets.mismatches(want, p)))
            wrong = ", ".join(f"{k}={closest.get(k)}" for k in packets.mismatches(want, closest))
            checks.append(Check(text, False, f"no packet matched; the closest has {wrong}"))
    for vm in step.expect_none_at:
        got = [p for p in captured.get(vm, []) if not is_arp(p)]
        text = f"nothing at {vm}"
        checks.append(Check(text, not got, f"it received {summary(got[0])}" if got else ""))
    return tuple(checks)


__all__ = ["Check", "Report", "StepResult", "captured_lines", "check_send"]
