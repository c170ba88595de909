"""Whether a loopback TCP connection comes from this very process.

A named pipe (Windows) or a unix socket is private to its user; a loopback TCP port is open to every account on the
computer. The pipe relay therefore serves only connections that this process made itself, which the operating
system can tell: the TCP table names the process that owns each connection (Windows ``GetExtendedTcpTable``; Linux
``/proc/net/tcp`` and this process's open sockets).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def is_this_process(client: tuple[str, int], server: tuple[str, int]) -> bool:
    """True when the connection from ``client`` to our listening ``server`` was opened by this process."""
    try:
        return _owned_by_us(client[1], server[1])
    except OSError as err:
        log.warning("could not tell who opened the connection from %s: %s", client, err)
        return False


if sys.platform == "win32":
    def _owned_by_us(client_port: int, server_port: int) -> bool:
        return _windows_owner(client_port, server_port) == os.getpid()
elif sys.platform == "linux":
    def _owned_by_us(client_port: int, server_port: int) -> bool:
        return _linux_is_ours(client_port, server_port)
else:
    def _owned_by_us(client_port: int, server_port: int) -> bool:
        log.warning("cannot tell who opened a TCP connection on %s; refusing it", sys.platform)
        return False


def _linux_is_ours(client_port: int, server_port: int, proc_root: Path = Path("/proc")) -> bool:
    inode = ""
    for line in (proc_root / "net" / "tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, remote = fields[1], fields[2]
        if int(local.rsplit(":", 1)[1], 16) == client_port and int(remote.rsplit(":", 1)[1], 16) == server_port:
            inode = fields[9]
            break
    if not inode or inode == "0":
        return False
    wanted = f"socket:[{inode}]"
    fds = proc_root / "self" / "fd"
    for fd in fds.iterdir():
        try:
            if str(fd.readlink()) == wanted:
                return True
        except OSError:
            continue
    return False


def _windows_owner(client_port: int, server_port: int) -> int | None:
    """The pid that owns the IPv4 TCP connection whose local port is ``client_port`` and remote ``server_port``."""
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        class Row(ctypes.Structure):  # MIB_TCPROW_OWNER_PID
            _fields_ = [
                ("state", wintypes.DWORD), ("local_addr", wintypes.DWORD), ("local_port", wintypes.DWORD),
                ("remote_addr", wintypes.DWORD), ("remote_port", wintypes.DWORD), ("owning_pid", wintypes.DWORD),
            ]

        tcp_table_owner_pid_connections = 4
        insufficient_buffer = 122
        get_table = ctypes.windll.iphlpapi.GetExtendedTcpTable
        size = wintypes.DWORD(0)
        get_table(None, ctypes.byref(size), False, socket.AF_INET, tcp_table_owner_pid_connections, 0)
        for _attempt in range(5):  # the table can grow between the size query and the read
            buffer = ctypes.create_string_buffer(size.value + 16 * ctypes.sizeof(Row))
            size = wintypes.DWORD(ctypes.sizeof(buffer))
            status = get_table(buffer, ctypes.byref(size), False, socket.AF_INET, tcp_table_owner_pid_connections, 0)
            if status == 0:
                break
            if status != insufficient_buffer:
                raise OSError(f"GetExtendedTcpTable failed with {status}")
        else:
            raise OSError("GetExtendedTcpTable kept growing")
        count = wintypes.DWORD.from_buffer(buffer).value
        rows = (Row * count).from_buffer(buffer, ctypes.sizeof(wintypes.DWORD))
        for row in rows:
            # Ports are in network byte order in the low 16 bits.
            if socket.ntohs(row.local_port & 0xFFFF) == client_port and \
                    socket.ntohs(row.remote_port & 0xFFFF) == server_port:
                return int(row.owning_pid)
        return None
    return None
