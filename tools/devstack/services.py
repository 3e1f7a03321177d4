"""Run MariaDB, Redis and LocalStack (and, when asked, MiniStack) on this machine as plain
processes, with data under .data/.

    python -m tools.devstack up [--with ministack]     start what is not running (idempotent)
    python -m tools.devstack down                      stop everything running from .data/
    python -m tools.devstack status                    say what runs
    python -m tools.devstack run [--with ministack] -- CMD...
                                                       start what is missing, run CMD, stop what this started

Ports come from the `local` stage of .chalice/config.json (the `test` stage uses the same servers).
MariaDB and Redis also speak TLS with a certificate of a local CA (tools/devstack/devcerts.py): the
packaged `stack` stage connects that way, as it does on AWS.
"""

import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pymysql

from tools import procs
from tools.admin import admin_connection
from tools.devstack import devcerts
from tools.devstack.processes import port_holder, port_in_use, signal_group
from tools.stage import ROOT, stage_environment

DATA = ROOT / ".data"
RUN = DATA / "run"
LOGS = DATA / "log"
MARIADB_DIR = DATA / "mariadb"
MARIADB_SOCKET = RUN / "mariadb.sock"
LOCALSTACK_PYTHON = ROOT / ".venv-localstack" / "bin" / "python"
LAMBDA_PYTHON = ROOT / ".venv-lambda" / "bin" / "python"
MINISTACK = ROOT / ".venv-ministack" / "bin" / "ministack"
REDIS_TLS_PORT = 6381  # Redis's TLS listener, beside the plain one of the local stage's REDIS_URL
MINISTACK_PORT = 4600
# The local server's connection limit. Each stage's budget (W + R + reserve) must fit below it;
# `make budget` checks. The local and test stages share this server.
MARIADB_MAX_CONNECTIONS = 60
LOCALSTACK_SERVICES = (
    "sqs,lambda,apigateway,iam,sts,logs,cloudformation,s3,ssm,secretsmanager,kms,ec2,cloudwatch,events,sns"
)


@functools.cache  # read once: readiness checks ask many times a second
def _ports() -> tuple[int, int, int]:
    env = stage_environment("local")
    redis_port = urlparse(env["REDIS_URL"]).port or 6379
    localstack_port = urlparse(env["SQS_ENDPOINT_URL"]).port or 4566
    return int(env["MYSQL_PORT"]), redis_port, localstack_port


