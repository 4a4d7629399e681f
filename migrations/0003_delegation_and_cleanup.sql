-- Ephemeral Vault schema, part 3: delegate approvals and vault cleanups, from chain events.

-- ===== DELEGATION HISTORY TABLE =====
-- One row per delegate approval. A rotation closes the active row (is_active = false,
-- revoked_at, revocation_signature) and opens a new one, in one database transaction.
CREATE TABLE delegation_history (
    id SERIAL PRIMARY KEY,
    session_id VARCHAR(36) NOT NULL REFERENCES ephemeral_sessions(session_id),
    vault_pda VARCHAR(44) NOT NULL
        CONSTRAINT delegation_vault_pda_base58 CHECK (vault_pda ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    delegate_wallet VARCHAR(44) NOT NULL
        CONSTRAINT delegation_delegate_wallet_base58 CHECK (delegate_wallet ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    -- Timing
    approved_at BIGINT NOT NULL,
    revoked_at BIGINT,
    -- Transaction info
    approval_signature VARCHAR(88)
        CONSTRAINT delegation_approval_signature_base58 CHECK (approval_signature ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'),
    revocation_signature VARCHAR(88)
        CONSTRAINT delegation_revocation_signature_base58 CHECK (revocation_signature ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'),
    -- Status
    is_active BOOLEAN NOT NULL DEFAULT true,
    -- FIX: TIMESTAMPTZ (see 0001).
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- ADDED: replaying an approval event inserts nothing the second time
    -- (INSERT ... ON CONFLICT (session_id, approval_signature) DO NOTHING). Rows without a
    -- signature are not deduplicated: NULLs are distinct in a UNIQUE constraint.
    CONSTRAINT delegation_history_session_approval_key UNIQUE (session_id, approval_signature),
    -- ADDED: a delegation with a revocation time is over.
    CONSTRAINT delegation_active_not_revoked CHECK (NOT is_active OR revoked_at IS NULL)
);
CREATE INDEX idx_delegation_session_id ON delegation_history(session_id);
CREATE INDEX idx_delegation_vault_pda ON delegation_history(vault_pda);
CREATE INDEX idx_delegation_active ON delegation_history(is_active) WHERE is_active = true;
-- ADDED: the program approves one delegate per vault at a time, so at most one row of a session
-- is active; a second one means a rotation was recorded without closing the previous row.
CREATE UNIQUE INDEX delegation_one_active_per_session ON delegation_history(session_id) WHERE is_active;

-- ===== CLEANUP EVENTS TABLE =====
-- One row per cleaned vault (VaultCleaned event).
CREATE TABLE cleanup_events (
    id SERIAL PRIMARY KEY,
    -- FIX: UNIQUE: cleanup closes the vault account, so a session is cleaned at most once; a
    -- second row could only be a replayed event.
    session_id VARCHAR(36) NOT NULL REFERENCES ephemeral_sessions(session_id)
        CONSTRAINT cleanup_events_session_id_key UNIQUE,
    vault_pda VARCHAR(44) NOT NULL
        CONSTRAINT cleanup_vault_pda_base58 CHECK (vault_pda ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    -- Financial details (FIX: NUMERIC(20,0) u64, see 0001)
    -- The balance returned, in the vault's unit (lamports for SOL, base units for a token).
    returned_to_parent NUMERIC(20, 0) NOT NULL
        CONSTRAINT cleanup_returned_to_parent_u64 CHECK (returned_to_parent >= 0 AND returned_to_parent <= 18446744073709551615),
    -- Lamports paid to cleanup_caller out of the reclaimed rent.
    cleanup_reward NUMERIC(20, 0) NOT NULL
        CONSTRAINT cleanup_reward_u64 CHECK (cleanup_reward >= 0 AND cleanup_reward <= 18446744073709551615),
    -- ADDED: rent lamports returned to the parent (VaultCleaned.rent_returned); for a token
    -- session these are not in returned_to_parent's unit, so they need their own column.
    rent_returned NUMERIC(20, 0)
        CONSTRAINT cleanup_rent_returned_u64 CHECK (rent_returned >= 0 AND rent_returned <= 18446744073709551615),
    -- Cleanup info
    cleanup_caller VARCHAR(44) NOT NULL
        CONSTRAINT cleanup_caller_base58 CHECK (cleanup_caller ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    -- FIX: UNIQUE, so recording a cleanup is idempotent: INSERT ... ON CONFLICT
    -- (cleanup_signature) DO NOTHING.
    cleanup_signature VARCHAR(88) NOT NULL
        CONSTRAINT cleanup_events_signature_key UNIQUE
        CONSTRAINT cleanup_signature_base58 CHECK (cleanup_signature ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'),
    cleanup_timestamp BIGINT NOT NULL,
    -- Reason: the program's CleanupReason, in the same words.
    cleanup_reason VARCHAR(50) NOT NULL
        CONSTRAINT cleanup_reason_values CHECK (cleanup_reason IN ('expired', 'manual_revoke', 'emergency')),
    -- FIX: TIMESTAMPTZ (see 0001).
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Kept from the reference although the UNIQUE constraint's index serves the same lookups.
CREATE INDEX idx_cleanup_session_id ON cleanup_events(session_id);
CREATE INDEX idx_cleanup_vault_pda ON cleanup_events(vault_pda);
CREATE INDEX idx_cleanup_timestamp ON cleanup_events(cleanup_timestamp);
