-- Commissioners' figures (docs/reports.md): indexes for the report queries, per-scheme target
-- overrides, and retention. Plain SQL that runs on PostgreSQL; a TimescaleDB under the
-- Timescale licence also gets scheduled retention (the Apache build has no job scheduler:
-- there `telecare db retention` runs the same function, from cron or a systemd timer).

-- Where each alarm starts (raised, or a test call that never was), per scheme and time: the
-- first step of every figure. Sleep-in disturbances are read by night the same way.
CREATE INDEX IF NOT EXISTS alarm_events_scheme_step ON alarm_events (scheme, step, at);
-- Device faults and their clearing, per scheme and time.
CREATE INDEX IF NOT EXISTS notifications_scheme_kind ON notifications (scheme, kind, at);
-- An alarm's raising record (client reference, device) is found by its receipt time.
CREATE INDEX IF NOT EXISTS device_events_scheme_received ON device_events (scheme, received_at);
CREATE INDEX IF NOT EXISTS careline_callouts_scheme_received
    ON careline_callouts (scheme, received_at);

-- Response targets. Built-in defaults (TSA answering 60 s / 97.5 % and 180 s / 99 %; council
-- on-site arrival 45 min / 90 % and 60 min / 100 % from the decision to deploy) apply unless a
-- row here says otherwise. '*' matches any scheme or priority; the most specific row wins.
CREATE TABLE IF NOT EXISTS report_targets (
    scheme     text         NOT NULL DEFAULT '*',
    priority   text         NOT NULL DEFAULT '*',
    measure    text         NOT NULL CHECK (measure IN ('answer', 'attend')),
    tier       smallint     NOT NULL CHECK (tier IN (1, 2)),
    within_s   integer      NOT NULL CHECK (within_s > 0),
    goal_pct   numeric(5,2) NOT NULL CHECK (goal_pct > 0 AND goal_pct <= 100),
    updated_at timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (scheme, priority, measure, tier)
);

-- Retention: raw heartbeats for `heartbeat_keep` (90 days by default); everything else the
-- gateway records (alarm lifecycle, decisions, notifications, call-outs, carer and control
-- records, other device events) for `record_keep` (8 years: adult social care records).
-- The audit trail is append-only by design (its trigger refuses DELETE for every role), so it
-- is not pruned here: a DBA removes whole years deliberately (docs/reports.md).
CREATE OR REPLACE FUNCTION telecare_retention(
    heartbeat_keep interval DEFAULT interval '90 days',
    record_keep    interval DEFAULT interval '8 years',
    as_of          timestamptz DEFAULT now()
) RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM device_events
     WHERE kind = 'heartbeat' AND received_at < as_of - heartbeat_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'device_events (heartbeats)'; rows_deleted := n; RETURN NEXT;

    DELETE FROM device_events WHERE received_at < as_of - record_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'device_events'; rows_deleted := n; RETURN NEXT;

    DELETE FROM alarm_events WHERE at < as_of - record_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'alarm_events'; rows_deleted := n; RETURN NEXT;

    DELETE FROM alarm_decisions WHERE at < as_of - record_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'alarm_decisions'; rows_deleted := n; RETURN NEXT;

    DELETE FROM notifications WHERE at < as_of - record_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'notifications'; rows_deleted := n; RETURN NEXT;

    DELETE FROM careline_callouts WHERE received_at < as_of - record_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'careline_callouts'; rows_deleted := n; RETURN NEXT;

    DELETE FROM carer_messages WHERE received_at < as_of - record_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'carer_messages'; rows_deleted := n; RETURN NEXT;

    DELETE FROM control_records WHERE received_at < as_of - record_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'control_records'; rows_deleted := n; RETURN NEXT;
END
$$;

-- Under the Timescale licence, schedule it daily. The Apache build (and plain PostgreSQL)
-- has no scheduler: `telecare db retention` calls the function instead.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
       AND current_setting('timescaledb.license', true) = 'timescale' THEN
        CREATE OR REPLACE PROCEDURE telecare_retention_job(job_id int, config jsonb)
        LANGUAGE plpgsql AS $job$
        BEGIN
            PERFORM telecare_retention();
        END
        $job$;
        IF NOT EXISTS (
            SELECT 1 FROM timescaledb_information.jobs
             WHERE proc_name = 'telecare_retention_job'
        ) THEN
            PERFORM add_job('telecare_retention_job', interval '1 day');
        END IF;
    END IF;
END
$$;
