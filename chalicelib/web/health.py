"""Health: GET /health only says the function answers (no dependency is touched, so it costs
nothing to call often); GET /health/dependencies (admin) asks each dependency directly."""

from typing import Any

import redis

from chalicelib.errors import SluiceError
from chalicelib.logs.queue import LogQueue
from chalicelib.mysql.connector import Database


def check_health(db: Database, redis_client: redis.Redis, queue: LogQueue) -> tuple[bool, dict[str, Any]]:
    """Return (all ok, body). The body names each check and, on failure, what failed."""
    checks: dict[str, str] = {}
    problems: list[str] = []

    def run(name: str, probe: Any) -> None:
        try:
            probe()
            checks[name] = "ok"
        except (SluiceError, redis.RedisError) as exc:
            checks[name] = "unavailable"
            problems.append(f"{name}: {exc.message if isinstance(exc, SluiceError) else type(exc).__name__}")

    run("mysql", db.ping)
    run("redis", redis_client.ping)
    run("queue", queue.ping)
    if not problems:
        return True, {"status": "ok", "checks": checks}
    failing = ", ".join(name for name, state in checks.items() if state != "ok")
    return False, {
        "status": "unavailable",
        "checks": checks,
        "error": {"code": "dependency_unavailable", "message": f"{failing} unavailable: " + "; ".join(problems)},
    }
