-- When a key was last used (ms since the epoch), as the usage writer stores its events.
ALTER TABLE keys ADD COLUMN last_used_at INTEGER;
