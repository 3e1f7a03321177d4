-- Each stored entry says which key wrote it (NULL: stored before this migration, or where keys are
-- not required), and each claimed id which source claimed it: an id is unique among a source's
-- entries, and another source's entry with the same id is set aside with its reason
-- (chalicelib/consumer/logids.py). Ids claimed before this migration have no source (NULL) and
-- count as the same source's. Both columns are added in place (no table copy); safe to run twice.

-- unless: SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'logs' AND COLUMN_NAME = 'key_id'
ALTER TABLE logs ADD COLUMN key_id CHAR(20) CHARACTER SET ascii COLLATE ascii_bin NULL COMMENT 'the API key that wrote it';

-- unless: SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'log_ids' AND COLUMN_NAME = 'source'
ALTER TABLE log_ids ADD COLUMN source VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL COMMENT 'the source whose entry claimed it (NULL: before migration 0005)';
