-- Ephemeral Vault schema, part 12: a session is one vault incarnation, never a bare session id.
--
-- FIX: the reference keyed every table on session_id, and 0001..0011 kept that (UNIQUE on
-- ephemeral_sessions.session_id, foreign keys to it, upserts on it). But the program derives a
-- vault from [b"vault", parent, session_id]: the same 16-byte id is legal for a second parent
-- (another vault), and again for the same parent once cleanup_vault has closed the vault (the
-- same vault address, a new account). Session ids are public in every event, so anyone could
-- open a session under a live session's id and have the indexer fold their transactions,
-- revocation and cleanup into the victim's row (observed on the local validator, issue 12).
--
-- What a session is now:
-- * One row of ephemeral_sessions per vault incarnation: created by one create_session
--   instruction, which the row names by (creation_signature, creation_instruction_index) - unique.
--   created_slot orders the incarnations of one vault. A vault has at most one open incarnation
--   at a time on chain; an event is folded into the newest incarnation of its vault created at or
--   before the event's position (slot, then order within the transaction).
-- * ephemeral_sessions.id is the session's key. Every table that pointed at a session by
--   session_id gets `session_ref` -> ephemeral_sessions(id) (NOT NULL where the reference's
--   session_id was), and the foreign keys move to it. session_id stays in every table (the
--   reference's column, and what people search by) but is no longer unique or referenced.
-- * A row the session service registers before the chain shows the session has no creation yet
--   (creation_signature NULL); the indexer claims it when the matching SessionCreated arrives.
--   At most one such open row per vault (partial unique index below).
-- * `bootstrapped`: the row was written from the vault account's state on chain (an indexer
--   started on a program that already had live sessions), not from its SessionCreated event;
--   its creation columns stay NULL until the event is seen, if ever.
-- * The public name of a session is (parent_wallet, session_id) for the newest incarnation -
--   exactly the vault address - and (vault_pda, creation_signature) for any incarnation. The
--   session service resolves a session id only within the signed caller's own wallet.
--
-- Rows written by an older version migrate without loss: session_id was unique before, so each
-- child row's session_ref is the one session row with its session_id; the creation columns are
-- filled from each session's landed 'create' row where the indexer had one.

-- ===== ephemeral_sessions: the incarnation's identity =====
ALTER TABLE ephemeral_sessions
    ADD COLUMN created_slot BIGINT
        CONSTRAINT sessions_created_slot_nonnegative CHECK (created_slot >= 0),
    ADD COLUMN creation_signature VARCHAR(88)
        CONSTRAINT sessions_creation_signature_base58 CHECK (creation_signature ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'),
    ADD COLUMN creation_instruction_index INTEGER
        CONSTRAINT sessions_creation_instruction_index_nonnegative CHECK (creation_instruction_index >= 0),
    ADD COLUMN bootstrapped BOOLEAN NOT NULL DEFAULT false,
    -- All three creation facts or none.
    ADD CONSTRAINT sessions_creation_complete CHECK (
        (creation_signature IS NULL) = (creation_instruction_index IS NULL)
        AND (creation_signature IS NULL) = (created_slot IS NULL));

ALTER TABLE ephemeral_sessions DISABLE TRIGGER zz_set_updated_at;
UPDATE ephemeral_sessions s
SET created_slot = c.block_slot,
    creation_signature = c.transaction_signature,
    creation_instruction_index = c.instruction_index
FROM (
    SELECT DISTINCT ON (session_id) session_id, block_slot, transaction_signature, instruction_index
    FROM vault_transactions
    WHERE transaction_type = 'create' AND status IN ('confirmed', 'finalized') AND block_slot IS NOT NULL
    ORDER BY session_id, block_slot, instruction_index
) c
WHERE c.session_id = s.session_id;
ALTER TABLE ephemeral_sessions ENABLE TRIGGER zz_set_updated_at;

CREATE UNIQUE INDEX sessions_creation_key ON ephemeral_sessions (creation_signature, creation_instruction_index)
    WHERE creation_signature IS NOT NULL;
-- Finding a vault's incarnations, newest first (every event's lookup).
CREATE INDEX idx_sessions_vault_incarnation ON ephemeral_sessions (vault_pda, created_slot DESC);
-- One not-yet-created (registered or bootstrapped) open row per vault: the service's upsert
-- target, and what the indexer claims.
CREATE UNIQUE INDEX sessions_one_uncreated_per_vault ON ephemeral_sessions (vault_pda)
    WHERE creation_signature IS NULL AND cleaned_at IS NULL;

