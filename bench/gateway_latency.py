"""Cold-start and warm latency of GET /health through LocalStack's API Gateway and the host executor.

    python -m bench.gateway_latency [--stage local] [--cold 10] [--first 3] [--warm 200]

Needs the services up (`make deploy` deploys the stage; this deploys it if it is not).
Two kinds of start, each forced by a configuration change after which LocalStack retires the
function's environments and starts a new one for the next call:
- a cold start (a new environment): the description changes, which the function's init cannot
  see, so the new environment is a fork of the function's warm template (localstack/host_executor);
- a first start (init runs): an environment variable changes, as a deploy of new code or settings
  does, so a new template imports the handler before the environment is forked from it.
Traffic goes to 127.0.0.1 only.
"""

import argparse
import json
import statistics
import sys
import time
import urllib.request

from tools.aws import aws_client
from tools.deploy.localstack import deploy, read_deployment
from tools.stage import stage_settings


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
        assert response.status == 200, response.status
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(stage: str, cold_runs: int, first_runs: int, warm_runs: int) -> dict[str, object]:
    deployment = read_deployment(stage) or deploy(stage)
    settings = stage_settings(stage)
    lam = aws_client("lambda", settings)
    name = deployment.api_function
    url = f"{deployment.api_url}health"

    def after_update(**change: object) -> float:
        lam.update_function_configuration(FunctionName=name, **change)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        return timed_get(url)

    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    first = [
        after_update(Environment={"Variables": {**variables, "BENCH_NONCE": f"{run} {time.time()}"}})
        for run in range(first_runs)
    ]
    cold = [after_update(Description=f"cold start {run} {time.time()}") for run in range(cold_runs)]
    warm = [timed_get(url) for _ in range(warm_runs)]
    if first_runs:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    return {
        "url": url,
        "first_start_ms": [round(v, 1) for v in first],
        "first_start_median_ms": round(statistics.median(first), 1) if first else None,
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
    parser.add_argument("--cold", type=int, default=10, help="cold starts (new environments)")
    parser.add_argument("--first", type=int, default=3, help="first starts (init runs)")
    parser.add_argument("--warm", type=int, default=200)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.stage, args.cold, args.first, args.warm), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
