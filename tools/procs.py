"""Reading /proc: the one walker of processes, their state, command line and environment (the
tools, the tests and the fault suite)."""

import os
from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")


def pids() -> Iterator[int]:
    """Every process id /proc shows now."""
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: [0] the state, [1] the parent's pid.
    Raises OSError when the process is gone."""
    return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def cpu_s(pid: int) -> float:
    """The process's CPU time so far, user and system (utime, stime), in seconds. Raises OSError when
    it is gone."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def state(pid: int) -> str | None:
    """The process's state letter (R, S, Z, ...), or None when it is gone."""
    try:
        return stat_fields(pid)[0]
    except OSError:
        return None


def parent_pid(pid: int) -> int:
    """The pid of the process's parent."""
    return int(stat_fields(pid)[1])


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed process stays one until its parent reaps it)."""
    return state(pid) not in (None, "Z", "X")


def cmdline(pid: int) -> str:
    """The process's command line, arguments joined by spaces. Raises OSError when it is gone."""
    return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def cwd(pid: int) -> str:
    """The process's working directory. Raises OSError when it is gone or not ours to read."""
    return os.readlink(PROC / str(pid) / "cwd")


def name(pid: int) -> str:
    """The process's name (/proc/<pid>/comm). Raises OSError when it is gone or not ours to read."""
    return (PROC / str(pid) / "comm").read_text().strip()


def environment(pid: int) -> list[bytes]:
    """The process's environment block, NAME=VALUE entries. Raises OSError when gone or not ours."""
    return (PROC / str(pid) / "environ").read_bytes().split(b"\0")


def socket_inodes(pid: int) -> set[str]:
    """The `socket:[inode]` links of the process's open files. Raises OSError when gone or not ours."""
    return {os.readlink(fd) for fd in (PROC / str(pid) / "fd").iterdir()}
