"""Getting the tc-BPF program into the kernel: its object file, a bpffs of our own, `tc` on each interface.

Role: everything the Linux datapath does with files and `tc`. Three pieces:

    object_path() / ensure_object()   where bpf/dp.c is compiled (the Makefile's `make bpf` writes
                                      build/bpf/dp.o; a missing or stale object is compiled with clang here too)
    Bpffs(dir)                        a bpffs mounted on the datapath's state directory: `tc` pins the maps
                                      under dir/tc/globals (TC_BPF_MNT=dir), we pin the programs under dir/progs
    Tc(netns, bpffs, object)          clsact + one direct-action filter on an interface's ingress:
                                      `attach(ifname, section)`, `detach(ifname)`

The first `attach` of a section loads the object (the verifier runs, ~0.1 s) and pins the program it loaded as
progs/<section>-<digest of the object>; later ones attach the pinned program (`object-pinned`), which takes
milliseconds. A bpffs outlives the process that mounted it (that is how a restarted agent finds its flows):
`Bpffs.unmount` is for a real teardown. A restarted agent built with another object (an upgrade) finds pins of
another digest (`Tc.stale_pins`): the datapath attaches the new program everywhere (`tc filter replace`, no
packet lost, the pinned maps kept) and drops the old pins.

`ip netns exec` remounts /sys, so `tc` is pointed at our bpffs with TC_BPF_MNT (notes/linux-datapath.md), and
`tc -n NETNS` runs it in a test host's namespace.

Errors: `LoaderError` (a `RuntimeError`) with tc's or clang's message.

May import: `midonet.datapath.linux.bpfmaps`, the standard library.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from midonet.datapath.linux.bpfmaps import BpfError, pin_program

SOURCE = Path(__file__).resolve().parent / "bpf" / "dp.c"
OBJECT_ENV = "MIDONET_BPF_OBJECT"
PORT_SECTION = "mn_port"
TUNNEL_SECTION = "mn_tunnel"

_libc = ctypes.CDLL(None, use_errno=True)
_mount = _libc.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_umount2 = _libc.umount2
_umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
MNT_DETACH = 2


class LoaderError(RuntimeError):
    """The program could not be built, mounted or attached."""


# ---- the object file ----

def object_path() -> Path:
    """Where the compiled program is: $MIDONET_BPF_OBJECT, the source tree's build/bpf/dp.o, or a user cache."""
    explicit = os.environ.get(OBJECT_ENV)
    if explicit:
        return Path(explicit)
    root = SOURCE.parents[5]   # src/midonet/datapath/linux/bpf/dp.c -> the repository
    if (root / "Makefile").exists() and (root / "src").is_dir():
        return root / "build" / "bpf" / "dp.o"
    return Path.home() / ".cache" / "midonet" / "bpf" / "dp.o"


def compile_command(source: Path, target: Path) -> list[str]:
    arch_include = f"/usr/include/{platform.machine()}-linux-gnu"
    return ["clang", "-O2", "-g", "-Wall", "-target", "bpf", f"-I{arch_include}", "-c", str(source), "-o", str(target)]


