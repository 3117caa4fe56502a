"""Fixtures of the agent's unit tests: a memory store with an operator session and an agent session, and a recorder
of what a component invalidates and announces ready."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from midonet.agent.events import EventGate
from midonet.simulation.results import FlowTag
from midonet.store.memory import MemoryBackend, MemoryStore
from midonet.testing.store_topology import StoreTopology


@dataclass
class Sessions:
    operator: MemoryStore
    agent: MemoryStore
    topology: StoreTopology

    def flush(self) -> None:
        """Deliver every pending watch callback (a few rounds: callbacks may cause more)."""
        for _ in range(3):
            for session in (self.operator, self.agent):
                assert session.delivery.flush(5.0)


@dataclass
class Recorder:
    gate: EventGate = field(default_factory=EventGate)
    invalidated: list[FlowTag] = field(default_factory=list)
    readied: list[tuple[str, str]] = field(default_factory=list)

    def invalidate(self, tag: FlowTag) -> None:
        self.invalidated.append(tag)

    def ready(self, kind: str, ident: str) -> None:
        self.readied.append((kind, ident))


@pytest.fixture
def sessions() -> Iterator[Sessions]:
    backend = MemoryBackend()
    operator = backend.connect("operator")
    agent = backend.connect("agent")
    yield Sessions(operator, agent, StoreTopology(operator))
    backend.close()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()
