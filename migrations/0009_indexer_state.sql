-- Ephemeral Vault schema, part 9: what the indexer needs to be exactly-once across crashes.
--
-- indexer_cursors: per source (yellowstone, rpc, ...), the newest transaction whose rows are
-- committed. The indexer advances it in the SAME database transaction as those rows, so after a
-- crash it resumes exactly where its last commit ended: nothing lost, and what it replays is
-- absorbed by the idempotent upserts below.
CREATE TABLE indexer_cursors (
    source VARCHAR(32) PRIMARY KEY,
    slot BIGINT NOT NULL CONSTRAINT indexer_cursors_slot_nonnegative CHECK (slot >= 0),
    signature VARCHAR(88)
        CONSTRAINT indexer_cursors_signature_base58 CHECK (signature ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- indexer_skipped: transactions that name the program but could not be recorded (undecodable
-- data, an action on a session the indexer never saw created). Kept with the reason so nothing
-- disappears silently; one row per signature, so replays do not pile up.
CREATE TABLE indexer_skipped (
    transaction_signature VARCHAR(88) PRIMARY KEY
        CONSTRAINT indexer_skipped_signature_base58 CHECK (transaction_signature ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'),
    block_slot BIGINT NOT NULL,
    reason TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Idempotency for the two append-only tables the indexer writes. An audit row for an on-chain
-- action carries `chain_ref` = '<signature>:<ordinal>'; an alert carries `dedup_key`. Inserting
-- the same one again (a replayed transaction) is a no-op through ON CONFLICT DO NOTHING.
CREATE UNIQUE INDEX audit_log_chain_ref_key ON audit_log ((metadata ->> 'chain_ref'))
    WHERE metadata ? 'chain_ref';
CREATE UNIQUE INDEX security_alerts_dedup_key ON security_alerts ((metadata ->> 'dedup_key'))
    WHERE metadata ? 'dedup_key';

-- Delegations can be seen out of order (a replay, two sources): the program counts rotations,
-- and the row with the highest count is the active one.
ALTER TABLE delegation_history ADD COLUMN rotation INTEGER NOT NULL DEFAULT 0
    CONSTRAINT delegation_rotation_nonnegative CHECK (rotation >= 0);
CREATE UNIQUE INDEX delegation_history_session_rotation_key ON delegation_history (session_id, rotation);

GRANT SELECT, INSERT, UPDATE ON indexer_cursors, indexer_skipped TO vault_indexer;
GRANT SELECT ON indexer_cursors, indexer_skipped TO vault_service, vault_readonly;

-- indexer_parked: transactions that arrived before the transaction that created their session
-- (two sources, a replay, or a backfill delivering out of order). They cannot be written yet -
-- every row references its session - so they wait here, whole, and are applied the moment the
-- session's creation is. One row per signature; applying is idempotent, so a parked
-- transaction seen again changes nothing.
CREATE TABLE indexer_parked (
    transaction_signature VARCHAR(88) PRIMARY KEY
        CONSTRAINT indexer_parked_signature_base58 CHECK (transaction_signature ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'),
    vault_pda VARCHAR(44) NOT NULL,
    block_slot BIGINT NOT NULL,
    chain_tx JSONB NOT NULL,
    parked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_indexer_parked_vault ON indexer_parked (vault_pda);
GRANT SELECT, INSERT, DELETE ON indexer_parked TO vault_indexer;
GRANT SELECT ON indexer_parked TO vault_service, vault_readonly;
