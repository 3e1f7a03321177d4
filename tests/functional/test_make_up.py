"""`make up` as a new user meets it: the README's command blocks against it, a second start and a
taken port refused in one line, and nothing of it left once it is SIGKILLed.

One `make up` (stage local, on a free port) serves the module; the services are the session's.
"""

import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.functional.conftest import closed_port
from tests.support.waiting import wait_for
from tools import procs
from tools.devstack.processes import port_in_use
from tools.stage import ROOT

README = ROOT / "README.md"
README_SECTIONS = ("Quick start", "Try it")  # their sh blocks run against make up, in order
UP_TIMEOUT_S = 120  # services are already up: bootstrap, budget, the API's start
CHILDREN = (
    "tools.devstack.serve",
    "tools.devstack.chalice_local",
    "tools.devstack.local_consumer",
    "tools.devstack.local_schedule",
)


@dataclass
class MakeUp:
    make: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def processes_of_this_checkout(names: tuple[str, ...] = CHILDREN) -> list[str]:
    """Live processes run from this checkout (their working directory) for stage local: make up's
    own, its API, consumer and schedule."""
    found = []
    for pid in procs.pids():
        try:
            cmd, directory = procs.cmdline(pid), procs.cwd(pid)
        except OSError:
            continue
        ours = procs.running(pid) and directory == str(ROOT) and "--stage local" in cmd
        if ours and any(f"-m {name} " in cmd for name in names):
            found.append(f"{pid}: {cmd}")
    return found


def start_make_up(tmp: Path, port: int) -> MakeUp:
    log = tmp / f"make-up-{port}.log"
    with open(log, "wb") as out:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "up", f"PORT={port}"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal of its own, as a user's make up has
        )
    up = MakeUp(make, port, log)
    wait_for(lambda: "sluice is up" in up.output() or make.poll() is not None, UP_TIMEOUT_S)
    assert "sluice is up" in up.output(), up.output()
    return up


@pytest.fixture(scope="module")
def make_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeUp]:
    up = start_make_up(tmp_path_factory.mktemp("make-up"), closed_port())
    yield up
    if up.make.poll() is None:
        os.killpg(up.make.pid, signal.SIGINT)  # Ctrl-C in its terminal
        up.make.wait(timeout=60)


# --- refusals ------------------------------------------------------------------------------


def refused(args: list[str]) -> str:
    """Run a make command expected to refuse; what it printed."""
    ran = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ran.returncode != 0
    return ran.stdout + ran.stderr


def own_lines(output: str) -> list[str]:
    """The lines tools.devstack.serve printed: after make's echo of its command (setup may print before it),
    without make's closing error."""
    lines = output.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("exec ") and "tools.devstack.serve" in line)
    return [line for line in lines[start + 1 :] if line and not re.match(r"make(\[\d+\])?: \*\*\*", line)]


def test_a_taken_port_stops_make_up_before_starting_anything_naming_its_holder():
    # (first in the module: with a make up running, the refusal would name that one instead)
    before = processes_of_this_checkout()
    # GIVEN a port held by another program (here: a listening socket of this test's process)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # WHEN make up is asked to serve on it
        output = refused(["up", f"PORT={port}"])
    # THEN one line names the port, the holder's pid, and the ways out: nothing else ran (no service
    # start, no bootstrap) and no process was started (how long it takes is measured, not asserted)
    assert len(own_lines(output)) == 1, output
    [line] = own_lines(output)
    assert f"port {port} is already in use by pid {os.getpid()}" in line, line
    assert f"make up PORT={port + 1}" in line and "make down" in line
    assert processes_of_this_checkout() == before


# --- the README's blocks ---------------------------------------------------------------------


def readme_blocks(sections: tuple[str, ...] = README_SECTIONS) -> list[tuple[str, str | None]]:
    """Each ```sh block of the sections, with the ```text block that follows it (what it prints), if any."""
    blocks: list[tuple[str, str | None]] = []
    for section in sections:
        match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", README.read_text(), re.S | re.M)
        assert match, f"README has no section {section!r}"
        fences = re.findall(r"^```(\w+)\n(.*?)^```$", match.group(1), re.S | re.M)
        for i, (kind, body) in enumerate(fences):
            if kind == "sh":
                following = fences[i + 1] if i + 1 < len(fences) else None
                blocks.append((body, following[1] if following and following[0] == "text" else None))
    return blocks


def matches(expected: str, printed: str) -> bool:
    """Whether `printed` is `expected`, where `...` in `expected` stands for any text."""
    pattern = ".*?".join(re.escape(part) for part in expected.strip().split("..."))
    return re.fullmatch(pattern, printed.strip(), re.S) is not None


