"""Admission control end to end (spec 1.7): one VM floods new flows, another VM on the same host still gets its new
flows through; the flood's excess is dropped before the simulation and counted against the flooding port.

    vm1 (h1, floods) ─┐
                      ├── bridge `net` (inbound filter: a rule on tp_dst, so every destination port is a new flow)
    vm2 (h1) ─────────┤
    vm3 (h2) ─────────┘   receives

The clock is the cloud's fake clock: tokens come back only when a test moves it, so the figures are exact.
"""

from __future__ import annotations

from midonet.agent.admission import AdmissionConfig
from midonet.agent.agent import AgentConfig
from midonet.agent.metrics import AgentDrop
from midonet.packets.flowmatch import parse_frame
from midonet.testing import frames
from midonet.testing.fakehosts import FakeCloud, FakeHost
from midonet.topology.chains import RuleAction

MACS = {"vm1": "02:00:00:00:00:01", "vm2": "02:00:00:00:00:02", "vm3": "02:00:00:00:00:03"}
IPS = {"vm1": "10.1.0.1", "vm2": "10.1.0.2", "vm3": "10.1.0.3"}
RATE = 1000.0


def build(cloud: FakeCloud) -> tuple[FakeHost, FakeHost]:
    h1, h2 = cloud.add_host("h1", interfaces=["vm1", "vm2"]), cloud.add_host("h2", interfaces=["vm3"])
    t = cloud.topology
    net = t.bridge("net")
    chain = t.chain("ports-matter")
    t.rule(chain, RuleAction.DROP, tp_dst=(7, 7))       # read by every packet: the flow matches tp_dst
    t.filters(type(net), net.id, inbound=chain)
    for host, name in ((h1, "vm1"), (h1, "vm2"), (h2, "vm3")):
        t.port(net, host_id=host.host_id, interface=name)
    cloud.settle()
    return h1, h2


def new_flow(src: str, dport: int) -> bytes:
    return frames.udp(MACS[src], MACS["vm3"], IPS[src], IPS["vm3"], sport=5000, dport=dport)


def test_a_flooding_vm_does_not_starve_its_neighbour() -> None:
    config = AgentConfig(admission=AdmissionConfig(rate=RATE))
    with FakeCloud(config=config) as cloud:
        h1, h2 = build(cloud)
        h2.inject("vm3", frames.udp(MACS["vm3"], MACS["vm1"], IPS["vm3"], IPS["vm1"]))   # vm3's MAC learned
        cloud.settle()
        h1.inject("vm1", new_flow("vm1", 1000))           # h1 loads the bridge
        cloud.settle()
        h2.take("vm3")

        delivered_vm2 = 0
        for round_ in range(20):
            cloud.clock.advance(0.02)                      # 20 tokens a round at 1000/s
            for n in range(200):                           # vm1: 200 new flows a round, ten times the budget
                h1.inject("vm1", new_flow("vm1", 10_000 + round_ * 200 + n))
            for n in range(5):                             # vm2: 5 new flows a round, within its share
                h1.inject("vm2", new_flow("vm2", 20_000 + round_ * 5 + n))
            cloud.settle()
            delivered_vm2 += sum(1 for f in h2.take("vm3") if parse_frame(f).ip_src == IPS["vm2"])

        assert delivered_vm2 == 100                        # every one of vm2's new flows got through
        ports = {b.interface: b.dp_port for b in h1.agent.bindings.active().values()}
        stats = h1.agent.statistics()
        flood, calm = stats.admission.port(ports["vm1"]), stats.admission.port(ports["vm2"])
        assert flood is not None and calm is not None
        assert (calm.admitted, calm.dropped) == (100, 0)
        # vm1 had its bucket and the root pool (32 + 256), then what the rounds made (20 x 20) less what vm2 took,
        # and less what refilled vm2's bucket without being used (32 at most)
        assert 32 + 256 + 400 - 100 - 32 <= flood.admitted <= 32 + 256 + 400 + 1
        assert flood.admitted + flood.dropped == 1 + 4000
        assert stats.dropped(AgentDrop.ADMISSION) == flood.dropped
        metrics = h1.agent.metrics()
        line = (f'midonet_agent_admission_dropped_total{{dp_port="{ports["vm1"]}",host="{h1.host_id}",kind="vm"}} '
                f"{float(flood.dropped)}")
        assert line in metrics.splitlines()
        assert f'midonet_agent_drops_total{{host="{h1.host_id}",reason="admission"}} {float(flood.dropped)}' \
            in metrics.splitlines()


def test_the_flooding_vm_gets_what_the_others_leave() -> None:
    config = AgentConfig(admission=AdmissionConfig(rate=RATE))
    with FakeCloud(config=config) as cloud:
        h1, _ = build(cloud)
        h1.inject("vm1", new_flow("vm1", 1000))
        cloud.settle()
        before = h1.agent.statistics().admission.admitted
        cloud.clock.advance(1.0)                            # 1,000 tokens, the pool holds 256 of them
        for n in range(2000):
            h1.inject("vm1", new_flow("vm1", 30_000 + n))
        admitted = h1.agent.statistics().admission.admitted - before
        assert 256 <= admitted <= 256 + 32                  # the pool, plus what was left in its bucket
