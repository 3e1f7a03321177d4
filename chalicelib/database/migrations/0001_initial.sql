-- The tables of the first release: items, logs and set-aside log entries.
-- Every statement is safe to run twice.

CREATE TABLE IF NOT EXISTS items (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    description TEXT NOT NULL,
    attributes JSON NOT NULL,
    version INT UNSIGNED NOT NULL,
    updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS logs (
    id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    level ENUM('debug', 'info', 'warning', 'error', 'critical') NOT NULL,
    source VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    message TEXT NOT NULL,
    ts DATETIME(6) NOT NULL,
    attributes JSON NOT NULL,
    received_at DATETIME(6) NOT NULL,
    stored_at DATETIME(6) NOT NULL,
    KEY logs_ts (ts, id),
    KEY logs_source_ts (source, ts, id),
    KEY logs_level_ts (level, ts, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS log_rejects (
    message_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    entry_index INT NOT NULL COMMENT '-1: the whole message',
    log_id CHAR(36) CHARACTER SET ascii NULL,
    reason VARCHAR(2000) NOT NULL,
    body MEDIUMTEXT NOT NULL,
    rejected_at DATETIME(6) NOT NULL,
    PRIMARY KEY (message_id, entry_index)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
