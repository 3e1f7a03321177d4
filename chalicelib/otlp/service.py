"""POST /v1/logs: an OpenTelemetry exporter's logs (OTLP/HTTP, JSON encoding) queued as sluice entries.

Records are taken or refused one by one, as OTLP's partial success says: a record whose source the
key may not write, whose timestamp is outside the window, or that does not make a valid entry is
refused and counted in `partialSuccess`, and the others are queued. The key is charged one unit per
record in the export, taken or refused. A record with a time of its own is stored under an id made from its content
(chalicelib/otlp/mapping.py), so an exporter's retry of the same export stores it once.
"""

from dataclasses import dataclass
from typing import Any

import pydantic

from chalicelib.config import Settings
from chalicelib.errors import PayloadTooLargeError, QueueUnavailableError
from chalicelib.keys.gate import Admission, Charge
from chalicelib.logs.model import LogEntryIn, new_log_record, timestamp_window
from chalicelib.logs.queue import LogQueue
from chalicelib.metrics import PipelineMetrics
from chalicelib.otlp.mapping import MappedRecord, count_records, record_id, records
from chalicelib.validation import format_rfc3339, utc_now

_REASONS_SHOWN = 5  # distinct refusal reasons named in errorMessage


@dataclass(frozen=True)
class ExportResult:
    """What an ExportLogsServiceResponse says: how many records were refused, and why."""

    rejected: int = 0
    error_message: str = ""

    def as_json(self) -> dict[str, Any]:
        """The response in OTLP/JSON: `{}` when every record was taken."""
        if not self.rejected:
            return {}
        return {"partialSuccess": {"rejectedLogRecords": str(self.rejected), "errorMessage": self.error_message}}


class OtlpService:
    """Takes an ExportLogsServiceRequest (in OTLP/JSON's shape); says what was refused."""

    def __init__(self, queue: LogQueue, settings: Settings, metrics: PipelineMetrics | None = None) -> None:
        self._queue = queue
        self._settings = settings
        self._metrics = metrics

    def export(self, body: Any, charge: Charge) -> tuple[ExportResult, Admission]:
        """Queue every record that makes a valid entry of the key's sources; report the others."""
        received_at = utc_now()
        count = count_records(body)
        if count > self._settings.otlp_max_records:
            raise PayloadTooLargeError(
                f"{count} log records in one export; at most {self._settings.otlp_max_records} are accepted"
            )
        # One unit per record, before any record is mapped: a record refused below was still work,
        # and one charge per export is one Redis call, not two.
        admission = charge(count, [])
        mapped = records(body)
        principal = admission.principal
        earliest, latest = timestamp_window(
            received_at, self._settings.log_timestamp_max_age_s, self._settings.log_timestamp_max_ahead_s
        )
        entries: list[LogEntryIn] = []
        refused: list[str] = []
        allowed: dict[str, bool] = {}  # source -> may this key write it (an export names few sources)
        for record in mapped:
            try:
                entry = entry_of(record)
            except pydantic.ValidationError as exc:
                fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors(include_url=False)})
                refused.append(f"not a valid entry ({', '.join(fields)})")
                continue
            if entry.source not in allowed:
                allowed[entry.source] = principal.may_use_source(entry.source)
            if not allowed[entry.source]:
                refused.append(f"this key may not write the source {entry.source!r}")
            elif entry.timestamp is not None and not earliest <= entry.timestamp <= latest:
                refused.append(f"a timestamp outside {format_rfc3339(earliest)} .. {format_rfc3339(latest)}")
            else:
                entries.append(entry)
        if entries:
            queued = [new_log_record(entry, received_at, principal.key_id or None) for entry in entries]
            try:
                self._queue.send(queued)
            except QueueUnavailableError as exc:
                raise QueueUnavailableError(
                    f"{exc.message}. Some records may have been queued: the exporter's retry stores each"
                    " record with a time of its own once"
                ) from exc
            if self._metrics is not None:
                self._metrics.accepted(len(queued))
        return _result(refused), admission


def entry_of(record: MappedRecord) -> LogEntryIn:
    """A mapped record as a validated entry, under its content-made id when it has a time of its own;
    pydantic.ValidationError when it makes no valid entry."""
    made = record_id(record)
    return LogEntryIn.model_validate({**record.entry, "id": made} if made else record.entry)


def _result(refused: list[str]) -> ExportResult:
    """The refused records counted, and their distinct reasons named."""
    if not refused:
        return ExportResult()
    reasons = list(dict.fromkeys(refused))
    named = "; ".join(reasons[:_REASONS_SHOWN]) + (
        f"; and {len(reasons) - _REASONS_SHOWN} more" if len(reasons) > _REASONS_SHOWN else ""
    )
    return ExportResult(len(refused), f"{len(refused)} refused: {named}")