-- ===== session_ref on every table that names a session =====
-- Fills session_ref from session_id for a writer that only knows the id (SQL written against
-- the reference schema), but only while the id names exactly one session: an ambiguous id is an
-- error, never a guess. Fills session_id from session_ref, and refuses the two disagreeing.
CREATE FUNCTION fill_session_ref() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    refs INTEGER[];
    named VARCHAR(36);
BEGIN
    -- An UPDATE that changes only session_id moves the row to the session that id names.
    IF TG_OP = 'UPDATE' AND NEW.session_id IS DISTINCT FROM OLD.session_id
       AND NEW.session_ref IS NOT DISTINCT FROM OLD.session_ref THEN
        NEW.session_ref := NULL;
    END IF;
    IF NEW.session_ref IS NULL THEN
        IF NEW.session_id IS NULL THEN
            RETURN NEW;
        END IF;
        SELECT array_agg(id) INTO refs
        FROM (SELECT id FROM ephemeral_sessions WHERE session_id = NEW.session_id LIMIT 2) found;
        IF cardinality(refs) = 1 THEN
            NEW.session_ref := refs[1];
            RETURN NEW;
        END IF;
        -- None, or several: the reference's foreign key on session_id would have refused the
        -- first; the second is the ambiguity this migration removes.
        RAISE EXCEPTION 'session id % names % sessions (vault incarnations): give session_ref',
            NEW.session_id, COALESCE(cardinality(refs), 0)
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_TABLE_NAME || '_session_ref_fkey';
    END IF;
    SELECT session_id INTO named FROM ephemeral_sessions WHERE id = NEW.session_ref;
    IF NEW.session_id IS NULL THEN
        NEW.session_id := named;
    ELSIF named IS NOT NULL AND NEW.session_id <> named THEN
        RAISE EXCEPTION 'session_ref % is session %, not %', NEW.session_ref, named, NEW.session_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

-- vault_transactions
ALTER TABLE vault_transactions DROP CONSTRAINT vault_transactions_session_id_fkey;
ALTER TABLE vault_transactions ADD COLUMN session_ref INTEGER;
ALTER TABLE vault_transactions DISABLE TRIGGER zz_set_updated_at;
UPDATE vault_transactions t SET session_ref = s.id FROM ephemeral_sessions s WHERE s.session_id = t.session_id;
ALTER TABLE vault_transactions ENABLE TRIGGER zz_set_updated_at;
ALTER TABLE vault_transactions
    ALTER COLUMN session_ref SET NOT NULL,
    ADD CONSTRAINT vault_transactions_session_ref_fkey FOREIGN KEY (session_ref) REFERENCES ephemeral_sessions(id);
CREATE INDEX idx_transactions_session_ref ON vault_transactions (session_ref);

-- delegation_history
ALTER TABLE delegation_history DROP CONSTRAINT delegation_history_session_id_fkey;
ALTER TABLE delegation_history ADD COLUMN session_ref INTEGER;
UPDATE delegation_history d SET session_ref = s.id FROM ephemeral_sessions s WHERE s.session_id = d.session_id;
ALTER TABLE delegation_history
    ALTER COLUMN session_ref SET NOT NULL,
    ADD CONSTRAINT delegation_history_session_ref_fkey FOREIGN KEY (session_ref) REFERENCES ephemeral_sessions(id);
-- The per-session keys of 0003 and 0009, now per incarnation.
ALTER TABLE delegation_history DROP CONSTRAINT delegation_history_session_approval_key;
ALTER TABLE delegation_history
    ADD CONSTRAINT delegation_history_session_approval_key UNIQUE (session_ref, approval_signature);
DROP INDEX delegation_history_session_rotation_key;
CREATE UNIQUE INDEX delegation_history_session_rotation_key ON delegation_history (session_ref, rotation);
DROP INDEX delegation_one_active_per_session;
CREATE UNIQUE INDEX delegation_one_active_per_session ON delegation_history (session_ref) WHERE is_active;

