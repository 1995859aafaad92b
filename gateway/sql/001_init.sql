-- Telecare gateway: device events, Careline call-outs and dead letters.
-- Plain SQL that runs on PostgreSQL; hypertables are made only where TimescaleDB is present.

CREATE TABLE IF NOT EXISTS device_events (
    received_at  timestamptz NOT NULL,
    occurred_at  timestamptz NOT NULL,
    event_id     uuid        NOT NULL,
    scheme       text        NOT NULL,
    device_id    text        NOT NULL,
    kind         text        NOT NULL,
    seq          bigint,
    battery_pct  smallint,
    rssi         smallint,
    location     text,
    detail       jsonb,
    topic        text        NOT NULL,
    gateway_id   text        NOT NULL,
    journal_seq  bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS device_events_event_id ON device_events (event_id);
CREATE INDEX IF NOT EXISTS device_events_device ON device_events (scheme, device_id, received_at DESC);

CREATE TABLE IF NOT EXISTS careline_callouts (
    received_at   timestamptz NOT NULL,
    requested_at  timestamptz NOT NULL,
    callout_id    text        NOT NULL,
    scheme        text        NOT NULL,
    resident_ref  text        NOT NULL,
    reason        text        NOT NULL,
    priority      text        NOT NULL,
    operator      text        NOT NULL,
    notes         text        NOT NULL,
    gateway_id    text        NOT NULL,
    journal_seq   bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS careline_callouts_id ON careline_callouts (scheme, callout_id);

CREATE TABLE IF NOT EXISTS dead_letters (
    received_at   timestamptz NOT NULL,
    topic         text        NOT NULL,
    scheme        text,
    reason        text        NOT NULL,
    detail        text        NOT NULL,
    payload       bytea       NOT NULL,
    payload_size  integer     NOT NULL,
    gateway_id    text        NOT NULL,
    journal_seq   bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason, received_at DESC);

-- How far each gateway's journal (identified by its epoch) has been copied. Updated in the
-- same transaction as the COPY, so a batch is in the database exactly once.
CREATE TABLE IF NOT EXISTS ship_watermarks (
    gateway_id     text        NOT NULL,
    journal_epoch  text        NOT NULL,
    stream         text        NOT NULL,
    last_seq       bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, journal_epoch, stream)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('device_events', 'received_at',
                                  chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE);
        PERFORM create_hypertable('careline_callouts', 'received_at',
                                  chunk_time_interval => INTERVAL '7 days', if_not_exists => TRUE);
        PERFORM create_hypertable('dead_letters', 'received_at',
                                  chunk_time_interval => INTERVAL '7 days', if_not_exists => TRUE);
    END IF;
END
$$;
