"""Pipeline metrics: what the API and the consumer print in CloudWatch's Embedded Metric Format."""

import json
from typing import Any

from tests.functional.conftest import JSON
from tools.ops.status import sample

ENTRY = {"level": "info", "source": "web", "message": "counted"}


def emf_records(out: str) -> list[dict[str, Any]]:
    """The EMF lines of captured stdout (one JSON object each, with an _aws section); a metric's
    values, which Powertools prints as a list, as one number when there is one."""
    records = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            records.append({k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in record.items()})
    return records


def test_accepted_entries_and_a_stored_batch_are_metrics_with_the_stage(client, consume, capsys):
    capsys.readouterr()
    # WHEN the API takes one entry, then a batch of three, and the consumer stores them
    assert client.http.post("/logs", headers=JSON, body=json.dumps(ENTRY)).status_code == 202
    batch = {"logs": [{**ENTRY, "message": f"counted {i}"} for i in range(3)]}
    assert client.http.post("/logs/batch", headers=JSON, body=json.dumps(batch)).status_code == 202
    assert consume()["stored"] == 4
    records = emf_records(capsys.readouterr().out)
    # THEN each request printed how many entries it queued, in namespace sluice, by stage
    accepted = [r["EntriesAccepted"] for r in records if "EntriesAccepted" in r]
    assert accepted == [1.0, 3.0]
    definition = records[0]["_aws"]["CloudWatchMetrics"][0]
    assert definition["Namespace"] == "sluice" and [sorted(d) for d in definition["Dimensions"]] == [
        ["service", "stage"]
    ]
    assert records[0]["stage"] == "test"
    # AND the invocation printed what it stored, how long it took, and how far behind it was
    [batch_record] = [r for r in records if "EntriesStored" in r]
    assert {k: batch_record[k] for k in ("BatchMessages", "EntriesStored", "EntriesDuplicate", "EntriesRejected")} == {
        "BatchMessages": 2.0,
        "EntriesStored": 4.0,
        "EntriesDuplicate": 0.0,
        "EntriesRejected": 0.0,
    }
    assert batch_record["MessagesGivenBack"] == 0.0
    assert batch_record["InsertTime"] > 0 and batch_record["Lag"] > 0
    units = {m["Name"]: m["Unit"] for m in batch_record["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["Lag"] == units["InsertTime"] == "Milliseconds"


def test_make_status_shows_the_queue_what_was_stored_the_lag_and_the_connections(client, consume):
    # GIVEN two entries stored and one waiting in the queue
    for message in ("a", "b"):
        client.http.post("/logs", headers=JSON, body=json.dumps({**ENTRY, "message": message}))
    consume()
    client.http.post("/logs", headers=JSON, body=json.dumps({**ENTRY, "message": "c"}))
    # WHEN make status samples the test stage
    lines = sample("test", 0.2)
    # THEN it reads the queue and the database without taking anything from them
    assert lines[1].strip() == "log queue:    1 waiting, 0 in flight, 0 delayed"
    assert lines[2].strip() == "dead letters: 0"
    assert "(2 today)" in lines[3]
    assert lines[4].strip().startswith("lag:") and " s (stored minus received" in lines[4]
    assert "sluice_test_writer 0 of" in lines[5]
    assert consume()["stored"] == 1  # the waiting entry was left where it was
