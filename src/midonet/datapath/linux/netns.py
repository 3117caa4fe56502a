"""Network namespaces for the Linux datapath: doing things inside one from the current thread.

Role: a datapath normally runs in its host's own namespace, but a test world (and a simulated multi-host
testbed) keeps each "host" in a network namespace of its own, and one process drives several of them. `setns(2)`
on a network namespace changes only the calling *thread*, and a socket stays in the namespace it was made in,
so::

    with entered("mn-host1"):           # this thread is in mn-host1 until the block ends
        sock = socket.socket(AF_PACKET, ...)   # a socket of mn-host1, usable from any thread afterwards

`entered(None)` does nothing (the current namespace). Namespaces are named as `ip netns` names them (a file
under /run/netns). Other threads never see the switch; an exception inside the block still switches back.

May import: the standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)
_setns = _libc.setns
_setns.restype = ctypes.c_int
_setns.argtypes = [ctypes.c_int, ctypes.c_int]


def _switch(fd: int) -> None:
    if _setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def path(netns: str) -> str:
    return os.path.join(NETNS_DIR, netns)


def exists(netns: str) -> bool:
    return os.path.exists(path(netns))


@contextlib.contextmanager
def entered(netns: str | None) -> Iterator[None]:
    """Run the block with this thread in network namespace `netns` (None: stay where it is)."""
    if netns is None:
        yield
        return
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path(netns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            _switch(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _switch(home)
    finally:
        os.close(home)

