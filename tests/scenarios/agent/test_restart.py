"""An agent restarted as `midonet agent` restarts (detach, session closed, a new agent on the same datapath): its
peers keep tunnelling to its ports, its datapath keeps delivering both ways while no agent runs, and the new agent
takes over the inherited flows after their grace. The control: an agent that says a port is down (its interface
went) is believed at once.
"""

from __future__ import annotations

from midonet.agent.metrics import AgentDrop
from midonet.testing import frames
from midonet.topology.devices import Port
from midonet.topology.hosts import Host

from .conftest import L2Cloud


def _warm(l2: L2Cloud) -> tuple[bytes, bytes]:
    h1, h2, h3 = l2.hosts
    to_vm2 = frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], l2.ips[1])
    to_vm1 = frames.udp(l2.macs[1], l2.macs[0], l2.ips[1], l2.ips[0])
    for host, iface, frame in ((h1, "vm1", to_vm2), (h2, "vm2", to_vm1)):
        host.inject(iface, frame)
        l2.cloud.settle()
    for host, name in ((h1, "vm1"), (h2, "vm2"), (h3, "vm3")):
        host.take(name)
    return to_vm2, to_vm1


def test_traffic_crosses_an_agent_restart_both_ways(l2: L2Cloud) -> None:
    to_vm2, to_vm1 = _warm(l2)
    h1, h2, _h3 = l2.hosts
    cloud = l2.cloud
    h2.detach()
    cloud.settle()
    assert cloud.operator.get_state(Host, h2.host_id, "alive") is None
    assert cloud.operator.get_state(Port, l2.ports[1].id, "active") is None
    # No agent on h2: h1 still tunnels to vm2's port, and h2's datapath delivers and sends on its own.
    h1.inject("vm1", to_vm2)
    h2.inject("vm2", to_vm1)
    cloud.settle()
    assert h2.take("vm2") == [to_vm2] and h1.take("vm1") == [to_vm1]
    assert h1.agent.statistics().dropped(AgentDrop.NO_DESTINATION) == 0

    agent = h2.start_again()
    cloud.settle()
    assert agent.flows.inherited > 0
    state = cloud.operator.get_state(Host, h2.host_id, "alive")
    assert state is not None and '"bound": true' in state.value
    h1.inject("vm1", to_vm2)
    h2.inject("vm2", to_vm1)
    cloud.settle()
    assert h2.take("vm2") == [to_vm2] and h1.take("vm1") == [to_vm1]
    assert agent.statistics().upcalls == 0                 # the inherited flows still forward

    cloud.tick(agent.config.inherited_grace + 1)           # their grace is over: gone, simulated afresh
    assert agent.flows.inherited == 0
    h2.inject("vm2", to_vm1)
    cloud.settle()
    assert h1.take("vm1") == [to_vm1] and agent.statistics().upcalls == 1
    assert h1.agent.statistics().dropped(AgentDrop.NO_DESTINATION) == 0


def test_a_port_its_running_agent_withdrew_is_nowhere(l2: L2Cloud) -> None:
    to_vm2, _ = _warm(l2)
    h1, h2, _h3 = l2.hosts
    h2.set_link("vm2", False)
    l2.cloud.settle()
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()
    assert h1.agent.statistics().dropped(AgentDrop.NO_DESTINATION) == 1
