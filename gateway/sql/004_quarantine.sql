-- Rows the database refused, set aside so the rows behind them still ship (issue: one input
-- must never stop the record). The shipper finds the refused row by splitting its batch, and
-- writes it here with the database's error, in the transaction that moves the watermark past it.
CREATE TABLE IF NOT EXISTS ship_quarantine (
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    gateway_id      text        NOT NULL,
    journal_epoch   text        NOT NULL,
    stream          text        NOT NULL,   -- records, dead_letters or engine_log
    journal_seq     bigint      NOT NULL,
    row_kind        text,                   -- event, callout... or the engine log's stream
    sqlstate        text,                   -- PostgreSQL's error code, when it gave one
    error           text        NOT NULL,   -- the database's (or the row reader's) message
    row_text        text        NOT NULL,   -- the journal row, escaped so it can be stored
    PRIMARY KEY (gateway_id, journal_epoch, stream, journal_seq)
);

-- Control-room instructions (a carer's status, a device's test window) get their own table:
-- they are not carer messages, and a device's test window has no carer.
CREATE TABLE IF NOT EXISTS control_records (
    received_at  timestamptz NOT NULL,
    scheme       text        NOT NULL,
    op           text        NOT NULL,   -- carer_status, device_mode
    target       text        NOT NULL,   -- the carer or device it is about
    requested_by text        NOT NULL,
    body         jsonb       NOT NULL,
    gateway_id   text        NOT NULL,
    journal_seq  bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS control_records_target ON control_records (scheme, target, received_at DESC);
