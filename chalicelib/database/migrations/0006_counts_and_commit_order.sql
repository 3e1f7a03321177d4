-- Counts over time and the order of storage (GET /logs/stats, GET /logs/tail).
--
-- log_counts and log_counts_hourly hold how many entries of each source and level are stored per
-- minute and per hour of `ts` (keyed by source first: a key's sources are read by their prefix);
-- log_level_counts and log_level_counts_hourly the same for every source together, which is what
-- a key of every source asks for. The writer adds the rows it stored in the transaction that stores
-- them, so a redelivery (whose ids are not claimed again) never counts twice. Maintenance drops a
-- day's counts with the day's partition. The counts of entries stored before this migration are
-- filled from `logs` here.
--
-- log_commits records the order in which writer transactions committed: each takes the next
-- number of log_commit_sequence as its last statement, so the row lock orders the commits, and
-- a number is never visible before every smaller one is. An entry's transaction is its id's
-- claim (log_ids.claim), hence the index. Safe to run twice.

CREATE TABLE IF NOT EXISTS log_counts (
    source VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    bucket DATETIME NOT NULL COMMENT 'the minute of ts',
    level ENUM('debug', 'info', 'warning', 'error', 'critical') NOT NULL,
    entries BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (source, bucket, level)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

CREATE TABLE IF NOT EXISTS log_counts_hourly (
    source VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    bucket DATETIME NOT NULL COMMENT 'the hour of ts',
    level ENUM('debug', 'info', 'warning', 'error', 'critical') NOT NULL,
    entries BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (source, bucket, level)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

CREATE TABLE IF NOT EXISTS log_level_counts (
    bucket DATETIME NOT NULL COMMENT 'the minute of ts',
    level ENUM('debug', 'info', 'warning', 'error', 'critical') NOT NULL,
    entries BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (bucket, level)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS log_level_counts_hourly (
    bucket DATETIME NOT NULL COMMENT 'the hour of ts',
    level ENUM('debug', 'info', 'warning', 'error', 'critical') NOT NULL,
    entries BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (bucket, level)
) ENGINE=InnoDB;

-- unless: SELECT 1 FROM log_counts LIMIT 1
INSERT INTO log_counts (source, bucket, level, entries)
SELECT source, DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00'), level, COUNT(*) FROM logs GROUP BY 1, 2, 3;

-- unless: SELECT 1 FROM log_counts_hourly LIMIT 1
INSERT INTO log_counts_hourly (source, bucket, level, entries)
SELECT source, DATE_FORMAT(ts, '%Y-%m-%d %H:00:00'), level, COUNT(*) FROM logs GROUP BY 1, 2, 3;

-- unless: SELECT 1 FROM log_level_counts LIMIT 1
INSERT INTO log_level_counts (bucket, level, entries) SELECT bucket, level, SUM(entries) FROM log_counts GROUP BY 1, 2;

-- unless: SELECT 1 FROM log_level_counts_hourly LIMIT 1
INSERT INTO log_level_counts_hourly (bucket, level, entries) SELECT bucket, level, SUM(entries) FROM log_counts_hourly GROUP BY 1, 2;

CREATE TABLE IF NOT EXISTS log_commit_sequence (
    id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    seq BIGINT UNSIGNED NOT NULL COMMENT 'the last number taken'
) ENGINE=InnoDB;

INSERT IGNORE INTO log_commit_sequence (id, seq) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS log_commits (
    seq BIGINT UNSIGNED NOT NULL PRIMARY KEY COMMENT 'commit order',
    claim BIGINT UNSIGNED NOT NULL COMMENT 'the transaction (log_ids.claim)',
    committed_on DATE NOT NULL,
    KEY log_commits_committed_on (committed_on)
) ENGINE=InnoDB;

-- unless: SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'log_ids' AND INDEX_NAME = 'log_ids_claim'
ALTER TABLE log_ids ADD KEY log_ids_claim (claim);
