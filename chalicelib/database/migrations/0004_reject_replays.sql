-- When a set-aside entry was sent back to the log queue (chalicelib/replay.py); NULL: never.

-- unless: SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'log_rejects' AND COLUMN_NAME = 'replayed_at'
ALTER TABLE log_rejects ADD COLUMN replayed_at DATETIME(6) NULL, ADD KEY log_rejects_replayed_at (replayed_at, rejected_at);
