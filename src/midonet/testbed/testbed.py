"""`Testbed`: a small MidoNet cloud on one machine, made of network namespaces and real processes.

    mn-underlay             the underlay: a Linux bridge `mn-br`; every host's `ul0` and the root's link on it
    (root namespace)        `mn-ul-root` = 10.99.0.254/24 on the underlay: the ZooKeeper server and the
                            `midonet api` process listen there (a host namespace cannot reach the root's
                            loopback, so the root namespace joins the underlay instead; nothing listens on
                            any other address)
    mn-h<N>                 a host: `ul0` = 10.99.0.N/24, and a real `midonet agent` process entered into the
                            namespace with `nsenter --net` (so its bpffs, under /run/mn-testbed/h<N>/bpffs, is a
                            mount of the root mount namespace the testbed can remove); log in /run/mn-testbed
    mn-vm<N>                a VM: `eth0` (MAC, IP/prefix, MTU, default route via the gateway, IPv6 off unless
                            asked for: a quiet VM sends only what its tests send); its peer is the
                            interface `mn-vm<N>` in its host's namespace, the one to bind a port to

    with Testbed() as tb:
        h1, h2 = tb.add_host(), tb.add_host()
        vm1 = tb.add_vm(h1, "10.0.0.1/24")
        ... (the API at tb.api_url, user admin / tb.password: register the tunnel zone, bind ports)
        vm1.run("ping", "-c", "3", "10.0.0.2")

`down()` (also on leaving the `with`, and on a failed start) ends every process it started by its PID (SIGTERM,
then SIGKILL), unmounts the bpffs mounts, deletes the namespaces (their links go with them) and the root's
underlay link, and removes /run/mn-testbed. `cleanup()` does the same for leftovers of a testbed that died: the
namespaces and links named `mn-underlay`, `mn-h<N>`, `mn-vm<N>`, `mn-ul-root` (exactly those: other `mn-` names
belong to other tests) and the mounts under /run/mn-testbed; it ends no process it did not start (a leftover
agent's namespace is deleted under it and its process exits on its own or is left to its owner).

One testbed per machine (the names are fixed): a running testbed holds an flock on /run/mn-testbed.lock (with its
PID inside); a second `up()`, and `cleanup()`, refuse while it is held, so cleaning up never removes a live
testbed. The lock goes with its process, so a testbed whose process was killed leaves leftovers to `cleanup()`.

May import: `midonet.packets`, `midonet.testing.zookeeper`; everything else runs as processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from midonet.testing.zookeeper import ZooKeeperServer, free_port
from midonet.testing.zookeeper import unavailable_reason as zookeeper_unavailable

UNDERLAY_NS = "mn-underlay"
UNDERLAY_BRIDGE = "mn-br"
ROOT_LINK = "mn-ul-root"
ROOT_ADDRESS = "10.99.0.254"
UNDERLAY_PREFIX = "10.99.0"
STATE_ROOT = Path("/run/mn-testbed")
LOCK = Path("/run/mn-testbed.lock")
OURS = re.compile(r"^mn-(underlay|h\d+|vm\d+|ul-root)$")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class TestbedError(RuntimeError):
    """A command or a process of the testbed failed; the message says which and why."""

    __test__ = False


def unavailable() -> str | None:
    """Why a testbed cannot run here (for test skips), or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", "tc", "nsenter", "ping"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if shutil.which("clang") is None:
        return "clang is not installed (the Linux datapath builds its BPF program with it)"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "this kernel has no BPF (no /sys/kernel/btf/vmlinux)"
    return zookeeper_unavailable()