def ensure_object(path: Path | None = None) -> Path:
    """The compiled program, compiled now if it is missing or older than its source; LoaderError without clang."""
    target = path or object_path()
    if target.exists() and (not SOURCE.exists() or target.stat().st_mtime >= SOURCE.stat().st_mtime):
        return target
    if shutil.which("clang") is None:
        raise LoaderError(f"{target} is missing and clang is not installed (apt-get install clang libbpf-dev)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run(compile_command(SOURCE, partial), capture_output=True, text=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise LoaderError(f"clang failed on {SOURCE}:\n{done.stderr}")
    partial.replace(target)
    return target


def toolchain_missing() -> str | None:
    """Why the Linux datapath cannot run here (for test skips), or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("tc", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} (iproute2) is not installed"
    if not object_path().exists() and shutil.which("clang") is None:
        return "clang is not installed and the BPF object is not built (make bpf)"
    if not Path("/sys/kernel/btf/vmlinux").exists() and not Path("/proc/sys/net/core/bpf_jit_enable").exists():
        return "this kernel has no BPF"
    return None


# ---- bpffs ----

def is_bpffs(path: Path) -> bool:
    """Whether `path` is the mount point of a bpffs (in this process's mount namespace)."""
    target = str(path.resolve())
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            separator = fields.index("-")
            if fields[4] == target and fields[separator + 1] == "bpf":
                return True
    return False


class Bpffs:
    """A bpffs mounted on a directory of our own (created if needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def globals(self) -> Path:
        """Where `tc` pins the maps."""
        return self.path / "tc" / "globals"

    @property
    def progs(self) -> Path:
        return self.path / "progs"

    @property
    def mounted(self) -> bool:
        return self.path.exists() and is_bpffs(self.path)

    def mount(self) -> None:
        """Mount it unless it already is (a restarted agent finds the old one, pins and all)."""
        if self.mounted:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        if _mount(b"bpf", os.fsencode(self.path), b"bpf", 0, None) != 0:
            code = ctypes.get_errno()
            raise LoaderError(f"mount -t bpf {self.path}: {os.strerror(code)}")

    def unmount(self) -> None:
        """Unmount (dropping every pin: maps and programs go once nothing else holds them) and remove the dir."""
        while self.path.exists() and is_bpffs(self.path):
            if _umount2(os.fsencode(self.path), MNT_DETACH) != 0:
                code = ctypes.get_errno()
                raise LoaderError(f"umount {self.path}: {os.strerror(code)}")
        try:
            self.path.rmdir()
        except FileNotFoundError:
            pass


# ---- tc ----

_PROGRAM_ID = re.compile(r"\bid (\d+)\b")


class Tc:
    """`tc` on the interfaces of one namespace, with our bpffs; see the module docstring."""

    def __init__(self, netns: str | None, bpffs: Bpffs, obj: Path) -> None:
        self._netns = netns
        self._bpffs = bpffs
        self._object = obj
        self._digest = hashlib.sha256(obj.read_bytes()).hexdigest()[:16]

    def _pin(self, section: str) -> Path:
        return self._bpffs.progs / f"{section}-{self._digest}"

    def stale_pins(self) -> list[Path]:
        """Programs pinned from another object than this one (an agent of another build ran here)."""
        if not self._bpffs.progs.exists():
            return []
        return sorted(p for p in self._bpffs.progs.iterdir() if not p.name.endswith(f"-{self._digest}"))

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = ["tc", *(("-n", self._netns) if self._netns else ()), *args]
        env = {**os.environ, "TC_BPF_MNT": str(self._bpffs.path)}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if check and done.returncode != 0:
            raise LoaderError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def attach(self, ifname: str, section: str) -> None:
        """Run program `section` on `ifname`'s ingress (replacing what ran there)."""
        self._run("qdisc", "replace", "dev", ifname, "clsact")
        pinned = self._pin(section)
        if pinned.exists():
            self._run("filter", "replace", "dev", ifname, "ingress", "pref", "1", "handle", "1", "bpf", "da",
                      "object-pinned", str(pinned))
            return
        self._run("filter", "replace", "dev", ifname, "ingress", "pref", "1", "handle", "1", "bpf", "da", "obj",
                  str(self._object), "sec", section)
        shown = self._run("filter", "show", "dev", ifname, "ingress").stdout
        found = _PROGRAM_ID.search(shown)
        if found is None:
            raise LoaderError(f"tc shows no program on {ifname}: {shown!r}")
        self._bpffs.progs.mkdir(exist_ok=True)
        try:
            pin_program(int(found.group(1)), str(pinned))
        except BpfError as e:
            raise LoaderError(f"pinning program {section}: {e}") from e

    def attached(self, ifname: str) -> bool:
        done = self._run("filter", "show", "dev", ifname, "ingress", check=False)
        return done.returncode == 0 and _PROGRAM_ID.search(done.stdout) is not None

    def detach(self, ifname: str) -> None:
        """Remove the clsact qdisc (and our filter with it); nothing if the interface or qdisc is gone."""
        self._run("qdisc", "del", "dev", ifname, "clsact", check=False)