-- cleanup_events
ALTER TABLE cleanup_events DROP CONSTRAINT cleanup_events_session_id_fkey;
ALTER TABLE cleanup_events DROP CONSTRAINT cleanup_events_session_id_key;
ALTER TABLE cleanup_events ADD COLUMN session_ref INTEGER;
UPDATE cleanup_events c SET session_ref = s.id FROM ephemeral_sessions s WHERE s.session_id = c.session_id;
ALTER TABLE cleanup_events
    ALTER COLUMN session_ref SET NOT NULL,
    ADD CONSTRAINT cleanup_events_session_ref_fkey FOREIGN KEY (session_ref) REFERENCES ephemeral_sessions(id),
    -- An incarnation is cleaned at most once (cleanup closes its vault).
    ADD CONSTRAINT cleanup_events_session_ref_key UNIQUE (session_ref);
-- FIX: cleanup_signature is no longer unique on its own (0003 made it so): one transaction may
-- clean two incarnations of a vault (create, revoke, cleanup, create, revoke, cleanup), and the
-- second cleanup would have been dropped as a "replay". The incarnation is the key.
ALTER TABLE cleanup_events DROP CONSTRAINT cleanup_events_signature_key;
CREATE INDEX idx_cleanup_signature ON cleanup_events (cleanup_signature);

-- session_analytics
ALTER TABLE session_analytics DROP CONSTRAINT session_analytics_session_id_fkey;
ALTER TABLE session_analytics DROP CONSTRAINT session_analytics_session_id_key;
ALTER TABLE session_analytics ADD COLUMN session_ref INTEGER;
ALTER TABLE session_analytics DISABLE TRIGGER zz_set_updated_at;
UPDATE session_analytics a SET session_ref = s.id FROM ephemeral_sessions s WHERE s.session_id = a.session_id;
ALTER TABLE session_analytics ENABLE TRIGGER zz_set_updated_at;
ALTER TABLE session_analytics
    ALTER COLUMN session_ref SET NOT NULL,
    ADD CONSTRAINT session_analytics_session_ref_fkey FOREIGN KEY (session_ref) REFERENCES ephemeral_sessions(id),
    ADD CONSTRAINT session_analytics_session_ref_key UNIQUE (session_ref);

-- security_alerts (nullable, as session_id: an alert may be about a wallet)
ALTER TABLE security_alerts DROP CONSTRAINT security_alerts_session_id_fkey;
ALTER TABLE security_alerts ADD COLUMN session_ref INTEGER;
UPDATE security_alerts a SET session_ref = s.id FROM ephemeral_sessions s WHERE s.session_id = a.session_id;
ALTER TABLE security_alerts
    ADD CONSTRAINT security_alerts_session_ref_fkey FOREIGN KEY (session_ref) REFERENCES ephemeral_sessions(id);
CREATE INDEX idx_alerts_session_ref ON security_alerts (session_ref);

-- Only now: the foreign keys that needed it are gone.
ALTER TABLE ephemeral_sessions DROP CONSTRAINT ephemeral_sessions_session_id_key;

CREATE TRIGGER fill_session_ref BEFORE INSERT OR UPDATE OF session_id, session_ref ON vault_transactions
    FOR EACH ROW EXECUTE FUNCTION fill_session_ref();
CREATE TRIGGER fill_session_ref BEFORE INSERT OR UPDATE OF session_id, session_ref ON delegation_history
    FOR EACH ROW EXECUTE FUNCTION fill_session_ref();
CREATE TRIGGER fill_session_ref BEFORE INSERT OR UPDATE OF session_id, session_ref ON cleanup_events
    FOR EACH ROW EXECUTE FUNCTION fill_session_ref();
CREATE TRIGGER fill_session_ref BEFORE INSERT OR UPDATE OF session_id, session_ref ON session_analytics
    FOR EACH ROW EXECUTE FUNCTION fill_session_ref();
CREATE TRIGGER fill_session_ref BEFORE INSERT OR UPDATE OF session_id, session_ref ON security_alerts
    FOR EACH ROW EXECUTE FUNCTION fill_session_ref();

