-- Ephemeral Vault schema, part 8: least-privilege roles.
--
-- ADDED (the reference only had a commented-out GRANT of everything to one user):
--   vault_indexer   writes what the chain says: the sessions' chain columns, transactions,
--                   delegations, cleanups, analytics, alerts; appends to the audit log
--   vault_service   writes the sessions' off-chain metadata (the encrypted key, IP, user agent,
--                   device), rate limits, alerts; appends to the audit log; reads everything
--   vault_readonly  reads, except the encrypted session keys
-- The roles are created WITHOUT a password and NOLOGIN: a deployment grants them to its login
-- roles (GRANT vault_service TO app_login) or gives them LOGIN and a password itself;
-- scripts/postgres.sh does the latter for the trust-authenticated dev cluster only.
-- Migrating needs a role with CREATEROLE (or a superuser) that owns the tables. Later migrations
-- must grant on the tables they add: there are no default privileges, on purpose.

-- Roles are cluster-wide while migrations run per database, so several databases of one cluster
-- (parallel tests, say) may run this at the same moment. Creating a role that exists raises
-- duplicate_object; creating one that a concurrent transaction has just created raises
-- unique_violation on pg_authid's name index once that transaction commits. Both mean the role
-- is there, which is all this block wants. Nothing else here touches shared catalogs in a way
-- that can conflict: the GRANTs below change this database's objects only.
DO $$
DECLARE
    role_name TEXT;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['vault_indexer', 'vault_service', 'vault_readonly'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- PG 15 already keeps PUBLIC from creating objects in the public schema; older servers did not.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO vault_indexer, vault_service, vault_readonly;

-- ----- vault_readonly -----
GRANT SELECT ON vault_transactions, delegation_history, cleanup_events, session_analytics,
    security_alerts, rate_limits, audit_log TO vault_readonly;
-- Every session column but the encrypted key.
GRANT SELECT (id, session_id, parent_wallet, ephemeral_wallet, vault_pda, mint, created_at,
    expires_at, last_activity, revoked_at, cleaned_at, status, is_active, approved_amount,
    per_trade_cap, total_deposited, total_spent, total_withdrawn, total_fee_top_ups,
    last_event_slot, user_ip, user_agent, device_fingerprint, created_at_timestamp, updated_at)
    ON ephemeral_sessions TO vault_readonly;
GRANT SELECT ON active_sessions_view, cleanup_candidates_view, alerts_summary_view TO vault_readonly;

-- ----- vault_indexer -----
GRANT SELECT ON vault_transactions, delegation_history, cleanup_events, session_analytics,
    security_alerts, rate_limits TO vault_indexer;
GRANT SELECT (id, session_id, parent_wallet, ephemeral_wallet, vault_pda, mint, created_at,
    expires_at, last_activity, revoked_at, cleaned_at, status, is_active, approved_amount,
    per_trade_cap, total_deposited, total_spent, total_withdrawn, total_fee_top_ups,
    last_event_slot, user_ip, user_agent, device_fingerprint, created_at_timestamp, updated_at)
    ON ephemeral_sessions TO vault_indexer;
GRANT SELECT ON active_sessions_view, cleanup_candidates_view, alerts_summary_view TO vault_indexer;
-- The chain's columns of a session, never the service's metadata.
GRANT INSERT (session_id, parent_wallet, ephemeral_wallet, vault_pda, mint, created_at, expires_at,
    last_activity, revoked_at, cleaned_at, status, approved_amount, per_trade_cap,
    total_deposited, total_spent, total_withdrawn, total_fee_top_ups, last_event_slot)
    ON ephemeral_sessions TO vault_indexer;
GRANT UPDATE (ephemeral_wallet, mint, created_at, expires_at, last_activity, revoked_at,
    cleaned_at, status, approved_amount, per_trade_cap, total_deposited, total_spent,
    total_withdrawn, total_fee_top_ups, last_event_slot)
    ON ephemeral_sessions TO vault_indexer;
-- No DELETE anywhere: chain history is corrected by updating a row's status, not erased.
GRANT INSERT, UPDATE ON vault_transactions, delegation_history, cleanup_events, session_analytics
    TO vault_indexer;
GRANT INSERT ON security_alerts, audit_log TO vault_indexer;
-- An idempotent audit insert (INSERT ... ON CONFLICT on a unique index over metadata, for a
-- replayed chain event) has to read that column to find the conflict; the rest of the log stays
-- unreadable to the indexer.
GRANT SELECT (metadata) ON audit_log TO vault_indexer;
GRANT USAGE ON SEQUENCE ephemeral_sessions_id_seq, vault_transactions_id_seq,
    delegation_history_id_seq, cleanup_events_id_seq, session_analytics_id_seq,
    security_alerts_id_seq, audit_log_id_seq TO vault_indexer;

-- ----- vault_service -----
GRANT SELECT ON ephemeral_sessions, vault_transactions, delegation_history, cleanup_events,
    session_analytics, security_alerts, rate_limits, audit_log TO vault_service;
GRANT SELECT ON active_sessions_view, cleanup_candidates_view, alerts_summary_view TO vault_service;
-- It may register a session before the chain has it, so it may insert what the row requires
-- (the indexer overwrites those with the chain's values), but afterwards it only updates its
-- own metadata.
GRANT INSERT (session_id, parent_wallet, ephemeral_wallet, vault_pda, mint, created_at, expires_at,
    approved_amount, per_trade_cap, encrypted_keypair, user_ip, user_agent, device_fingerprint)
    ON ephemeral_sessions TO vault_service;
GRANT UPDATE (encrypted_keypair, user_ip, user_agent, device_fingerprint)
    ON ephemeral_sessions TO vault_service;
GRANT INSERT, UPDATE, DELETE ON rate_limits TO vault_service;
GRANT INSERT, UPDATE ON security_alerts TO vault_service;
GRANT INSERT ON audit_log TO vault_service;
GRANT USAGE ON SEQUENCE ephemeral_sessions_id_seq, rate_limits_id_seq, security_alerts_id_seq,
    audit_log_id_seq TO vault_service;

-- verify_audit_chain() is executable by PUBLIC (PostgreSQL's default for functions) and runs with
-- the caller's rights, so each role verifies exactly what it can read.
