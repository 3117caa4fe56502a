"""The state-table conformance suite (midonet.testing.state_conformance) against every implementation.

    memory  -- `midonet.state.tables.in_memory`

The agent's store-backed tables will add their factory here and run the same checks.
"""

from __future__ import annotations

import pytest

from midonet.state.tables import in_memory
from midonet.testing.state_conformance import CHECKS, Check, Make

BACKENDS: dict[str, Make] = {"memory": in_memory}


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("check_") for c in CHECKS])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_state_tables(backend: str, check: Check) -> None:
    check(BACKENDS[backend])
