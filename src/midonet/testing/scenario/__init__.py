"""Scenario files: a deployment and its traffic, described once, played by `midonet sandbox` (fake hosts in one
process) and, later, by `midonet testbed` (network namespaces). The format is documented in `docs/sandbox.md`.

    source   -- YAML -> plain values, with the line of every value; `ScenarioError` (file, line, place, what)
    model    -- the typed records: `Scenario`, `HostSpec`, `ObjectSpec`, `VmSpec`, the steps; `REFERENCES`
    parse    -- text -> `Scenario`, checking everything that can be checked before running (names, kinds, specs)
    packets  -- a send's packet from a spec and the VM's own defaults; an expectation's keys matched on a capture
    deploy   -- `Deployment`: hosts, tunnel zone, topology, bindings and API steps through the typed REST client
    report   -- `StepResult` per step, `check_send` for expectations, the text and JSON reports

Nothing here knows about fake hosts: a runner (`midonet.testing.sandbox`) brings the hosts and VMs, captures what
each VM receives during a step, and hands the captures to `report.check_send`.

May import: `midonet.client`, `midonet.simulation.packetspec`.
"""
