"""`make budget` (tools.ops.budget) against the real server's max_connections."""

import subprocess
import sys

from tools.ops.budget import check
from tools.stage import ROOT


def budget_cli(stage: str = "test") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.ops.budget", "--stage", stage],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_test_stage_fits_the_running_server():
    inputs, problems = check("test")
    assert problems == []
    assert inputs.max_connections is not None
    assert inputs.total < inputs.max_connections
    result = budget_cli()
    assert result.returncode == 0, result.stderr
    assert "budget check ok" in result.stdout


def test_a_server_with_too_few_connections_fails_the_check_and_says_why(server_max_connections):
    # GIVEN a server whose max_connections is exactly the stage's W + R + reserve
    inputs, _ = check("test")
    server_max_connections(inputs.total)
    # WHEN the budget is checked THEN it fails, naming the formula and what to change
    _, problems = check("test")
    assert len(problems) == 1
    assert f"= {inputs.total}, which must stay below the server's max_connections {inputs.total}" in problems[0]
    result = budget_cli()
    assert result.returncode == 1
    assert "does not fit" in result.stderr
