-- Ephemeral Vault schema, part 10: what the session service (indexer/src/service/) needs beyond
-- 0001..0009.
--
-- ADDED:
-- * service_request_nonces: every signed request carries a nonce, and a nonce is accepted once
--   per wallet. A row only has to outlive the request's timestamp window (a request older than
--   the allowed clock skew is refused on its timestamp alone), so expires_at = timestamp + skew
--   and the service deletes rows past it. The primary key makes "seen before?" and "remember it"
--   one atomic INSERT ... ON CONFLICT DO NOTHING, so two concurrent replays cannot both pass.
-- * service_record_relay / service_fail_relay: the trade relay writes a 'pending'
--   vault_transactions row (signature, instruction 0) before the indexer has seen the
--   transaction, and marks it 'failed' when the chain refused it outright (a preflight refusal
--   never lands, so the indexer would never settle it). 0008 deliberately gives vault_service no
--   INSERT/UPDATE on vault_transactions (chain history is the indexer's); rather than widen that
--   to the whole table, these two SECURITY DEFINER functions are the only way in: they write
--   nothing but pending relay rows of an existing session, and only move such a row from
--   'pending' to 'failed'. Everything else about the row stays the indexer's, which confirms it
--   through its usual upsert on (transaction_signature, instruction_index).
-- * The envelope in ephemeral_sessions.encrypted_keypair is the service's own versioned binary
--   format (indexer/src/service/crypto.rs); it needs no column of its own: the key id it was
--   wrapped under is inside it, and the rotation reads it from there.

CREATE TABLE service_request_nonces (
    wallet VARCHAR(44) NOT NULL
        CONSTRAINT service_nonces_wallet_base58 CHECK (wallet ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    nonce VARCHAR(64) NOT NULL
        CONSTRAINT service_nonces_nonce_format CHECK (nonce ~ '^[A-Za-z0-9_-]{16,64}$'),
    -- Unix seconds after which the request's timestamp would be refused anyway.
    expires_at BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT service_request_nonces_pkey PRIMARY KEY (wallet, nonce)
);
CREATE INDEX idx_service_nonces_expires_at ON service_request_nonces (expires_at);

GRANT SELECT, INSERT, DELETE ON service_request_nonces TO vault_service;
GRANT SELECT ON service_request_nonces TO vault_readonly;

-- A pending relay row. Returns false when the (signature, 0) row already exists (the indexer got
-- there first, or a retry): the indexer's row wins.
CREATE FUNCTION service_record_relay(
    p_session_id VARCHAR,
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
    INSERT INTO vault_transactions (session_id, transaction_signature, instruction_index,
        transaction_type, amount, fee_amount, trade_id, status, metadata)
    VALUES (p_session_id, p_signature, 0, p_type, p_amount, p_fee, p_trade_id, 'pending',
        COALESCE(p_metadata, '{}'::jsonb) || '{"source": "relay"}'::jsonb)
    ON CONFLICT (transaction_signature, instruction_index) DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted > 0;
END
$$;

-- Marks a relay row the chain refused. Only a row the relay wrote and that is still pending.
CREATE FUNCTION service_fail_relay(p_signature VARCHAR, p_error TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    updated INTEGER;
BEGIN
    UPDATE vault_transactions
    SET status = 'failed', error_message = left(p_error, 2000)
    WHERE transaction_signature = p_signature
      AND instruction_index = 0
      AND status = 'pending'
      AND metadata ->> 'source' = 'relay';
    GET DIAGNOSTICS updated = ROW_COUNT;
    RETURN updated > 0;
END
$$;

REVOKE EXECUTE ON FUNCTION service_record_relay(VARCHAR, VARCHAR, VARCHAR, NUMERIC, NUMERIC, NUMERIC, JSONB) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION service_fail_relay(VARCHAR, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION service_record_relay(VARCHAR, VARCHAR, VARCHAR, NUMERIC, NUMERIC, NUMERIC, JSONB) TO vault_service;
GRANT EXECUTE ON FUNCTION service_fail_relay(VARCHAR, TEXT) TO vault_service;
