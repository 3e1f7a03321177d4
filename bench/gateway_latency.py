"""Cold-start and warm latency of GET /health through LocalStack's API Gateway and the host executor.

    python -m bench.gateway_latency [--stage local] [--cold 5] [--warm 200]

Needs the services up (`make deploy` deploys the stage; this deploys it if it is not).
A cold start is forced by changing the API function's description: LocalStack then starts a new
execution environment (process) for the next call. Traffic goes to 127.0.0.1 only.
"""

import argparse
import json
import statistics
import sys
import time
import urllib.request

from tools.deploy import deploy, read_deployment
from tools.stage import aws_client, stage_settings


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
        assert response.status == 200, response.status
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(stage: str, cold_runs: int, warm_runs: int) -> dict[str, object]:
    deployment = read_deployment(stage) or deploy(stage)
    settings = stage_settings(stage)
    lam = aws_client("lambda", settings)
    url = f"{deployment.api_url}health"
    cold: list[float] = []
    for run in range(cold_runs):
        lam.update_function_configuration(
            FunctionName=deployment.api_function, Description=f"cold start {run} {time.time()}"
        )
        lam.get_waiter("function_updated_v2").wait(FunctionName=deployment.api_function)
        cold.append(timed_get(url))
    warm = [timed_get(url) for _ in range(warm_runs)]
    return {
        "url": url,
        "cold_ms": [round(v, 1) for v in cold],
        "cold_median_ms": round(statistics.median(cold), 1) if cold else None,
        "warm_runs": warm_runs,
        "warm_p50_ms": round(percentile(warm, 50), 1),
        "warm_p95_ms": round(percentile(warm, 95), 1),
        "warm_p99_ms": round(percentile(warm, 99), 1),
        "warm_mean_ms": round(statistics.fmean(warm), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--warm", type=int, default=200)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.stage, args.cold, args.warm), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
