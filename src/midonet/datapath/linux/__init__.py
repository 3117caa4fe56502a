"""The Linux datapath: tc-BPF programs as the fast path, driven through maps, with an upcall channel to the agent.

    bpf/dp.c    -- the program: parse, megaflow lookup (masks x one hash map), actions, counters, upcalls
    layout      -- the byte layouts shared with dp.c: keys, masks, actions, flows, counters, upcall header
    bpfmaps     -- BPF maps through the bpf() system call (ctypes): open pinned, lookup/update/delete/iterate
    kernel      -- the program's maps by name, typed
    flows       -- `FlowTable`: kernel megaflows with mask slots, and userspace flows for what dp.c cannot do
    loader      -- the object file (clang), our own bpffs, `tc` attach/detach with pinned programs
    links       -- netlink (pyroute2): the upcall veth, the VXLAN device, interface lookups
    netns       -- doing things inside a network namespace from the current thread
    packetsock  -- AF_PACKET sockets with PACKET_AUXDATA (VLAN tags back) and PACKET_VNET_HDR (offloads)
    offload     -- the virtio-net header: completing partial checksums, segmenting GSO packets
    upcalls     -- `UpcallChannel`: the upcall veth pair and its reader thread
    writer      -- `KernelWriter`: the process that writes new kernel flows and sends executed packets
    datapath    -- `LinuxDatapath`: the `Datapath` contract on all of the above
    interfaces  -- `LinuxInterfaceSource`: the host's interfaces and their link state, with change events

Design: docs/design/datapath.md, "The Linux backend"; facts about these kernels: notes/linux-datapath.md.
Needs root, iproute2's `tc` (with libbpf) and the compiled object (`make bpf`, or clang to build it on first use);
`unavailable()` says why not, for test skips.

May import: `midonet.packets`, `midonet.datapath.base`, `midonet.datapath.memory` (its pure action interpreter
and classifier), pyroute2.
"""

from midonet.datapath.linux.datapath import LinuxDatapath
from midonet.datapath.linux.interfaces import LinuxInterfaceSource
from midonet.datapath.linux.loader import toolchain_missing as unavailable

__all__ = ["LinuxDatapath", "LinuxInterfaceSource", "unavailable"]
