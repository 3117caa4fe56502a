"""Rendering traced steps: the JSON `midonet trace --json` prints, and the detailed text it prints otherwise.

Role: turns `tracing.StepTrace` (plain data) into output, with no I/O: `to_json(step)` a JSON-ready dict,
`detailed(step)` a list of styled text lines (the CLI prints them; styles are rich style names or "").

JSON, one object per step::

    {"step": 1, "port_id": "...", "packet": {spec keys},
     "result": "forward" | "drop" | "temporary_drop" | "consumed" | "postponed" | <other verdicts, snake_case>,
     "drop_reason": str | null,          the reason of a drop or temporary drop
     "drop_kind": "error" | "short",     temporary drops only (the original's ErrorDrop / ShortDrop)
     "reason": str | null,               the reason of any verdict but forward ("waiting for arp ..." if postponed)
     "outputs":   [{"port_id", "packet", "rewritten": [fields]}],     the packet leaving exterior ports
     "generated": [{"port_id", "packet", "reason", "from_port"}],     generated packets leaving exterior ports
     "devices":   [ids traversed, in order],
     "flow": {"installs": bool, "expiration": seconds | null, "match_fields": [...], "userspace_only": bool},
     "steps": ["<stage>: <what>: <text>", ...]}       the trace; generated packets' traces follow, indented

The detailed text reads like `ovn-trace --detailed`: a header per step (the port, the packet), then one block per
device in the order the packet met them, one line per stage and rule decision, then the verdict with the packets
that leave and the generated packets, each with its own trace.

May import: `simulation.tracing`, `simulation.packetspec`, `simulation.results`, `simulation.pipeline`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from midonet.simulation.packetspec import summary
from midonet.simulation.pipeline import Stage
from midonet.simulation.results import Consumed, Drop, Forward, Postponed, TemporaryDrop, Verdict
from midonet.simulation.tracing import Emission, GeneratedTrace, Line, StepTrace

STAGE_WIDTH = 24

_SNAKE = re.compile(r"(?<=[a-z0-9])([A-Z])")


@dataclass(frozen=True, slots=True)
class Styled:
    """A line of text and the style to print it in ("" = plain; else a rich style such as "bold")."""

    text: str
    style: str = ""


def verdict_fields(verdict: Verdict) -> dict[str, Any]:
    """`result`, `drop_reason` and `reason` of a verdict; a verdict type added later reports its class name."""
    match verdict:
        case Forward():
            return {"result": "forward", "drop_reason": None, "reason": None}
        case Drop(reason):
            return {"result": "drop", "drop_reason": reason, "reason": reason}
        case TemporaryDrop(reason, kind):
            return {"result": "temporary_drop", "drop_reason": reason, "reason": reason, "drop_kind": kind.value}
        case Consumed(reason):
            return {"result": "consumed", "drop_reason": None, "reason": reason}
        case Postponed(kind, ident):
            return {"result": "postponed", "drop_reason": None, "reason": f"waiting for {kind} {ident}"}
        case _:
            reason = getattr(verdict, "reason", None)
            return {"result": _SNAKE.sub(r"_\1", type(verdict).__name__).lower(), "drop_reason": None,
                    "reason": str(reason) if reason is not None else None}


def _emission(e: Emission) -> dict[str, Any]:
    return {"port_id": e.port_id, "packet": e.packet, "rewritten": list(e.rewritten)}


def _generated(g: GeneratedTrace) -> list[dict[str, Any]]:
    return [{"port_id": e.port_id, "packet": e.packet, "reason": g.reason, "from_port": g.origin}
            for e in g.outputs]


def trace_lines(step: StepTrace) -> list[str]:
    """The step's trace as plain lines: the packet's, then each generated packet's, indented under a header."""
    lines = [str(line) for line in step.lines]
    for g in step.generated:
        lines.append(f"generated at {g.origin_label or g.origin}: {g.reason}: {summary(g.packet)}")
        lines += [f"  {line}" for line in g.lines]
    return lines


def to_json(step: StepTrace) -> dict[str, Any]:
    """The JSON-ready object of one step (see the module docstring)."""
    result = step.result
    return {
        "step": step.index,
        "port_id": step.port_id,
        "packet": step.packet,
        **verdict_fields(result.verdict),
        "outputs": [_emission(e) for e in step.outputs],
        "generated": [item for g in step.generated for item in _generated(g)],
        "devices": list(step.devices),
        "flow": {"installs": result.installs_flow, "expiration": result.expiration,
                 "match_fields": sorted(result.wildcard), "userspace_only": result.userspace_only},
        "steps": trace_lines(step),
    }


# ---- detailed text ----

def _verdict_style(result: str) -> str:
    return {"forward": "bold green", "consumed": "bold cyan", "postponed": "bold yellow"}.get(result, "bold red")


def _block(lines: Iterable[Line], indent: str) -> list[Styled]:
    """One header per device, in the order met; a line per stage under it (the verdict line left out)."""
    out: list[Styled] = []
    owner: str | None = None
    for line in lines:
        if line.stage is Stage.RESULT:
            continue
        if line.owner != owner:
            owner = line.owner
            out.append(Styled(f"{indent}{owner or '(no device)'}", "bold"))
        what = f"{line.subject}: {line.text}" if line.subject and line.subject != line.owner else line.text
        out.append(Styled(f"{indent}    {line.stage.label:<{STAGE_WIDTH}} {what}"))
    return out


def _outputs(emissions: Iterable[Emission], indent: str) -> list[Styled]:
    out: list[Styled] = []
    for e in emissions:
        changed = f"  (rewrote {', '.join(e.rewritten)})" if e.rewritten else ""
        out.append(Styled(f"{indent}out {e.label or e.port_id}: {summary(e.packet)}{changed}"))
    return out


def _verdict(result: Verdict, indent: str) -> Styled:
    fields = verdict_fields(result)
    reason = fields["reason"]
    text = f"{indent}=> {fields['result']}" + (f": {reason}" if reason else "")
    return Styled(text, _verdict_style(fields["result"]))


def detailed(step: StepTrace) -> list[Styled]:
    """The step as `ovn-trace --detailed` would show it (see the module docstring)."""
    out = [Styled(f"step {step.index}: in {step.port_label or step.port_id}", "bold underline"),
           Styled(f"  {summary(step.packet)}"), Styled("")]
    out += _block(step.lines, "  ")
    out.append(_verdict(step.result.verdict, "  "))
    out += _outputs(step.outputs, "      ")
    for g in step.generated:
        out.append(Styled(""))
        out.append(Styled(f"  generated at {g.origin_label or g.origin}: {g.reason}", "bold magenta"))
        out.append(Styled(f"    {summary(g.packet)}"))
        out += _block(g.lines, "    ")
        out.append(_verdict(g.result.verdict, "    "))
        out += _outputs(g.outputs, "        ")
    return out


__all__ = ["Styled", "detailed", "to_json", "trace_lines", "verdict_fields"]
