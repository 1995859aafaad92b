-- Planned visits (docs/visits.md): every step of a visit's night, shipped from the journal like
-- alarm_events. Schedule 3 returns and visit punctuality are computed from these rows.

CREATE TABLE IF NOT EXISTS visit_events (
    at           timestamptz NOT NULL,   -- engine time of the step (scheme time under simulation)
    scheme       text        NOT NULL,
    night        date        NOT NULL,   -- the local date the night starts (noon to noon)
    visit_id     text        NOT NULL,
    run          text        NOT NULL,
    client_ref   text        NOT NULL,   -- the resident's client reference, never a name
    step         text        NOT NULL,   -- planned, checked_in, checked_out, frustrated, cancelled,
                                         -- moved, extra, late_alert, contact_due, contacted,
                                         -- pulled_away, non_arrival, missed, refused
    carer_id     text,
    alarm_id     uuid,                   -- the non-arrival alarm, or the alarm that took the carer
    agreed_at    timestamptz NOT NULL,   -- the visit's agreed time as it stood at this step
    detail       jsonb       NOT NULL DEFAULT '{}',
    gateway_id   text        NOT NULL,
    journal_seq  bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS visit_events_visit ON visit_events (scheme, night, visit_id, at);
CREATE INDEX IF NOT EXISTS visit_events_scheme_step ON visit_events (scheme, step, at);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('visit_events', 'at',
                                  chunk_time_interval => INTERVAL '7 days', if_not_exists => TRUE);
    END IF;
END
$$;
