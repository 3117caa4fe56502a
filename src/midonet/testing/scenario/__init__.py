"""Scenario files: a deployment and its traffic, described once, played by `midonet sandbox` (fake hosts in one
process) and by `midonet testbed run` (network namespaces, `testing.testbed_run`). The format is documented in
`docs/sandbox.md`.

    model    -- the typed records: `Scenario`, `HostSpec`, `ObjectSpec`, `VmSpec`, the steps; `REFERENCES`;
                places in the file and `ScenarioError` (file, line, place, what)
    parse    -- YAML text -> `Scenario` (lines kept), checking everything that can be checked before running
    deploy   -- `Deployment`: hosts, tunnel zone, topology, bindings and API steps through the typed REST client
    checks   -- a send's packet from its spec and the VM's defaults; expectations judged on what each VM captured;
                `StepResult` per step and the text and JSON `Report`

Nothing here knows about fake hosts: a runner (`midonet.testing.sandbox`) brings the hosts and VMs, captures what
each VM receives during a step, and hands the captures to `checks.check_send`.

May import: `midonet.client`, `midonet.simulation.packetspec`.
"""
