-- Ingestion and read keys (chalicelib/apikeys.py), and an index for GET /logs?source=&level=.

CREATE TABLE IF NOT EXISTS api_keys (
    id CHAR(20) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    token_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'SHA-256 of the token, hex',
    name VARCHAR(200) NOT NULL,
    scopes VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'comma-separated',
    sources JSON NOT NULL COMMENT 'exact source names, or prefixes ending in *',
    rate_per_s INT UNSIGNED NOT NULL,
    burst INT UNSIGNED NOT NULL,
    created_at DATETIME(6) NOT NULL,
    last_used_at DATETIME(6) NULL,
    revoked_at DATETIME(6) NULL,
    UNIQUE KEY api_keys_token_hash (token_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- unless: SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'logs' AND INDEX_NAME = 'logs_source_level_ts'
ALTER TABLE logs ADD INDEX logs_source_level_ts (source, level, ts, id);
