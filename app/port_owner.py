"""Which jobping data dir started the server listening on a port, when this user's processes can tell.

Two data dirs on one port meet at the Prefect server: the second is refused the first's
password, and `jobping stack down` in the second cannot stop a server it did not start. The
listening process is found through Linux's /proc (its socket's inode, then the process holding
it) and its environment names the data dir that started it, as the stack sets it for every
process. Only this user's processes are looked at; elsewhere (macOS, another user) nothing is
found and the caller says what it can without it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")
# the socket tables of /proc/net: one listening socket per line, ipv4 and ipv6
SOCKET_TABLES = ("tcp", "tcp6")
# a socket's state in those tables: 0A is TCP_LISTEN
LISTEN_STATE = "0A"
DATA_DIR_VARIABLE = b"JOBPING_DATA_DIR"


def _listening_inodes(port: int, uid: int) -> set[str]:
    """The inodes of the sockets of user ``uid`` that listen on ``port``, on any address."""
    inodes: set[str] = set()
    for table in SOCKET_TABLES:
        try:
            lines = (PROC / "net" / table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # sl, local_address, rem_address, st, tx:rx, tr:when, retrnsmt, uid, timeout, inode
            if len(fields) < 10 or fields[3] != LISTEN_STATE or fields[7] != str(uid):
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _own_pids(uid: int) -> Iterator[int]:
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                yield int(entry.name)
        except OSError:
            continue


def listening_pids(port: int) -> list[int]:
    """The pids of this user's processes that hold a socket listening on ``port`` (none off Linux)."""
    uid = os.getuid()
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port, uid)}
    if not wanted:
        return []
    found = []
    for pid in _own_pids(uid):
        try:
            fds = list((PROC / str(pid) / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    found.append(pid)
                    break
            # a descriptor closes while it is looked at
            except OSError:
                continue
    return sorted(found)


def data_dir_of(pid: int) -> Path | None:
    """The JOBPING_DATA_DIR a process was started with (our stack sets it for each), else None."""
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        name, _, value = entry.partition(b"=")
        if name == DATA_DIR_VARIABLE and value:
            return Path(os.fsdecode(value))
    return None


def data_dir_on_port(port: int) -> Path | None:
    """The data dir whose jobping started the server listening on ``port``, when it can be told."""
    for pid in listening_pids(port):
        found = data_dir_of(pid)
        if found is not None:
            return found
    return None


def refused(port: int, data_dir: Path, password_from: str, auth_variable: str) -> str:
    """What to do about a server on ``port`` that refuses ``data_dir``'s password: whose it is, when that can be told.

    ``password_from`` says where the refused password came from, ``auth_variable`` what sets another.
    """
    owner = data_dir_on_port(port)
    if owner is None or owner == data_dir:
        whose = "" if owner is None else f" (started from this data dir, {owner})"
        return (
            f"the Prefect server on port {port}{whose} refuses jobping's password (from {password_from}): set "
            f"{auth_variable} to the password it was started with, stop it to start it again with this one "
            "(`jobping stack down` if this data dir started it), or set JOBPING_PREFECT_PORT to another port"
        )
    # `jobping stack down` here would stop nothing: that server's pid is recorded in the other data dir
    return (
        f"port {port} is taken by the Prefect server of the data dir {owner}, which refuses this data dir's "
        f"password (from {password_from}): set JOBPING_PREFECT_PORT to another port for {data_dir}, or stop "
        f"that server with `JOBPING_DATA_DIR={shlex.quote(str(owner))} jobping stack down`"
    )
