-- When a replay of the dead letter was claimed, while one is under way: a replay claims it
-- with a conditional UPDATE first, so that two replays at once (from two admins, or two
-- instances) never both send it upstream. A claim older than the server's bound is taken
-- as left behind by an instance that stopped mid-replay, and may be taken over.
ALTER TABLE dead_letters ADD COLUMN replaying_since INTEGER;
