-- Ephemeral Vault schema, part 1: shared helpers and the sessions table.
--
-- Built from the hand-written reference schema (shared/reference/vault-schema.sql), which had
-- never been run. Its tables, columns and names are kept; each departure is explained where it
-- is made and starts with "FIX:" (the reference was wrong or could not work) or "ADDED:".
--
-- Conventions of every migration:
-- * Chain times (created_at, expires_at, last_activity, ... as BIGINT) are unix seconds of the
--   chain's clock, as the program stores them (i64). The database's own bookkeeping times are
--   TIMESTAMPTZ.
-- * FIX: amounts are Solana u64 values. BIGINT is an i64 and cannot hold the upper half of the
--   u64 range (u64::MAX = 18446744073709551615 overflows it), so every amount column is
--   NUMERIC(20,0) with a CHECK for 0..=u64::MAX: exact, never negative, never wider than u64.
-- * The database refuses malformed values (formats, enums, ranges), not chain facts: the chain
--   is the authority on its own invariants, and refusing one of its events would stall the
--   indexer rather than protect anything.
-- * Constraints have names, so an error says which rule was broken.

-- FIX: the reference set updated_at only where a function happened to remember it. This keeps
-- it on every UPDATE that changes the row (an UPDATE that rewrites identical values is not a
-- change). Its triggers are named zz_... because PostgreSQL fires a table's triggers of one kind
-- in name order, and this one must see the row as the other BEFORE triggers leave it.
-- The trigger's arguments name generated columns to leave out of the comparison: a BEFORE
-- trigger sees them as NULL in NEW (they are computed afterwards), so every row would look
-- changed.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ignored TEXT[] := COALESCE(TG_ARGV, '{}');
BEGIN
    IF (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

-- ===== SESSIONS TABLE =====
-- One row per session. Two writers fill it, in either order: the indexer from chain events
-- (the chain columns) and the session service (the key and the request metadata); both upsert on
-- session_id.
CREATE TABLE ephemeral_sessions (
    id SERIAL PRIMARY KEY,
    -- FIX: a canonical lowercase UUID. The chain keeps the id as 16 bytes and the service as
    -- text; if two spellings of one id were accepted, the indexer's row and the service's row
    -- for the same session would never meet.
    session_id VARCHAR(36) UNIQUE NOT NULL
        CONSTRAINT sessions_session_id_format
        CHECK (session_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    -- Public keys in base58: 32 bytes encode to 32..44 characters of Bitcoin's alphabet.
    parent_wallet VARCHAR(44) NOT NULL
        CONSTRAINT sessions_parent_wallet_base58 CHECK (parent_wallet ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    -- The current delegate; delegation_history keeps the earlier ones.
    ephemeral_wallet VARCHAR(44) NOT NULL
        CONSTRAINT sessions_ephemeral_wallet_base58 CHECK (ephemeral_wallet ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    -- FIX: nullable. The indexer may insert the session from its chain events before the service
    -- has registered the key (or never, for a session opened by another client); NOT NULL would
    -- make that insert fail.
    encrypted_keypair BYTEA,
    vault_pda VARCHAR(44) NOT NULL
        CONSTRAINT sessions_vault_pda_base58 CHECK (vault_pda ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    -- ADDED: the vault's token mint; NULL for a native SOL session (the chain's default key).
    -- Amounts of a session are in this mint's base units, or lamports.
    mint VARCHAR(44)
        CONSTRAINT sessions_mint_base58 CHECK (mint ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
-- Timing
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- FIX: no wall-clock default. DEFAULT EXTRACT(EPOCH FROM NOW()) stamped a backfilled
    -- session with the time of indexing, and since last_activity never moves backwards it would
    -- have stayed wrong (EXTRACT also returns NUMERIC since PG 14, which the BIGINT rounds, up to
    -- half a second into the future). The trigger below starts it at created_at instead.
    last_activity BIGINT NOT NULL,
    revoked_at BIGINT,
    cleaned_at BIGINT,
-- Status
    -- ADDED: the lifecycle, as the chain and the cleanup bot see it. 'expired' is set by whoever
    -- notices (the chain does not store it); the views decide expiry by expires_at anyway.
    status VARCHAR(16) NOT NULL DEFAULT 'active'
        CONSTRAINT sessions_status_values CHECK (status IN ('active', 'revoked', 'expired', 'cleaned')),
    -- FIX: derived from status instead of written, so the two can never disagree. Writing it is
    -- an error, which is louder than a silently ignored value.
    is_active BOOLEAN NOT NULL GENERATED ALWAYS AS (status = 'active') STORED,
-- Financials (FIX: NUMERIC(20,0), see the header)
    approved_amount NUMERIC(20, 0) NOT NULL
        CONSTRAINT sessions_approved_amount_u64 CHECK (approved_amount >= 0 AND approved_amount <= 18446744073709551615),
    -- ADDED: the most one trade (amount plus fee) may spend; NULL until the chain reports it.
    per_trade_cap NUMERIC(20, 0)
        CONSTRAINT sessions_per_trade_cap_u64 CHECK (per_trade_cap >= 0 AND per_trade_cap <= 18446744073709551615),
    total_deposited NUMERIC(20, 0) NOT NULL DEFAULT 0
        CONSTRAINT sessions_total_deposited_u64 CHECK (total_deposited >= 0 AND total_deposited <= 18446744073709551615),
    total_spent NUMERIC(20, 0) NOT NULL DEFAULT 0
        CONSTRAINT sessions_total_spent_u64 CHECK (total_spent >= 0 AND total_spent <= 18446744073709551615),
    -- ADDED: what the parent took back before cleanup. Without it the balance
    -- (deposited - spent) is wrong as soon as the parent withdraws.
    total_withdrawn NUMERIC(20, 0) NOT NULL DEFAULT 0
        CONSTRAINT sessions_total_withdrawn_u64 CHECK (total_withdrawn >= 0 AND total_withdrawn <= 18446744073709551615),
    -- ADDED: the part of total_spent paid to the delegate as fee top-ups (the chain reports it
    -- in every event's totals).
    total_fee_top_ups NUMERIC(20, 0) NOT NULL DEFAULT 0
        CONSTRAINT sessions_total_fee_top_ups_u64 CHECK (total_fee_top_ups >= 0 AND total_fee_top_ups <= 18446744073709551615),
    -- ADDED: slot of the newest chain event folded into this row. Events carry absolute totals,
    -- so the indexer applies one only if its slot is not older than this (replays and
    -- out-of-order delivery then cannot roll the totals back).
    last_event_slot BIGINT
        CONSTRAINT sessions_last_event_slot_nonnegative CHECK (last_event_slot >= 0),
-- Metadata
    user_ip VARCHAR(45),
    user_agent TEXT,
    device_fingerprint VARCHAR(64),
    -- FIX: TIMESTAMPTZ, not TIMESTAMP: a timestamp without zone is read in the session's
    -- TimeZone, so two services in different zones would disagree about the same row. NOT NULL
    -- since the default always fills it.
    created_at_timestamp TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- ADDED: status and timestamps tell the same story, or the views would contradict each other.
    CONSTRAINT sessions_cleaned_iff_cleaned_at CHECK ((status = 'cleaned') = (cleaned_at IS NOT NULL)),
    CONSTRAINT sessions_revoked_has_revoked_at CHECK (status <> 'revoked' OR revoked_at IS NOT NULL)
);
CREATE INDEX idx_sessions_parent_wallet ON ephemeral_sessions(parent_wallet);
-- Kept from the reference although the UNIQUE constraint's index already serves these lookups:
-- sessions are few and written rarely, so the duplicate costs little; a later migration may drop it.
CREATE INDEX idx_sessions_session_id ON ephemeral_sessions(session_id);
CREATE INDEX idx_sessions_active ON ephemeral_sessions(is_active) WHERE is_active = true;
CREATE INDEX idx_sessions_expires_at ON ephemeral_sessions(expires_at);
CREATE INDEX idx_sessions_vault_pda ON ephemeral_sessions(vault_pda);

-- last_activity starts at the session's creation (chain time) unless the writer knows better,
-- and never moves backwards: events arrive out of order and get replayed, and an older one must
-- not undo a newer one.
CREATE FUNCTION sessions_keep_last_activity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.last_activity := COALESCE(NEW.last_activity, NEW.created_at);
    ELSE
        NEW.last_activity := GREATEST(OLD.last_activity, NEW.last_activity);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER sessions_keep_last_activity
BEFORE INSERT OR UPDATE ON ephemeral_sessions
FOR EACH ROW
EXECUTE FUNCTION sessions_keep_last_activity();

CREATE TRIGGER zz_set_updated_at
BEFORE UPDATE ON ephemeral_sessions
FOR EACH ROW
EXECUTE FUNCTION set_updated_at('is_active');
