-- Ephemeral Vault schema, part 6: the audit log, append-only and hash-chained.
--
-- ADDED (the reference had a plain table any writer could edit):
-- * Append-only: triggers refuse UPDATE, DELETE and TRUNCATE, for every role including the
--   owner and superusers, and no application role is granted those privileges (0008).
-- * Hash-chained: every row stores row_hash = SHA-256 over a canonical encoding of its content
--   and of prev_hash, the previous row's row_hash. Whoever gets around the guard (a superuser can
--   disable a trigger) and edits, deletes or reorders rows breaks the chain at that row, and
--   verify_audit_chain() names it. What the chain cannot show is a cut-off tail or a chain
--   recomputed from scratch by a superuser; publishing the latest row_hash somewhere else from
--   time to time covers both.
-- * One chain under concurrency: the BEFORE INSERT trigger takes a transaction-scoped advisory
--   lock, then reads the current head and assigns chain_seq = head + 1 and prev_hash = head's
--   hash. The SERIAL id cannot be the position: defaults are evaluated before any trigger runs,
--   so ids are handed out before the lock, and their order need not be commit order. The lock is
--   held to the end of the inserting transaction, so audit inserts of concurrent transactions
--   queue behind each other: write audit rows at the end of a transaction, or in their own.
--   Under READ COMMITTED (PostgreSQL's default) each statement of the trigger sees every commit
--   made before it got the lock. A REPEATABLE READ or SERIALIZABLE transaction reads the head
--   as of its snapshot, which may be stale; the UNIQUE chain_seq then makes its insert fail
--   rather than fork the chain.
-- * Restoring: a full pg_dump restore loads the rows before it creates the triggers, so they keep
--   their hashes and times. A data-only restore into this schema must use --disable-triggers, or
--   the chain trigger would re-chain every row with new times.

-- ===== AUDIT LOG TABLE =====
CREATE TABLE audit_log (
    id SERIAL PRIMARY KEY,
    -- No foreign key and no format check on session_id: the log must also record attempts
    -- against sessions that do not exist or ids that are malformed, and outlive any row it names.
    session_id VARCHAR(36),
    parent_wallet VARCHAR(44),
    -- Action details
    action VARCHAR(50) NOT NULL,
    actor VARCHAR(44) NOT NULL, -- wallet that performed action (or a service's name)
    target VARCHAR(44), -- target wallet/account if applicable
    -- Request details
    ip_address VARCHAR(45),
    user_agent TEXT,
    -- Result
    success BOOLEAN NOT NULL,
    error_message TEXT,
    -- Additional data
    metadata JSONB,
    -- FIX: TIMESTAMPTZ (see 0001). The chain trigger sets it to the clock at the moment the row
    -- joins the chain: a writer cannot back-date an audit entry, and times follow chain order.
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- ADDED: position in the chain, 1, 2, 3, ... without gaps (set by the trigger).
    chain_seq BIGINT NOT NULL,
    -- ADDED: row_hash of the row at chain_seq - 1; NULL only for the first row.
    prev_hash BYTEA,
    -- ADDED: audit_log_row_hash() of this row.
    row_hash BYTEA NOT NULL,
    CONSTRAINT audit_log_chain_seq_key UNIQUE (chain_seq),
    CONSTRAINT audit_log_chain_seq_positive CHECK (chain_seq > 0),
    CONSTRAINT audit_log_genesis_has_no_prev CHECK ((chain_seq = 1) = (prev_hash IS NULL)),
    CONSTRAINT audit_log_hash_lengths
        CHECK (octet_length(row_hash) = 32 AND (prev_hash IS NULL OR octet_length(prev_hash) = 32))
);
CREATE INDEX idx_audit_session_id ON audit_log(session_id);
CREATE INDEX idx_audit_parent_wallet ON audit_log(parent_wallet);
CREATE INDEX idx_audit_action ON audit_log(action);
CREATE INDEX idx_audit_created_at ON audit_log(created_at);

-- ===== HASHING =====
-- One field of the canonical encoding: 0x00 for NULL, else 0x01, the UTF-8 length as a 4-byte
-- big-endian integer, and the UTF-8 bytes. Length-prefixed, so no two different rows can
-- concatenate to the same bytes.
CREATE FUNCTION audit_log_field(value TEXT) RETURNS BYTEA
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN value IS NULL THEN '\x00'::BYTEA
        ELSE '\x01'::BYTEA || int4send(octet_length(convert_to(value, 'UTF8'))) || convert_to(value, 'UTF8')
    END
$$;

-- row_hash = SHA-256 of: the tag 'ephemeral-vault/audit_log/v1', then as fields in this order:
-- chain_seq, prev_hash (lowercase hex), id, session_id, parent_wallet, action, actor, target,
-- ip_address, user_agent, success ('true'/'false'), error_message, metadata (jsonb's text form,
-- which is normalized: key order and whitespace do not depend on the writer), created_at (UTC,
-- 'YYYY-MM-DDTHH:MM:SS.ffffffZ'). Texts only, so an external verifier can recompute it.
-- PostgreSQL's built-in sha256() (PG 11+) needs no extension. A new column joins the hash only
-- with a new tag (v2) and a verifier that knows both.
CREATE FUNCTION audit_log_row_hash(r audit_log) RETURNS BYTEA
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(
        convert_to('ephemeral-vault/audit_log/v1', 'UTF8')
        || audit_log_field(r.chain_seq::TEXT)
        || audit_log_field(encode(r.prev_hash, 'hex'))
        || audit_log_field(r.id::TEXT)
        || audit_log_field(r.session_id)
        || audit_log_field(r.parent_wallet)
        || audit_log_field(r.action)
        || audit_log_field(r.actor)
        || audit_log_field(r.target)
        || audit_log_field(r.ip_address)
        || audit_log_field(r.user_agent)
        || audit_log_field(CASE WHEN r.success THEN 'true' WHEN NOT r.success THEN 'false' END)
        || audit_log_field(r.error_message)
        || audit_log_field(r.metadata::TEXT)
        || audit_log_field(to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
    )
$$;

-- ===== CHAINING =====
-- SECURITY DEFINER: it reads the chain's head, which a writer granted only INSERT could not.
CREATE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    head_seq BIGINT;
    head_hash BYTEA;
BEGIN
    -- The key is 'auditlog' in ASCII as a bigint. Advisory locks are per database, so
    -- databases in one cluster do not wait for each other.
    PERFORM pg_advisory_xact_lock(7022629598041763687);
    SELECT a.chain_seq, a.row_hash INTO head_seq, head_hash
    FROM audit_log a
    ORDER BY a.chain_seq DESC
    LIMIT 1;
    -- Whatever the writer put in these columns is replaced.
    NEW.chain_seq := COALESCE(head_seq, 0) + 1;
    NEW.prev_hash := head_hash;
    NEW.created_at := clock_timestamp();
    NEW.row_hash := audit_log_row_hash(NEW);
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_chain
BEFORE INSERT ON audit_log
FOR EACH ROW
EXECUTE FUNCTION audit_log_chain();

-- ===== APPEND-ONLY GUARD =====
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Record a correction as a new audit row.';
END
$$;
CREATE TRIGGER audit_log_append_only
BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW
EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT
EXECUTE FUNCTION audit_log_refuse_change();

-- ALWAYS: also under session_replication_role = replica, which otherwise skips triggers (that
-- setting is how a superuser bulk-loads without them, and how logical replication applies
-- changes). Only an explicit ALTER TABLE ... DISABLE TRIGGER gets past the guard, and the
-- chain then shows the edit.
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_chain;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;

-- ===== VERIFICATION =====
-- The first row where the chain does not hold, or no row when it all does: walks the rows in
-- chain order and checks that positions run 1, 2, 3, ... without gaps, that each prev_hash is the
-- previous row's row_hash, and that each row_hash still matches the row's content.
CREATE FUNCTION verify_audit_chain()
RETURNS TABLE (chain_seq BIGINT, id INTEGER, problem TEXT)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public AS $$
DECLARE
    r audit_log;
    expected_seq BIGINT := 1;
    expected_prev BYTEA := NULL;
BEGIN
    FOR r IN SELECT * FROM audit_log a ORDER BY a.chain_seq LOOP
        chain_seq := r.chain_seq;
        id := r.id;
        IF r.chain_seq IS DISTINCT FROM expected_seq THEN
            problem := format('chain position %s found where %s was expected (rows missing or renumbered)',
                              r.chain_seq, expected_seq);
        ELSIF r.prev_hash IS DISTINCT FROM expected_prev THEN
            problem := 'prev_hash is not the previous row''s row_hash';
        ELSIF r.row_hash IS DISTINCT FROM audit_log_row_hash(r) THEN
            problem := 'content does not match row_hash (row edited)';
        END IF;
        IF problem IS NOT NULL THEN
            RETURN NEXT;
            RETURN;
        END IF;
        expected_seq := r.chain_seq + 1;
        expected_prev := r.row_hash;
    END LOOP;
END
$$;