def midonet_command() -> list[str]:
    """The `midonet` command of this interpreter's environment."""
    script = Path(sys.executable).parent / "midonet"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from midonet.cli.main import main; main()"]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise TestbedError(f"{' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def netns_names() -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def in_ns(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *args)


def _end(process: subprocess.Popen[bytes]) -> None:
    """End a process we started, by its PID: SIGTERM, then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)


def _unmount_under(root: Path) -> None:
    """Unmount (lazily) every mount at or below `root`, deepest first."""
    target = str(root)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p == target or p.startswith(target + "/")), key=len, reverse=True):
        sh("umount", "-l", point, check=False)


def _lock(wait: float = 0.0) -> int:
    """Take the testbed lock (one testbed per machine: the names are fixed), waiting for it up to `wait` seconds;
    its fd. TestbedError if still taken."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise TestbedError(f"another testbed is running (process {holder or '?'} holds {LOCK})") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)


def cleanup() -> list[str]:
    """Remove the leftovers of testbeds (see the module docstring); the names removed. TestbedError while a
    testbed is running (its process holds the lock): a live testbed is not a leftover."""
    fd = _lock()
    try:
        return _remove_leftovers()
    finally:
        _unlock(fd)


def _remove_leftovers() -> list[str]:
    removed = []
    _unmount_under(STATE_ROOT)
    for ns in netns_names():
        if OURS.match(ns):
            sh("ip", "netns", "del", ns, check=False)
            removed.append(ns)
    if sh("ip", "link", "show", ROOT_LINK, check=False).returncode == 0:
        sh("ip", "link", "del", ROOT_LINK, check=False)
        removed.append(ROOT_LINK)
    shutil.rmtree(STATE_ROOT, ignore_errors=True)
    return removed


@dataclass
class Host:
    """A host namespace running an agent."""

    index: int
    host_id: str
    netns: str
    address: str                      # on the underlay (the tunnel-zone address to give it)
    bpffs: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return in_ns(self.netns, *args)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop_agent(self) -> int | None:
        """SIGTERM the agent (SIGKILL if it does not end in time); its exit status (None: never started)."""
        if self.process is None:
            return None
        _end(self.process)
        return self.process.returncode

    def kill_agent(self) -> int | None:
        """SIGKILL the agent (a crash: its datapath and store session are left as they are); its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)
        return self.process.returncode

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""


@dataclass
class Vm:
    """A VM namespace: `eth0`, whose peer `interface` is in its host's namespace."""

    index: int
    netns: str
    host: Host
    interface: str
    mac: str
    address: str | None               # IP/prefix (None: a VM with no address, e.g. a mirror's monitor)
    gateway: str | None
    mtu: int

    @property
    def ip(self) -> str:
        if self.address is None:
            raise TestbedError(f"{self.netns} has no address")
        return self.address.split("/")[0]

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.netns, *args, check=check)

    def ping(self, ip: str, count: int = 3, wait: int = 2) -> subprocess.CompletedProcess[str]:
        return self.run("ping", "-c", str(count), "-W", str(wait), "-i", "0.2", ip)