def test_the_readmes_blocks_print_what_the_readme_says(make_up: MakeUp):
    # GIVEN make up running, and the README's Quick start and Try it blocks, pasted in order into
    # one shell (they share variables), its own `make` lines left out (make up already runs)
    blocks = readme_blocks()
    assert len(blocks) >= 5 and sum(expected is not None for _, expected in blocks) >= 5
    script = ["set -u"]
    for n, (body, _) in enumerate(blocks):
        commands = [line for line in body.splitlines() if not line.startswith("make ")]
        script += [*commands, f"echo '<<block {n}>>'"]
    text = "\n".join(script).replace("localhost:8000", f"localhost:{make_up.port}")
    # WHEN they run
    ran = subprocess.run(["bash", "-c", text], capture_output=True, text=True, timeout=120, cwd=ROOT)
    # THEN each block prints what the README shows under it
    assert ran.returncode == 0, ran.stderr
    printed = re.split(r"<<block \d+>>\n", ran.stdout)
    for n, (body, expected) in enumerate(blocks):
        if expected is None:
            continue
        if all(line.startswith("make ") for line in body.splitlines() if line):
            # a block of make commands: what it shows is make up's own output (there, on its port)
            shown = expected.strip().replace("127.0.0.1:8000", f"127.0.0.1:{make_up.port}")
            assert shown in make_up.output(), f"make up did not print:\n{shown}\nit printed:\n{make_up.output()}"
            continue
        assert matches(expected, printed[n]), f"block {n}:\n{body}\nprinted:\n{printed[n]}\nREADME:\n{expected}"


def test_the_readmes_expected_output_wildcards_are_strict():
    assert matches('{"id":"...","status":"queued"}', '{"id":"1f0","status":"queued"}')
    assert not matches('{"status":"ok"}', '{"status":"ok"}\n{"status":"ok"}')
    assert not matches("X-Cache: miss", "X-Cache: hit")


# --- a second start -------------------------------------------------------------------------


def test_a_second_make_up_stops_before_starting_anything_naming_the_first(make_up: MakeUp):
    before = processes_of_this_checkout()
    # WHEN a second make up starts, on another free port
    output = refused(["up", f"PORT={closed_port()}"])
    # THEN it says in one line that one runs, and how to stop it; it started nothing
    assert len(own_lines(output)) == 1, output
    [line] = own_lines(output)
    assert "already runs for stage local" in line and "make down" in line, line
    assert f"127.0.0.1:{make_up.port}" in line
    assert processes_of_this_checkout() == before


# --- ending ----------------------------------------------------------------------------------


def test_make_up_killed_with_sigkill_leaves_nothing_behind(tmp_path: Path, make_up: MakeUp):
    # (last in the module: it ends the module's make up)
    # GIVEN make up running: tools.devstack.serve, the API, the consumer and the schedule
    serving = processes_of_this_checkout()
    assert len(serving) == len(CHILDREN), serving
    # WHEN make is SIGKILLed (nothing of it can clean up)
    make_up.make.send_signal(signal.SIGKILL)
    make_up.make.wait()
    # THEN all four end, and the port is free
    wait_for(lambda: not processes_of_this_checkout(), 30)
    wait_for(lambda: not port_in_use(make_up.port), 10)
    # AND a new make up of the stage starts (the lock went with its holder)
    again = start_make_up(tmp_path, closed_port())
    assert len(processes_of_this_checkout()) == len(CHILDREN)
    # WHEN this time tools.devstack.serve itself is SIGKILLed THEN its API, consumer and schedule end too
    [serve] = processes_of_this_checkout(("tools.devstack.serve",))
    os.kill(int(serve.split(":")[0]), signal.SIGKILL)
    wait_for(lambda: not processes_of_this_checkout(), 30)
    wait_for(lambda: not port_in_use(again.port), 10)
    again.make.wait(timeout=30)


def test_make_help_lists_every_target_with_one_line():
    # GIVEN every target the Makefile declares phony (the ones a person types)
    makefile = (ROOT / "Makefile").read_text()
    declared = re.search(r"^\.PHONY: (.*?)\n\n", makefile, re.S | re.M)
    assert declared
    targets = set(declared.group(1).replace("\\\n", " ").split())
    # WHEN make help runs
    ran = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    # THEN each has its line
    listed = {line.split()[1] for line in ran.stdout.splitlines() if line.startswith("  make ")}
    assert listed == targets
