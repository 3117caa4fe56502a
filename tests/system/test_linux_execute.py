"""Kernel execute: a packet executed with the actions of the flow just installed is run by the tc-BPF program.

The agent installs a flow, then executes its first packet with the same actions; the Linux datapath sends that
packet into the upcall channel naming the flow, and the program runs the flow's actions. Here: every output equals,
byte for byte, what `memory.actions.interpret` makes of the frame (the Python execute); nothing is counted as a hit
or a miss, nor in the flow's stats; other executes stay in Python; a flow removed before the kernel sees the packet
sends it back up, and Python runs it. Each runs both with the datapath writing flows and executes itself and with
its writer process (`linux.writer`, as the agent runs it): the reader thread's writes go in batches, a killed
writer leaves the datapath writing directly (a batch it did not take included), one that cannot send gives the
frame back to Python, and it never outlives its datapath.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from midonet.datapath.base import Flow, FlowKey, Output, SetFields
from midonet.datapath.linux import LinuxDatapath, layout, writer
from midonet.datapath.linux.writer import KernelWriter
from midonet.datapath.memory.actions import Emit, interpret
from midonet.packets import frame
from midonet.testing.datapath_conformance import assert_checksums_valid, tcp_frame, udp_frame
from midonet.testing.linux_rig import LinuxRig
from midonet.testing.traffic import ping
from tests.system.switch import LearningSwitch
from tests.system.test_linux_kernel_actions import CASES

NAT = SetFields((("ip_dst", "10.1.2.3"), ("tp_dst", 8080)))


@pytest.fixture(params=[False, True], ids=["direct", "writer"])
def dp(rig: LinuxRig, request: pytest.FixtureRequest) -> LinuxDatapath:
    """One host's datapath with ports on a, b and c, writing flows and executes itself, or through the writer
    process (as the agent runs it)."""
    return with_ports(rig.add_linux_host("h1", "10.99.0.1", ["a", "b", "c"], writer_process=request.param))


@pytest.fixture
def wdp(rig: LinuxRig) -> LinuxDatapath:
    """The same, with the writer process."""
    return with_ports(rig.add_linux_host("h1", "10.99.0.1", ["a", "b", "c"], writer_process=True))


def with_ports(dp: LinuxDatapath) -> LinuxDatapath:
    for name in "abc":
        dp.add_port(name)
    return dp


def numbers(dp: LinuxDatapath) -> tuple[int, int, int]:
    a, b, c = (p.number for p in dp.ports())
    return a, b, c


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_execute_equals_python_execute(rig: LinuxRig, dp: LinuxDatapath, case: str) -> None:
    packet, actions = CASES[case]
    a, b, _ = numbers(dp)
    flow = Flow(FlowKey.of({"in_port": a, "eth_dst": "02:00:00:00:00:99"}), (*actions, Output(b)))
    dp.install(flow)
    (expected,) = [e.frame for e in interpret(packet, flow.actions).effects if isinstance(e, Emit)]
    dp.execute(packet, flow.actions, in_port=a)    # the packet does not even match the key: its actions run
    (got,) = rig.wait_frames("h1", "b")
    assert got.hex() == expected.hex()
    if frame.parse(got).peek("ip_frag") in ("none", "first"):
        assert_checksums_valid(got)
    rig.quiesce()
    assert dp.execute_statistics().kernel == 1
    stats = dp.statistics()
    assert (stats.hits, stats.misses, stats.upcalls) == (0, 0, 0), stats
    ((_, flow_stats),) = dp.flows()
    assert flow_stats.packets == 0


def test_copies_between_outputs(rig: LinuxRig, dp: LinuxDatapath) -> None:
    a, b, c = numbers(dp)
    actions = (Output(b), NAT, Output(c))
    dp.install(Flow(FlowKey.of({"in_port": a}), actions))
    packet = tcp_frame()
    dp.execute(packet, actions, in_port=a)
    assert rig.wait_frames("h1", "b") == [packet]
    assert rig.wait_frames("h1", "c") == [interpret(packet, (NAT, Output(c))).effects[0].frame]
    assert dp.execute_statistics().kernel == 1


def test_other_executes_stay_in_python(rig: LinuxRig, dp: LinuxDatapath) -> None:
    a, b, c = numbers(dp)
    dp.install(Flow(FlowKey.of({"in_port": a}), (Output(b),)))
    dp.execute(udp_frame(), (Output(c),), in_port=a)             # not the installed flow's actions
    dp.install(Flow(FlowKey.of({"in_port": b}), (Output(c),)))
    dp.remove(FlowKey.of({"in_port": b}))
    dp.execute(udp_frame(), (Output(c),), in_port=b)             # the flow was removed
    assert rig.wait_frames("h1", "c", 2) == [udp_frame(), udp_frame()]
    assert dp.execute_statistics().kernel == 0


def test_a_flow_gone_before_the_kernel_ran_it_is_run_in_python(rig: LinuxRig, dp: LinuxDatapath) -> None:
    a, b, _ = numbers(dp)
    actions = (NAT, Output(b))
    dp.install(Flow(FlowKey.of({"in_port": a}), actions))
    entry = dp._flows.last
    assert entry is not None
    dp.drain()                              # the writer process wrote it
    dp._tables.pop_flow(entry.key_bytes)   # as if removed between the check and the kernel's lookup
    dp.execute(udp_frame(), actions, in_port=a)
    assert rig.wait_frames("h1", "b") == [interpret(udp_frame(), actions).effects[0].frame]
    rig.quiesce()
    executes = dp.execute_statistics()
    assert (executes.kernel, executes.returned, executes.lost) == (1, 1, 0)
    assert dp.statistics().upcalls == 0


def test_an_execute_never_sent_to_the_kernel_is_not_counted_as_one(rig: LinuxRig, dp: LinuxDatapath) -> None:
    a, b, _ = numbers(dp)
    actions = (Output(b),)
    dp.install(Flow(FlowKey.of({"in_port": a}), actions))
    dp._channel.stop()                                  # its sending end gone: the send raises
    dp.execute(udp_frame(), actions, in_port=a)
    assert rig.wait_frames("h1", "b") == [udp_frame()]  # run in Python instead
    assert dp.execute_statistics().kernel == 0


@pytest.mark.parametrize("writes", [False, True], ids=["direct", "writer"])
def test_ping_first_packets_are_executed_by_the_kernel_and_counted_once(rig: LinuxRig, writes: bool) -> None:
    dp = rig.add_linux_host("h1", "10.99.0.1", ["a", "b"], {"a": "10.0.0.1/24", "b": "10.0.0.2/24"},
                            writer_process=writes)
    dp.add_port("a")
    dp.add_port("b")
    switch = LearningSwitch(dp)
    assert ping(rig.vm("h1", "a"), "10.0.0.2") == 1
    rig.quiesce()
    assert dp.execute_statistics().kernel >= 2     # the ARP reply and the first echo reply at least
    stats = dp.statistics()
    assert stats.misses == stats.upcalls == switch.upcalls, stats


def executor(dp: LinuxDatapath) -> KernelWriter:
    process = dp._channel.writer
    assert process is not None
    return process


def gone(pid: int, within: float = 5.0) -> bool:
    """Whether process `pid` ended within `within` seconds (a zombie nobody reaped yet has ended)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def test_flows_and_executes_are_written_by_the_writer_process(rig: LinuxRig, wdp: LinuxDatapath) -> None:
    dp = wdp
    a, b, _ = numbers(dp)
    actions = (NAT, Output(b))
    dp.install(Flow(FlowKey.of({"in_port": a}), actions))
    for _ in range(3):
        dp.execute(udp_frame(), actions, in_port=a)
    assert rig.wait_frames("h1", "b", 3) == [interpret(udp_frame(), actions).effects[0].frame] * 3
    assert (executor(dp).given, executor(dp).refused) == (4, 0)   # the flow, then the three packets
    assert dp.execute_statistics().kernel == 3


