-- Logs partitioned by day of `ts`, so that retention drops a day at a time (chalicelib/partitions.py
-- keeps the partitions). A partitioned table's unique keys must contain the partitioning column:
-- the primary key becomes (id, ts), and the uniqueness of an id alone moves to log_ids, where the
-- writer claims each id in the transaction that stores it (chalicelib/db.py, insert_log_rows).
-- log_ids remembers an id for LOG_ID_WINDOW_DAYS, longer than SQS can keep a message (14 days).
-- Every statement is safe to run twice.

CREATE TABLE IF NOT EXISTS log_ids (
    id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    claim BIGINT UNSIGNED NOT NULL COMMENT 'the writer transaction that stored it (0: before this migration)',
    seen_on DATE NOT NULL COMMENT 'the day it was first stored',
    KEY log_ids_seen_on (seen_on)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

INSERT IGNORE INTO log_ids (id, claim, seen_on) SELECT id, 0, DATE(stored_at) FROM logs;

-- Every row in one catch-all partition; the first maintenance run splits it into days.
-- unless: SELECT 1 FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'logs' AND PARTITION_NAME IS NOT NULL
ALTER TABLE logs DROP PRIMARY KEY, ADD PRIMARY KEY (id, ts) PARTITION BY RANGE COLUMNS (ts) (PARTITION p_future VALUES LESS THAN (MAXVALUE));
