"""The testbed: hosts and VMs as network namespaces on a shared underlay, real `midonet agent` processes, a
ZooKeeper and a `midonet api` process (see `testbed.testbed`).

May import: `midonet.packets`, `midonet.testing.zookeeper` (the ZooKeeper launcher, which imports nothing of ours);
everything else it runs as processes (`ip`, `nsenter`, `midonet agent`, `midonet api`).
"""

from midonet.testbed.testbed import Host, Testbed, TestbedError, Vm, cleanup, unavailable

__all__ = ["Host", "Testbed", "TestbedError", "Vm", "cleanup", "unavailable"]
