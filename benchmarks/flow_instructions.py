"""Instructions a new flow costs the agent, counted by valgrind: a figure this shared machine does not move.

The timed benchmarks (`datapath_bench.py`, `agent_bench.py`) swing by up to 2x from one minute to the next on these
virtual machines, so a change worth 2-5% of a new flow cannot be seen in them. Instructions can: callgrind counts
the same total for the same code and inputs whatever else the machine does. This runs `agent_bench`'s world (one
host, 20 VMs on the memory datapath, a router between two bridges whose inbound filter reads the L4 destination
port) twice under `valgrind --tool=callgrind`: once with no new flows, once with 2 x `--flows` (each pair of VMs
sends a first packet, then one to a new destination port: both are new flows through bridge, router, chain and
bridge, installed and executed), and prints the difference per new flow. `PYTHONHASHSEED` is fixed.

    .venv/bin/python benchmarks/flow_instructions.py [--flows 1000]

Needs valgrind (apt-get install valgrind). Takes about a minute. Instructions are not time (a cache miss costs
hundreds of instructions' worth in place); use it to compare code, and `datapath_bench.py` for rates.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_flows(count: int) -> None:
    """In the process valgrind watches: the world, then `count` pairs' two new flows each."""
    sys.path.insert(0, str(HERE))
    import agent_bench as ab

    logging.getLogger("midonet").setLevel(logging.ERROR)
    world = ab.build(1, 20)
    chosen = ab.pairs(world, count) if count else []
    for src, dst in chosen:
        src.send(world.frame(src, dst, 3))
    for i, (src, dst) in enumerate(chosen):
        src.send(world.frame(src, dst, 10_000 + i))
    world.cloud.settle(120)
    gc.collect()
    os._exit(0)   # no teardown counted


def instructions(count: int) -> int:
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           __file__, "--child", str(count)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {done.stderr[-500:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=1000, help="pairs of new flows in the measured run")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        run_flows(args.child)
    if shutil.which("valgrind") is None:
        print("cannot run: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    base, measured = instructions(0), instructions(args.flows)
    flows = 2 * args.flows
    print(f"{(measured - base) / flows:,.0f} instructions a new flow ({flows} new flows: {measured:,} - {base:,} "
          "instructions, callgrind)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
