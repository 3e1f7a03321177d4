"""Waiting for a condition with a deadline: never sleep-then-assert."""

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(check: Callable[[], Any], timeout_s: float, interval_s: float = 0.25) -> Any:
    """Poll `check` until it returns something truthy; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        time.sleep(interval_s)