-- ===== the analytics and activity triggers of 0004, per incarnation =====
DROP TRIGGER update_analytics_on_transaction ON vault_transactions;
DROP FUNCTION session_analytics_add(VARCHAR, INTEGER, INTEGER, INTEGER, NUMERIC, NUMERIC);
CREATE FUNCTION session_analytics_add(
    p_session_ref INTEGER,
    d_trades INTEGER,
    d_successful INTEGER,
    d_failed INTEGER,
    d_volume NUMERIC,
    d_fees NUMERIC
) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    IF d_trades = 0 AND d_successful = 0 AND d_failed = 0 AND d_volume = 0 AND d_fees = 0 THEN
        RETURN;
    END IF;
    UPDATE session_analytics
    SET total_trades = total_trades + d_trades,
        successful_trades = successful_trades + d_successful,
        failed_trades = failed_trades + d_failed,
        total_volume = total_volume + d_volume,
        total_fees_paid = total_fees_paid + d_fees,
        avg_trade_size = CASE WHEN successful_trades + d_successful > 0
                              THEN div(total_volume + d_volume, successful_trades + d_successful)
                         END
    WHERE session_ref = p_session_ref;
END
$$;

-- Same rules as 0004 (each row contributes according to its current state), keyed on the
-- incarnation.
CREATE OR REPLACE FUNCTION update_session_analytics()
RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    o_trades INTEGER := 0; o_ok INTEGER := 0; o_failed INTEGER := 0;
    o_volume NUMERIC := 0; o_fees NUMERIC := 0;
    n_trades INTEGER := 0; n_ok INTEGER := 0; n_failed INTEGER := 0;
    n_volume NUMERIC := 0; n_fees NUMERIC := 0;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.transaction_type = 'trade' THEN
        o_trades := 1;
        IF OLD.status IN ('confirmed', 'finalized') THEN
            o_ok := 1;
            o_volume := OLD.amount;
            o_fees := COALESCE(OLD.fee_amount, 0);
        ELSIF OLD.status = 'failed' THEN
            o_failed := 1;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.transaction_type = 'trade' THEN
        n_trades := 1;
        IF NEW.status IN ('confirmed', 'finalized') THEN
            n_ok := 1;
            n_volume := NEW.amount;
            n_fees := COALESCE(NEW.fee_amount, 0);
        ELSIF NEW.status = 'failed' THEN
            n_failed := 1;
        END IF;
    END IF;

    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO session_analytics (session_id, session_ref)
        VALUES (NEW.session_id, NEW.session_ref)
        ON CONFLICT (session_ref) DO NOTHING;
    END IF;

    IF TG_OP = 'UPDATE' AND OLD.session_ref = NEW.session_ref THEN
        PERFORM session_analytics_add(NEW.session_ref, n_trades - o_trades, n_ok - o_ok,
                                      n_failed - o_failed, n_volume - o_volume, n_fees - o_fees);
    ELSE
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            PERFORM session_analytics_add(OLD.session_ref, -o_trades, -o_ok, -o_failed, -o_volume, -o_fees);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            PERFORM session_analytics_add(NEW.session_ref, n_trades, n_ok, n_failed, n_volume, n_fees);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER update_analytics_on_transaction
AFTER INSERT OR DELETE OR UPDATE OF session_ref, transaction_type, status, amount, fee_amount
ON vault_transactions
FOR EACH ROW
EXECUTE FUNCTION update_session_analytics();

CREATE OR REPLACE FUNCTION update_session_activity()
RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    activity BIGINT := COALESCE(NEW.confirmed_at, floor(extract(epoch FROM now()))::BIGINT);
BEGIN
    UPDATE ephemeral_sessions
    SET last_activity = activity
    WHERE id = NEW.session_ref
      AND last_activity < activity;
    RETURN NULL;
END;
$$;

-- ===== views: one row per incarnation =====
-- The reference's columns first and unchanged; ADDED at the end: session_ref (the session's
-- key), created_slot and creation_signature (which incarnation of the vault it is).
CREATE OR REPLACE VIEW active_sessions_view AS
SELECT
    s.session_id,
    s.parent_wallet,
    s.vault_pda,
    s.created_at,
    s.expires_at,
    s.total_deposited,
    s.total_spent,
    (s.total_deposited - s.total_spent - s.total_withdrawn) AS remaining_balance,
    COALESCE(a.total_trades, 0) AS total_trades,
    COALESCE(a.total_volume, 0) AS total_volume,
    s.mint,
    s.approved_amount,
    s.total_withdrawn,
    (s.approved_amount - s.total_spent) AS remaining_allowance,
    s.last_activity,
    s.id AS session_ref,
    s.created_slot,
    s.creation_signature