def test_a_killed_writer_process_leaves_the_datapath_writing_itself(rig: LinuxRig, wdp: LinuxDatapath) -> None:
    dp = wdp
    a, b, _ = numbers(dp)
    process = executor(dp)
    os.kill(process.pid, signal.SIGKILL)
    process._process.wait(5)
    actions = (Output(b),)
    dp.install(Flow(FlowKey.of({"in_port": a}), actions))
    for _ in range(3):
        dp.execute(udp_frame(), actions, in_port=a)
    assert rig.wait_frames("h1", "b", 3) == [udp_frame()] * 3
    assert not process.alive() and process.refused >= 4
    rig.inject("h1", "a", udp_frame())                 # the flow is in the kernel
    assert rig.wait_frames("h1", "b") == [udp_frame()]
    stats = dp.statistics()
    assert (stats.hits, stats.misses, stats.dropped()) == (1, 0, 0), stats


def test_the_holders_writes_wait_for_a_batch_and_go_in_one_datagram(rig: LinuxRig, wdp: LinuxDatapath) -> None:
    dp = wdp
    a, b, _ = numbers(dp)
    process = executor(dp)
    process.holder = threading.get_ident()    # as if this were the channel's reader
    actions = (NAT, Output(b))
    dp.install(Flow(FlowKey.of({"in_port": a}), actions))
    for _ in range(3):
        dp.execute(udp_frame(), actions, in_port=a)
    assert (process.given, process.sent) == (4, 0)            # all four wait here
    process.flush()
    assert (process.given, process.sent, process.refused) == (4, 4, 0)
    assert rig.wait_frames("h1", "b", 3) == [interpret(udp_frame(), actions).effects[0].frame] * 3
    for _ in range(writer.HOLD + 1):                           # a full batch goes by itself
        dp.execute(udp_frame(), actions, in_port=a)
    assert process.sent == 4 + writer.HOLD
    dp.drain()                                                 # and a drain sends the rest first
    assert process.sent == process.given == 5 + writer.HOLD
    assert len(rig.wait_frames("h1", "b", writer.HOLD + 1)) == writer.HOLD + 1