def _which(name: str, *fallbacks: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for path in fallbacks:
        if os.access(path, os.X_OK):
            return path
    raise SystemExit(f"{name} is not installed; run scripts/ensure-system-packages.sh (make up does)")


def _alive(pid: int) -> bool:
    """Whether the process runs. A process that died but was not reaped (a zombie: its parent, such
    as a `make up`, has not waited for it yet) answers kill(0) like a live one; it counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # a child of ours: reap it if it died
        return done == 0
    except ChildProcessError:
        pass
    return procs.running(pid)


@dataclass
class Service:
    name: str
    start_cmd: Callable[[], tuple[list[str], dict[str, str]]]
    ready: Callable[[], bool]
    port: Callable[[], int]
    prepare: Callable[[], None] = lambda: None
    cwd: Path = ROOT
    stop_timeout_s: float = 30.0
    start_timeout_s: float = 60.0
    on_demand: bool = False  # started only when asked for (`--with NAME`)

    @property
    def pid_file(self) -> Path:
        return RUN / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return LOGS / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None and self.ready()

    def start(self) -> bool:
        """Start the service unless it already runs; return True if this call started it."""
        if self.pid() is not None:
            self._wait_ready()
            return False
        problem = self.foreign_port()
        if problem:
            raise SystemExit(problem)
        RUN.mkdir(parents=True, exist_ok=True)
        LOGS.mkdir(parents=True, exist_ok=True)
        self.prepare()
        cmd, env = self.start_cmd()
        with open(self.log_file, "ab") as log:
            self.cwd.mkdir(parents=True, exist_ok=True)
            process = subprocess.Popen(
                cmd,
                cwd=self.cwd,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal does not reach it; stop() does
            )
        self.pid_file.write_text(str(process.pid))
        print(f"{self.name}: starting (pid {process.pid}, log {self.log_file.relative_to(ROOT)})", flush=True)
        self._wait_ready(process)
        return True

    def foreign_port(self) -> str | None:
        """One line naming the program that holds this service's port, when this checkout did not start it."""
        if self.pid() is not None or not port_in_use(self.port()):
            return None
        holder = port_holder(self.port())
        return (
            f"{self.name}: port {self.port()} is held by {holder or 'a process this checkout did not start'};"
            " stop it (`make down` in the checkout that started it) and try again"
        )

    def _wait_ready(self, process: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while not self.ready():
            if process is not None and process.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-3000:]
                raise SystemExit(f"{self.name} exited with {process.returncode} while starting; its log ends:\n{tail}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name} was not ready after {self.start_timeout_s:.0f}s; see {self.log_file}")
            time.sleep(0.2)
        print(f"{self.name}: ready", flush=True)

    def stop(self) -> None:
        """Stop the service's whole process group: SIGTERM, then SIGKILL after the timeout."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        print(f"{self.name}: stopping (pid {pid})", flush=True)
        signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            print(f"{self.name}: did not stop in {self.stop_timeout_s:.0f}s, killing it", flush=True)
        signal_group(pid, signal.SIGKILL)  # also ends any child it left behind
        self.pid_file.unlink(missing_ok=True)


# --- MariaDB ---------------------------------------------------------------------------------


def _mariadb_prepare() -> None:
    devcerts.ensure()
    if (MARIADB_DIR / "mysql").is_dir():
        return
    MARIADB_DIR.mkdir(parents=True, exist_ok=True)
    print("mariadb: creating a private data directory", flush=True)
    cmd = [
        _which("mariadb-install-db", "/usr/bin/mariadb-install-db"),
        "--no-defaults",
        f"--datadir={MARIADB_DIR}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
    ]
    if os.geteuid() == 0:
        cmd.append("--user=root")
    with open(LOGS / "mariadb-install.log", "ab") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)


def _mariadb_cmd() -> tuple[list[str], dict[str, str]]:
    port, _, _ = _ports()
    cmd = [
        _which("mariadbd", "/usr/sbin/mariadbd"),
        "--no-defaults",
        f"--datadir={MARIADB_DIR}",
        f"--socket={MARIADB_SOCKET}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--pid-file={RUN / 'mariadbd.pid'}",
        f"--log-error={LOGS / 'mariadb.log'}",
        f"--max-connections={MARIADB_MAX_CONNECTIONS}",
        "--skip-name-resolve",
        "--local-infile=1",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--innodb-buffer-pool-size=256M",
        "--max-allowed-packet=64M",
        f"--ssl-ca={devcerts.CA_CERT}",
        f"--ssl-cert={devcerts.SERVER_CERT}",
        f"--ssl-key={devcerts.SERVER_KEY}",
    ]
    if os.geteuid() == 0:
        cmd.append("--user=root")
    return cmd, {}


def _mariadb_ready() -> bool:
    try:
        admin_connection().close()
        return True
    except pymysql.err.MySQLError:
        return False


# --- Redis -----------------------------------------------------------------------------------


def _redis_cmd() -> tuple[list[str], dict[str, str]]:
    _, port, _ = _ports()
    (DATA / "redis").mkdir(parents=True, exist_ok=True)
    return [
        _which("redis-server", "/usr/bin/redis-server"),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(DATA / "redis"),
        "--tls-port",
        str(REDIS_TLS_PORT),
        "--tls-cert-file",
        str(devcerts.SERVER_CERT),
        "--tls-key-file",
        str(devcerts.SERVER_KEY),
        "--tls-ca-cert-file",
        str(devcerts.CA_CERT),
        "--tls-auth-clients",
        "no",
    ], {}


def _redis_ready() -> bool:
    import redis

    _, port, _ = _ports()
    try:
        return bool(redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


# --- LocalStack ------------------------------------------------------------------------------


def _localstack_cmd() -> tuple[list[str], dict[str, str]]:
    if not LOCALSTACK_PYTHON.exists():
        raise SystemExit("LocalStack's virtual environment is missing; run `make venvs`")
    _, _, port = _ports()
    (DATA / "localstack").mkdir(parents=True, exist_ok=True)
    env = {
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "SERVICES": LOCALSTACK_SERVICES,
        "FILESYSTEM_ROOT": str(DATA / "localstack"),
        "DISABLE_EVENTS": "1",  # no telemetry: without it, shutdown hangs trying to reach the internet
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DNS_ADDRESS": "0",  # no DNS server on port 53
        "SQS_ENDPOINT_STRATEGY": "path",
        "PERSISTENCE": "0",
        # With CloudWatch on (the stack's alarms need it), LocalStack's SQS reports queue metrics by
        # walking every message: measured here, it then used a core for as long as messages waited.
        "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
        # Lambda functions run as host processes (localstack/host_executor), on the interpreter that
        # stands in for the python3.13 runtime.
        "LAMBDA_RUNTIME_EXECUTOR": "host",
        "LAMBDA_HOST_PYTHON": str(LAMBDA_PYTHON),
        # AWS's SQS pollers long-poll without pause; LocalStack's back off up to 10 s after empty
        # polls, so a message visible again (a batch given back, a visibility timeout run out)
        # waited up to 10 s more for the consumer (measured: stored 68 s after a kill, for a 60 s
        # visibility timeout). At most 1 s, as an idle poller then asks every 2 s or so.
        "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC": "1",
    }
    return [str(LOCALSTACK_PYTHON), "-m", "localstack.runtime.main"], env


def _localstack_ready() -> bool:
    _, _, port = _ports()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localstack/init", timeout=2) as response:
            return bool(json.load(response)["completed"]["READY"])
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return False


# --- MiniStack (on demand: the packaged stack's tests under enforced IAM) ---------------------


def _ministack_cmd() -> tuple[list[str], dict[str, str]]:
    if not MINISTACK.exists():
        raise SystemExit("MiniStack's virtual environment is missing; run `make .venv-ministack/.installed`")
    state = DATA / "ministack"
    (state / "s3").mkdir(parents=True, exist_ok=True)
    env = {
        "GATEWAY_PORT": str(MINISTACK_PORT),
        "BIND_HOST": "127.0.0.1",
        "MINISTACK_HOST": "127.0.0.1",
        "AUTH": "true",  # every call is evaluated against the caller's IAM policies
        "CLOUDTRAIL_RECORDING": "1",  # a record of every call, for the report of unused permissions
        "CLOUDTRAIL_MAX_EVENTS": "100000",
        "TMPDIR": str(state),
        "S3_DATA_DIR": str(state / "s3"),
        "LOG_LEVEL": "INFO",
    }
    return [str(MINISTACK)], env


def _ministack_ready() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{MINISTACK_PORT}/_ministack/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


SERVICES = [
    Service("mariadb", _mariadb_cmd, _mariadb_ready, lambda: _ports()[0], prepare=_mariadb_prepare),
    Service("redis", _redis_cmd, _redis_ready, lambda: _ports()[1], prepare=devcerts.ensure, stop_timeout_s=10),
    Service(
        "localstack", _localstack_cmd, _localstack_ready, lambda: _ports()[2], stop_timeout_s=20, start_timeout_s=120
    ),
    Service("ministack", _ministack_cmd, _ministack_ready, lambda: MINISTACK_PORT, stop_timeout_s=10, on_demand=True),
]


def find_service(name: str) -> Service:
    """The service called `name`."""
    for candidate in SERVICES:
        if candidate.name == name:
            return candidate
    raise SystemExit(f"no service called {name}")


def wanted(extra: tuple[str, ...] = ()) -> list[Service]:
    """Every service but the on-demand ones, and the on-demand ones named in `extra`."""
    return [s for s in SERVICES if not s.on_demand or s.name in extra]


def preflight(extra: tuple[str, ...] = ()) -> list[str]:
    """Why `up` would fail on a port, one line per service port held by a program this checkout did not start."""
    return [problem for s in wanted(extra) if (problem := s.foreign_port())]


def up(extra: tuple[str, ...] = (), started: list[Service] | None = None) -> list[Service]:
    """Start every service that is not running (and the on-demand ones named); return those this call
    started, also appended to `started` one by one (so a caller interrupted midway stops them).
    Nothing starts when a port is held by someone else."""
    problems = preflight(extra)
    if problems:
        raise SystemExit("\n".join(problems))
    started = [] if started is None else started
    for service in wanted(extra):
        if service.start():
            started.append(service)
    return started


def supervise(services: list[Service]) -> list[Service]:
    """Start again each of `services` whose process died; return those started again.

    Raises SystemExit (with the service's log) if one cannot be started again.
    """
    restarted = []
    for service in services:
        if service.pid() is None:
            print(f"{service.name}: its process died; starting it again (log {service.log_file})", flush=True)
            service.pid_file.unlink(missing_ok=True)
            service.start()
            restarted.append(service)
    return restarted


def down(services: list[Service] | None = None) -> None:
    """Stop the given services (all by default), last started first."""
    for service in reversed(services if services is not None else SERVICES):
        service.stop()


def status() -> int:
    all_up = True
    for each in SERVICES:
        pid = each.pid()
        state = "running" if pid and each.ready() else ("starting or unhealthy" if pid else "stopped")
        all_up = all_up and (state == "running" or (each.on_demand and not pid))
        print(f"{each.name:<11} {state}" + (f" (pid {pid})" if pid else ""))
    return 0 if all_up else 1


def run(command: list[str], extra: tuple[str, ...] = ()) -> int:
    """Run a command with the services up; stop afterwards only what this started."""
    started: list[Service] = []
    try:
        up(extra, started)
        return subprocess.call(command)
    finally:
        down(started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down", "status", "run"])
    parser.add_argument("--with", dest="extra", action="append", default=[], choices=["ministack"])
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.command = argv[split + 1 :]
    if args.action == "up":
        up(tuple(args.extra))
        return 0
    if args.action == "down":
        down()
        return 0
    if args.action == "status":
        return status()
    if not args.command:
        parser.error("run needs a command after --")
    return run(args.command, tuple(args.extra))
