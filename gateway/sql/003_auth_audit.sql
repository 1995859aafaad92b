-- The audit trail: append-only. The gateway writes it through telecare_audit_writer, a role
-- that may INSERT and nothing else; a trigger refuses UPDATE, DELETE and TRUNCATE for every
-- role, the table's owner included (who would have to drop the trigger first, itself a DDL
-- statement a DBA can log).

CREATE TABLE IF NOT EXISTS audit_log (
    entry_id    uuid        PRIMARY KEY,   -- chosen by the writer: a re-sent entry is ignored
    at          timestamptz NOT NULL,      -- real UTC time of the action (never scheme time)
    username    text,                      -- null when nobody is signed in (a failed sign-in)
    role        text,
    action      text        NOT NULL,      -- session.sign_in, carer.status, users.disable...
    target      text,                      -- the user, carer, device or alarm acted on
    outcome     text        NOT NULL,      -- ok, failed, limited, denied
    address     text,                      -- the client's address as the gateway saw it
    detail      jsonb       NOT NULL DEFAULT '{}',
    source      text        NOT NULL,      -- gateway id, or "cli"
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at DESC);
CREATE INDEX IF NOT EXISTS audit_log_user ON audit_log (username, at DESC);

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Roles belong to the whole cluster: several databases (and concurrent test runs) may reach
-- this point together, so creating and joining the role tolerate having been done already.
-- A login role without CREATEROLE (as production should be) cannot do either: then a DBA
-- creates the role and grants it to the gateway's role (docs/security.md); until then the
-- gateway keeps audit entries in its local outbox and logs why they wait.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'telecare_audit_writer') THEN
        BEGIN
            CREATE ROLE telecare_audit_writer NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role telecare_audit_writer: a DBA must (docs/security.md)';
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'telecare_audit_writer') THEN
        IF NOT pg_has_role(current_user, 'telecare_audit_writer', 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT telecare_audit_writer TO %I', current_user);
            EXCEPTION WHEN OTHERS THEN
                IF NOT pg_has_role(current_user, 'telecare_audit_writer', 'MEMBER') THEN
                    RAISE NOTICE 'cannot join telecare_audit_writer: a DBA must grant it (%)',
                        SQLERRM;
                END IF;
            END;
        END IF;
        REVOKE ALL ON audit_log FROM telecare_audit_writer;
        GRANT INSERT ON audit_log TO telecare_audit_writer;
        -- ON CONFLICT (entry_id) needs to read the key, and only the key (random uuids).
        GRANT SELECT (entry_id) ON audit_log TO telecare_audit_writer;
    END IF;
END
$$;

REVOKE ALL ON audit_log FROM PUBLIC;