def test_a_batch_the_writer_process_cannot_take_is_done_by_the_datapath(rig: LinuxRig, wdp: LinuxDatapath) -> None:
    dp = wdp
    a, b, _ = numbers(dp)
    process = executor(dp)
    process.holder = threading.get_ident()
    actions = (Output(b),)
    dp.install(Flow(FlowKey.of({"in_port": a}), actions))
    dp.execute(udp_frame(), actions, in_port=a)
    os.kill(process.pid, signal.SIGKILL)                       # with the flow and the frame waiting for it
    process._process.wait(5)
    process.flush()
    assert not process.alive() and (process.sent, process.refused) == (0, 2)
    assert rig.wait_frames("h1", "b") == [udp_frame()]        # the datapath sent it
    rig.inject("h1", "a", udp_frame())                         # and wrote the flow into the kernel
    assert rig.wait_frames("h1", "b") == [udp_frame()]
    stats = dp.statistics()
    assert (stats.hits, stats.misses) == (1, 0), stats


class _DownLink:
    """A sending socket whose link is down."""

    def send(self, data: bytes) -> int:
        raise OSError(errno.ENETDOWN, "Network is down")


def test_a_held_frame_that_fails_when_its_writer_dies_runs_in_python(rig: LinuxRig, wdp: LinuxDatapath) -> None:
    dp = wdp
    a, b, _ = numbers(dp)
    process = executor(dp)
    process.holder = threading.get_ident()                  # the flow and the frame wait here
    actions = (NAT, Output(b))
    dp.install(Flow(FlowKey.of({"in_port": a}), actions))
    dp.execute(udp_frame(), actions, in_port=a)
    process._here.packets = _DownLink()                     # the datapath's own send of it will fail
    os.kill(process.pid, signal.SIGKILL)                    # the channel sees it go and does what it held
    assert rig.wait_frames("h1", "b") == [interpret(udp_frame(), actions).effects[0].frame]
    assert dp.execute_statistics().returned == 1
    assert dp.in_kernel(FlowKey.of({"in_port": a}))


def test_a_frame_the_writer_process_cannot_send_comes_back_to_python(rig: LinuxRig, wdp: LinuxDatapath) -> None:
    dp = wdp
    a, b, _ = numbers(dp)
    actions = (NAT, Output(b))
    dp.install(Flow(FlowKey.of({"in_port": a}), actions))
    link = ["ip", "-n", str(dp.netns), "link", "set", dp._channel.peer]
    subprocess.run([*link, "down"], check=True)   # the channel's end the process sends on: ENETDOWN
    try:
        dp.execute(udp_frame(), actions, in_port=a)
        assert rig.wait_frames("h1", "b") == [interpret(udp_frame(), actions).effects[0].frame]
        executes = dp.execute_statistics()
        assert (executes.kernel, executes.returned) == (1, 1)
    finally:
        subprocess.run([*link, "up"], check=True)


def test_the_writer_process_ends_with_its_datapath(rig: LinuxRig) -> None:
    dp = rig.add_linux_host("h1", "10.99.0.1", ["a"], writer_process=True)
    pid = executor(dp).pid
    assert not gone(pid, within=0.2)
    dp.close()
    assert gone(pid)


def test_a_full_flow_map_makes_new_flows_userspace_ones(rig: LinuxRig, dp: LinuxDatapath,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "MAX_FLOWS", 2)
    a, b, c = numbers(dp)
    for port, out in ((a, b), (b, c), (c, a)):
        dp.install(Flow(FlowKey.of({"in_port": port}), (Output(out),)))
    assert [dp.in_kernel(FlowKey.of({"in_port": port})) for port in (a, b, c)] == [True, True, False]
    rig.inject("h1", "c", udp_frame())                 # the third flow still forwards, from userspace
    assert rig.wait_frames("h1", "a") == [udp_frame()]
    dp.remove(FlowKey.of({"in_port": a}))
    dp.install(Flow(FlowKey.of({"in_port": a}), (Output(b),)))   # room again: back in the kernel
    assert dp.in_kernel(FlowKey.of({"in_port": a}))


AGENT = """\
import sys, time
from pathlib import Path
from midonet.datapath.linux import LinuxDatapath
dp = LinuxDatapath("midonet", netns_name=sys.argv[1], state_dir=Path(sys.argv[2]), writer_process=True)
print(dp._channel.writer.pid, flush=True)
time.sleep(60)
"""


def test_the_writer_process_does_not_outlive_a_killed_agent(rig: LinuxRig, tmp_path: Path) -> None:
    rig.add_linux_host("h1", "10.99.0.1", ["a"]).close()     # a host namespace; its own datapath gone
    agent = subprocess.Popen([sys.executable, "-c", AGENT, rig.host_netns("h1"), str(tmp_path / "dp")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert agent.stdout is not None
        writer = int(agent.stdout.readline())
        assert not gone(writer, within=0.2)
        agent.kill()                                           # by its PID, as a crash would
        agent.wait(10)
        assert gone(writer)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
        subprocess.run(["umount", str(tmp_path / "dp")], capture_output=True, check=False)
