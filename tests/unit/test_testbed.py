"""The testbed's pure parts: which names are its own, and the one-testbed-per-machine lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from midonet.testbed import TestbedError, testbed


@pytest.mark.parametrize("name", ["mn-underlay", "mn-h1", "mn-h12", "mn-vm3", "mn-ul-root"])
def test_its_own_names(name: str) -> None:
    assert testbed.OURS.match(name)


@pytest.mark.parametrize("name", ["mn-6bd7-vm2", "mn-49f0-ul", "mn-h", "mn-vm1x", "h1", "mn-13e4-h1", "mn-br"])
def test_other_tests_names_are_not_its_own(name: str) -> None:
    assert not testbed.OURS.match(name)


def test_a_second_testbed_is_refused_while_one_holds_the_lock(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testbed, "LOCK", tmp_path / "lock")
    fd = testbed._lock()
    try:
        with pytest.raises(TestbedError, match="another testbed is running"):
            testbed._lock()
        with pytest.raises(TestbedError, match="another testbed is running"):
            testbed.cleanup()
    finally:
        testbed._unlock(fd)
    testbed._unlock(testbed._lock())   # free again


def test_midonet_command_is_this_environments() -> None:
    command = testbed.midonet_command()
    assert command[0].endswith("midonet") or command[-1].endswith("main()")
