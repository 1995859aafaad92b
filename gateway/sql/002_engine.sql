-- Alarm engine records: every lifecycle step, every routing decision, every notification,
-- technical faults, and what carers' handsets sent.

CREATE TABLE IF NOT EXISTS alarm_events (
    at           timestamptz NOT NULL,   -- engine time of the step (scheme time under simulation)
    alarm_id     uuid        NOT NULL,
    scheme       text        NOT NULL,
    step         text        NOT NULL,   -- raised, offered, accepted, arrived, resolved, offer_timeout...
    priority     text        NOT NULL,
    carer_id     text,
    occurred_at  timestamptz,            -- when the input behind the step happened (device clock)
    received_at  timestamptz,            -- when the gateway received that input
    detail       jsonb       NOT NULL DEFAULT '{}',
    gateway_id   text        NOT NULL,
    journal_seq  bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS alarm_events_alarm ON alarm_events (alarm_id, at);

CREATE TABLE IF NOT EXISTS alarm_decisions (
    at           timestamptz NOT NULL,
    alarm_id     uuid        NOT NULL,
    scheme       text        NOT NULL,
    record       jsonb       NOT NULL,
    gateway_id   text        NOT NULL,
    journal_seq  bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS alarm_decisions_alarm ON alarm_decisions (alarm_id, at);

CREATE TABLE IF NOT EXISTS notifications (
    at           timestamptz NOT NULL,
    scheme       text        NOT NULL,
    kind         text        NOT NULL,   -- control_room, on_call, edt, follow_up, careline, technical
    code         text        NOT NULL,
    priority     text,
    alarm_id     uuid,
    target       text,                   -- carer id, callout id or device id
    message      text        NOT NULL,
    body         jsonb       NOT NULL DEFAULT '{}',
    gateway_id   text        NOT NULL,
    journal_seq  bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_alarm ON notifications (alarm_id, at);

CREATE TABLE IF NOT EXISTS carer_messages (
    received_at  timestamptz NOT NULL,
    scheme       text        NOT NULL,
    carer_id     text        NOT NULL,
    kind         text        NOT NULL,   -- action or presence
    body         jsonb       NOT NULL,
    gateway_id   text        NOT NULL,
    journal_seq  bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS carer_messages_carer ON carer_messages (scheme, carer_id, received_at DESC);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('alarm_events', 'at',
                                  chunk_time_interval => INTERVAL '7 days', if_not_exists => TRUE);
        PERFORM create_hypertable('alarm_decisions', 'at',
                                  chunk_time_interval => INTERVAL '7 days', if_not_exists => TRUE);
        PERFORM create_hypertable('notifications', 'at',
                                  chunk_time_interval => INTERVAL '7 days', if_not_exists => TRUE);
        PERFORM create_hypertable('carer_messages', 'received_at',
                                  chunk_time_interval => INTERVAL '7 days', if_not_exists => TRUE);
    END IF;
END
$$;
