"""The datapath: where packets are forwarded at speed, driven by the agent.

    base     -- the `Datapath` protocol, flow keys and actions, upcalls, stats (the contract)
    memory/  -- fake hosts wired by an in-memory underlay: a real flow table that forwards (tests, sandbox,
                scale runs); a product, not a mock
    linux/   -- the tc-BPF fast path: C programs loaded by `tc`, maps through bpf(), an upcall channel,
                VXLAN collect_md tunnels (root)

May import: `midonet.packets`. Every backend passes one conformance suite, `midonet.testing.datapath_conformance`,
run by tests/contract/test_datapath_contract.py. Design notes: docs/design/datapath.md.
"""
