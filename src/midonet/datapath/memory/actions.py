"""The action interpreter: what a list of datapath actions does to a frame, decided without doing it.

Role: the pure half of executing a flow (faucet's habit: deciding is separate from doing). `interpret(frame,
actions)` walks the actions in order over the frame's bytes and returns the `Effects`: the copies to output (each
with the port, the frame as it was at that point, and the tunnel metadata set before it) and the copies to hand
to userspace. The datapath then performs them (interfaces, underlay, upcalls).

    SetFields(changes)   `midonet.packets.frame.apply`: MACs, IPs, TOS, TTL, ports, with checksums fixed up
    PushVlan(vid)        `ethernet.push_vlan` (802.1Q, priority 0)
    PopVlan()            `ethernet.pop_vlan`
    SetTunnel(...)       remembered; every later Output carries it (an Output to a netdev ignores it)
    Output(port)         an `Emit` of the frame as it is now
    Userspace()          a `Punt` of the frame as it is now

An action that does not apply to the frame (a port rewrite on ARP, a pop with no tag, a malformed frame under
SetFields) stops the walk: the effects decided before it stand and `failure` says why, for the drop counter.
Nothing here raises for a bad frame.

May import: `midonet.packets`, `midonet.datapath.base`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import assert_never

from midonet.datapath.base import Action, Output, PopVlan, PushVlan, SetFields, SetTunnel, Userspace
from midonet.packets import ethernet
from midonet.packets import frame as frames


@dataclass(frozen=True, slots=True)
class Emit:
    """Send `frame` out of datapath port `port`; `tunnel` is the metadata for a VXLAN port (None if none set)."""

    port: int
    frame: bytes
    tunnel: SetTunnel | None


@dataclass(frozen=True, slots=True)
class Punt:
    """Hand `frame` to the agent (a Userspace action)."""

    frame: bytes


Effect = Emit | Punt


@dataclass(frozen=True, slots=True)
class Effects:
    effects: tuple[Effect, ...]
    failure: str | None = None   # why the walk stopped early, None if every action applied


def interpret(frame: bytes, actions: Sequence[Action]) -> Effects:
    """The effects of applying `actions` to `frame`, in order; see the module docstring."""
    effects: list[Effect] = []
    tunnel: SetTunnel | None = None
    for action in actions:
        match action:
            case Output(port):
                effects.append(Emit(port, frame, tunnel))
            case SetFields(changes):
                try:
                    frame = frames.apply(frame, dict(changes))
                except ValueError as e:   # MalformedPacket is a ValueError
                    return Effects(tuple(effects), f"{action}: {e}")
            case PushVlan(vid):
                try:
                    frame = ethernet.push_vlan(frame, vid)
                except ValueError as e:
                    return Effects(tuple(effects), f"{action}: {e}")
            case PopVlan():
                try:
                    frame = ethernet.pop_vlan(frame)
                except ValueError as e:
                    return Effects(tuple(effects), f"{action}: {e}")
            case SetTunnel():
                tunnel = action
            case Userspace():
                effects.append(Punt(frame))
            case _:
                assert_never(action)
    return Effects(tuple(effects))
