-- Ephemeral Vault schema, part 2: the vault instructions seen on chain.

-- ===== VAULT TRANSACTIONS TABLE =====
-- One row per vault instruction. The indexer upserts on (transaction_signature,
-- instruction_index); the session service may insert a row as 'pending' before the chain has it.
CREATE TABLE vault_transactions (
    id SERIAL PRIMARY KEY,
    session_id VARCHAR(36) NOT NULL REFERENCES ephemeral_sessions(session_id),
    -- FIX: no longer UNIQUE on its own: one Solana transaction can carry several vault
    -- instructions (create_session and deposit in one, say), each of which is a row here. The
    -- pair (transaction_signature, instruction_index) is unique instead, below.
    -- A signature is 64 bytes, 64..88 characters of base58.
    transaction_signature VARCHAR(88) NOT NULL
        CONSTRAINT transactions_signature_base58 CHECK (transaction_signature ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'),
    -- ADDED: which vault instruction of the transaction this row is, counted in the order the
    -- indexer walks the transaction's instructions (inner ones included, for calls through
    -- another program); 0 for the first or only one.
    instruction_index INTEGER NOT NULL DEFAULT 0
        CONSTRAINT transactions_instruction_index_nonnegative CHECK (instruction_index >= 0),
    -- FIX: the comment listed five types; the program has eight instructions that touch a
    -- session, and a value outside them is a bug in a writer.
    transaction_type VARCHAR(20) NOT NULL
        CONSTRAINT transactions_type_values CHECK (transaction_type IN (
            'create', 'deposit', 'trade', 'withdraw', 'top_up', 'approve_delegate', 'revoke', 'cleanup')),
-- Transaction details (FIX: NUMERIC(20,0) u64, see 0001)
    amount NUMERIC(20, 0) NOT NULL
        CONSTRAINT transactions_amount_u64 CHECK (amount >= 0 AND amount <= 18446744073709551615),
    -- The trade's fee as the program charges it to the vault (TradeExecuted.fee), not the
    -- network fee of the Solana transaction.
    fee_amount NUMERIC(20, 0)
        CONSTRAINT transactions_fee_amount_u64 CHECK (fee_amount >= 0 AND fee_amount <= 18446744073709551615),
    -- FIX: the program's trade_id is a u64 too.
    trade_id NUMERIC(20, 0)
        CONSTRAINT transactions_trade_id_u64 CHECK (trade_id >= 0 AND trade_id <= 18446744073709551615),
-- Status
    -- FIX: 'finalized' added: the indexer follows a transaction from confirmed to finalized.
    status VARCHAR(20) NOT NULL DEFAULT 'pending'
        CONSTRAINT transactions_status_values CHECK (status IN ('pending', 'confirmed', 'finalized', 'failed')),
    -- Block time (unix seconds) of the slot that included it: the chain's clock, used as the
    -- session's activity time.
    confirmed_at BIGINT,
-- Blockchain info
    block_slot BIGINT
        CONSTRAINT transactions_block_slot_nonnegative CHECK (block_slot >= 0),
-- Metadata
    metadata JSONB,
    error_message TEXT,
    -- FIX: TIMESTAMPTZ (see 0001).
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- ADDED: rows change status after insertion; this says when they last did.
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT vault_transactions_signature_instruction_key UNIQUE (transaction_signature, instruction_index),
    -- ADDED: a trade id on anything but a trade is a writer's mistake.
    CONSTRAINT transactions_trade_id_only_on_trades CHECK (trade_id IS NULL OR transaction_type = 'trade')
);
CREATE INDEX idx_transactions_session_id ON vault_transactions(session_id);
-- Kept from the reference; the (signature, instruction_index) key's index also serves lookups by
-- signature, so a later migration may drop this one.
CREATE INDEX idx_transactions_signature ON vault_transactions(transaction_signature);
CREATE INDEX idx_transactions_type ON vault_transactions(transaction_type);
CREATE INDEX idx_transactions_status ON vault_transactions(status);
CREATE INDEX idx_transactions_created_at ON vault_transactions(created_at);

CREATE TRIGGER zz_set_updated_at
BEFORE UPDATE ON vault_transactions
FOR EACH ROW
EXECUTE FUNCTION set_updated_at();
