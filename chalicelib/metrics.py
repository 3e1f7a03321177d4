"""Pipeline metrics, of the API and of the consumer, in CloudWatch's Embedded Metric Format
(Powertools Metrics): each invocation prints one JSON line that CloudWatch Logs turns into metrics,
with no API call and no permission.

Namespace `sluice`, dimensions `service` and `stage`:
- EntriesAccepted (Count): entries the API queued (answered 202), per request;
- per consumer invocation: BatchMessages, EntriesStored, EntriesDuplicate, EntriesRejected,
  MessagesGivenBack (Count), InsertTime (Milliseconds: the batch's transaction, its last
  attempt), and Lag (Milliseconds: stored minus received, for the batch's oldest entry).
"""

import threading
from collections.abc import Sized
from typing import Protocol

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "sluice"
# Powertools keeps the metrics being added in state shared by every Metrics object, and flushing
# empties it: two requests at once (chalice local serves them on threads) could flush each
# other's metric, and the second flush then raised "Must contain at least one metric" after its
# entry was queued (measured: one 500 in 16,873 requests at 200 clients). Add and flush as one step.
_FLUSH_LOCK = threading.Lock()


class BatchOutcome(Protocol):
    """What a consumer invocation did (consumer/writer.py's WriteResult), as the metrics read it."""

    @property
    def stored(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def failed_messages(self) -> Sized: ...
    @property
    def insert_ms(self) -> float: ...
    @property
    def lag_ms(self) -> float | None: ...


class PipelineMetrics:
    """Adds a request's or an invocation's metrics and prints them at once (one EMF line)."""

    def __init__(self, stage: str) -> None:
        self._metrics = Metrics(namespace=NAMESPACE, service="sluice")
        self._metrics.set_default_dimensions(stage=stage)

    def accepted(self, entries: int) -> None:
        with _FLUSH_LOCK:
            self._metrics.add_metric(name="EntriesAccepted", unit=MetricUnit.Count, value=entries)
            self._metrics.flush_metrics()

    def batch(self, messages: int, result: BatchOutcome) -> None:
        add = self._metrics.add_metric
        with _FLUSH_LOCK:
            add(name="BatchMessages", unit=MetricUnit.Count, value=messages)
            add(name="EntriesStored", unit=MetricUnit.Count, value=result.stored)
            add(name="EntriesDuplicate", unit=MetricUnit.Count, value=result.duplicates)
            add(name="EntriesRejected", unit=MetricUnit.Count, value=result.rejected)
            add(name="MessagesGivenBack", unit=MetricUnit.Count, value=len(result.failed_messages))
            add(name="InsertTime", unit=MetricUnit.Milliseconds, value=round(result.insert_ms, 1))
            if result.lag_ms is not None:
                add(name="Lag", unit=MetricUnit.Milliseconds, value=round(result.lag_ms, 1))
            self._metrics.flush_metrics()