FROM ephemeral_sessions s
LEFT JOIN session_analytics a ON a.session_ref = s.id
WHERE s.is_active = true
  AND s.expires_at > floor(extract(epoch FROM now()))::BIGINT;

-- A registered session the chain never showed (creation_signature NULL, not bootstrapped) has no
-- vault to clean: it is not a candidate.
CREATE OR REPLACE VIEW cleanup_candidates_view AS
SELECT
    session_id,
    parent_wallet,
    vault_pda,
    expires_at,
    total_deposited,
    total_spent,
    floor(extract(epoch FROM now()))::BIGINT - expires_at AS seconds_expired,
    status,
    mint,
    total_withdrawn,
    revoked_at,
    id AS session_ref,
    created_slot,
    creation_signature
FROM ephemeral_sessions
WHERE (expires_at <= floor(extract(epoch FROM now()))::BIGINT OR is_active = false)
    AND cleaned_at IS NULL
    AND (creation_signature IS NOT NULL OR bootstrapped);

CREATE OR REPLACE VIEW alerts_summary_view AS
SELECT
    s.session_id,
    s.parent_wallet,
    COUNT(a.id) AS total_alerts,
    COUNT(a.id) FILTER (WHERE a.severity = 'critical') AS critical_alerts,
    COUNT(a.id) FILTER (WHERE a.severity = 'high') AS high_alerts,
    MAX(a.created_at) AS last_alert_time,
    s.id AS session_ref
FROM ephemeral_sessions s
LEFT JOIN security_alerts a ON a.session_ref = s.id AND a.is_resolved = false
GROUP BY s.id, s.session_id, s.parent_wallet;

-- ===== the relay's pending row names its incarnation =====
DROP FUNCTION service_record_relay(VARCHAR, VARCHAR, VARCHAR, NUMERIC, NUMERIC, NUMERIC, JSONB);
CREATE FUNCTION service_record_relay(
    p_session_ref INTEGER,
    p_signature VARCHAR,
    p_type VARCHAR,
    p_amount NUMERIC,
    p_fee NUMERIC,
    p_trade_id NUMERIC,
    p_metadata JSONB
) RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    inserted INTEGER;
BEGIN
    IF p_type NOT IN ('trade', 'top_up') THEN
        RAISE EXCEPTION 'the relay only sends trades and fee top-ups, not %', p_type
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO vault_transactions (session_ref, transaction_signature, instruction_index,
        transaction_type, amount, fee_amount, trade_id, status, metadata)
    VALUES (p_session_ref, p_signature, 0, p_type, p_amount, p_fee, p_trade_id, 'pending',
        COALESCE(p_metadata, '{}'::jsonb) || '{"source": "relay"}'::jsonb)
    ON CONFLICT (transaction_signature, instruction_index) DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted > 0;
END
$$;
REVOKE EXECUTE ON FUNCTION service_record_relay(INTEGER, VARCHAR, VARCHAR, NUMERIC, NUMERIC, NUMERIC, JSONB) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION service_record_relay(INTEGER, VARCHAR, VARCHAR, NUMERIC, NUMERIC, NUMERIC, JSONB) TO vault_service;

-- ===== what cannot be applied waits a bounded time =====
-- indexer_parked holds only events of a transaction that landed on a vault with no known
-- incarnation (a refused instruction is recorded at once). After the indexer's configured number
-- of slots a parked transaction moves to indexer_skipped (kind 'session_unknown'); finding
-- those costs an index range scan, not a pass over the table.
CREATE INDEX idx_indexer_parked_slot ON indexer_parked (block_slot);

-- ===== roles (0008): the new columns =====
GRANT SELECT (created_slot, creation_signature, creation_instruction_index, bootstrapped)
    ON ephemeral_sessions TO vault_readonly, vault_indexer;
GRANT INSERT (created_slot, creation_signature, creation_instruction_index, bootstrapped)
    ON ephemeral_sessions TO vault_indexer;
GRANT UPDATE (created_slot, creation_signature, creation_instruction_index, bootstrapped)
    ON ephemeral_sessions TO vault_indexer;
