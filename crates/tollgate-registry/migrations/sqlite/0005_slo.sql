-- Each instance's requests per service-level objective and minute (`minute`, ms), good
-- ones apart: the fleet's error budget and burn rates are sums over instances.
CREATE TABLE slo_minutes (
    objective TEXT NOT NULL,
    minute INTEGER NOT NULL,
    instance TEXT NOT NULL,
    good INTEGER NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (objective, minute, instance)
);
CREATE INDEX slo_minutes_at ON slo_minutes (minute);