@dataclass
class Testbed:
    """See the module docstring. A context manager: `up()` on enter, `down()` on exit."""

    __test__ = False      # not a pytest test class, whatever its name

    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    hosts: list[Host] = field(default_factory=list)
    vms: list[Vm] = field(default_factory=list)
    zookeeper: ZooKeeperServer | None = None
    api_process: subprocess.Popen[bytes] | None = None
    api_port: int = 0
    zk_root: str = "/mn-testbed"
    lock_wait: float = 0.0            # seconds `up()` waits for another testbed to finish (the lock)
    _lock_fd: int | None = None

    @property
    def api_url(self) -> str:
        return f"http://{ROOT_ADDRESS}:{self.api_port}/midonet-api"

    @property
    def store_url(self) -> str:
        assert self.zookeeper is not None
        return f"zookeeper://{self.zookeeper.hosts}{self.zk_root}"

    # ---- life ----

    def up(self) -> Testbed:
        self._lock_fd = _lock(self.lock_wait)
        leftovers = [ns for ns in netns_names() if OURS.match(ns)]
        if leftovers:
            _unlock(self._lock_fd)
            self._lock_fd = None
            raise TestbedError(f"leftovers of a testbed that died: {', '.join(leftovers)} (run cleanup())")
        try:
            STATE_ROOT.mkdir(parents=True, exist_ok=True)
            self._underlay()
            self.zookeeper = ZooKeeperServer(address=ROOT_ADDRESS)
            self.zookeeper.start()
            self._api()
        except BaseException:
            self.down()
            raise
        return self

    def __enter__(self) -> Testbed:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def down(self) -> None:
        """Remove everything this testbed made; every step runs whatever fails before it."""
        errors: list[str] = []

        def attempt(step: object, *args: object) -> None:
            try:
                step(*args)  # type: ignore[operator]
            except Exception as e:  # keep going: the rest must be removed too
                errors.append(str(e))

        for host in self.hosts:
            if host.process is not None:
                attempt(_end, host.process)
        if self.api_process is not None:
            attempt(_end, self.api_process)
        if self.zookeeper is not None:
            attempt(self.zookeeper.stop)
        attempt(_unmount_under, STATE_ROOT)
        present = set(netns_names())
        for ns in [vm.netns for vm in self.vms] + [host.netns for host in self.hosts] + [UNDERLAY_NS]:
            if ns in present:     # a failed start may not have made it
                attempt(sh, "ip", "netns", "del", ns)
        if sh("ip", "link", "show", ROOT_LINK, check=False).returncode == 0:
            attempt(sh, "ip", "link", "del", ROOT_LINK)
        shutil.rmtree(STATE_ROOT, ignore_errors=True)
        self.hosts, self.vms, self.zookeeper, self.api_process = [], [], None, None
        if self._lock_fd is not None:
            _unlock(self._lock_fd)
            self._lock_fd = None
        if errors:
            raise TestbedError("; ".join(errors))

    # ---- the parts ----

    def _underlay(self) -> None:
        sh("ip", "netns", "add", UNDERLAY_NS)
        in_ns(UNDERLAY_NS, "ip", "link", "set", "lo", "up")
        in_ns(UNDERLAY_NS, "ip", "link", "add", UNDERLAY_BRIDGE, "type", "bridge")
        in_ns(UNDERLAY_NS, "ip", "link", "set", UNDERLAY_BRIDGE, "up")
        sh("ip", "link", "add", ROOT_LINK, "type", "veth", "peer", "name", "root", "netns", UNDERLAY_NS)
        in_ns(UNDERLAY_NS, "ip", "link", "set", "root", "master", UNDERLAY_BRIDGE, "up")
        sh("ip", "addr", "add", f"{ROOT_ADDRESS}/24", "dev", ROOT_LINK)
        sh("ip", "link", "set", ROOT_LINK, "up")

    def _api(self) -> None:
        self.api_port = free_port()
        data = STATE_ROOT / "api"
        data.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MIDONET_ADMIN_PASSWORD": self.password}
        with open(STATE_ROOT / "api.log", "wb") as log:
            self.api_process = subprocess.Popen(
                [*midonet_command(), "api", "--listen", f"{ROOT_ADDRESS}:{self.api_port}", "--store",
                 self.store_url, "--data-dir", str(data)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.api_process.poll() is not None:
                raise TestbedError(f"midonet api exited: {(STATE_ROOT / 'api.log').read_text()[-2000:]}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex((ROOT_ADDRESS, self.api_port)) == 0:
                    return
            if time.monotonic() > deadline:
                raise TestbedError("midonet api did not start listening")
            time.sleep(0.1)

    def add_host(self, name: str | None = None) -> Host:
        index = len(self.hosts) + 1
        ns = f"mn-h{index}"
        state = STATE_ROOT / f"h{index}"
        state.mkdir(parents=True, exist_ok=True)
        host = Host(index, str(uuid.uuid4()), ns, f"{UNDERLAY_PREFIX}.{index}", state / "bpffs", state / "agent.log")
        self.hosts.append(host)
        sh("ip", "netns", "add", ns)
        host.run("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", f"mn-ul{index}", "netns", UNDERLAY_NS, "type", "veth", "peer", "name", "ul0",
           "netns", ns)
        in_ns(UNDERLAY_NS, "ip", "link", "set", f"mn-ul{index}", "master", UNDERLAY_BRIDGE, "up")
        host.run("ip", "addr", "add", f"{host.address}/24", "dev", "ul0")
        host.run("ip", "link", "set", "ul0", "up")
        self.start_agent(host, name or ns)
        return host

    def start_agent(self, host: Host, name: str | None = None) -> None:
        """Start the host's `midonet agent` (again, after `Host.stop_agent`: it reattaches to its bpffs)."""
        if host.alive():
            raise TestbedError(f"the agent of {host.netns} is running")
        state = host.bpffs.parent
        with open(host.log, "ab") as log:
            host.process = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{host.netns}", *midonet_command(), "agent", "--store",
                 self.store_url, "--host-id", host.host_id, "--host-name", name or host.netns,
                 "--bpffs", str(host.bpffs), "--data-dir", str(state / "data"), "--tunnel-ip", host.address],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def add_vm(self, host: Host, address: str | None, *, mac: str | None = None, gateway: str | None = None,
               mtu: int = 1500, ipv6: bool = False) -> Vm:
        index = len(self.vms) + 1
        ns = f"mn-vm{index}"
        mac = mac or f"02:00:00:00:{index // 256:02x}:{index % 256:02x}"
        vm = Vm(index, ns, host, f"mn-vm{index}", mac, address, gateway, mtu)
        self.vms.append(vm)
        sh("ip", "netns", "add", ns)
        vm.run("ip", "link", "set", "lo", "up", check=True)
        if not ipv6:   # no router solicitations, MLD reports or DAD from the VM unless asked for
            vm.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                   check=True)
        sh("ip", "link", "add", vm.interface, "netns", host.netns, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        host.run("ip", "link", "set", vm.interface, "mtu", str(mtu), "up")
        vm.run("ip", "link", "set", "eth0", "address", mac, "mtu", str(mtu), check=True)
        if address is not None:
            vm.run("ip", "addr", "add", address, "dev", "eth0", check=True)
        vm.run("ip", "link", "set", "eth0", "up", check=True)
        if gateway is not None:
            vm.run("ip", "route", "add", "default", "via", gateway, check=True)
        return vm
