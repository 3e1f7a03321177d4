"""Pipeline metrics (chalicelib/metrics.py): one EMF line per request, however many at once."""

import json
import threading

import pytest

from chalicelib.metrics import PipelineMetrics

THREADS = 8
CALLS = 200


def test_requests_at_once_each_print_their_own_metric_line(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN one metrics object per server, as chalice local's threads share it
    metrics = PipelineMetrics(stage="test")
    failures: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def requests() -> None:
        start.wait()
        for _ in range(CALLS):
            try:
                metrics.accepted(1)
            except BaseException as exc:  # what a request would have answered 500 with
                failures.append(exc)

    # WHEN requests on several threads count their accepted entries at the same time
    threads = [threading.Thread(target=requests) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN none failed, and every request printed one line with its one entry
    assert failures == []
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == THREADS * CALLS
    assert all(line["EntriesAccepted"] == [1.0] for line in lines)
