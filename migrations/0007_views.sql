-- Ephemeral Vault schema, part 7: views. The reference's columns come first, in its order;
-- ADDED columns follow.
-- "Now" in chain terms is the database's clock as whole unix seconds: floor() because
-- EXTRACT(EPOCH ...) is a NUMERIC with microseconds since PG 14.

-- ===== VIEWS =====
-- Active sessions overview
CREATE VIEW active_sessions_view AS
SELECT
    s.session_id,
    s.parent_wallet,
    s.vault_pda,
    s.created_at,
    s.expires_at,
    s.total_deposited,
    s.total_spent,
    -- FIX: withdrawals leave the vault too; deposited - spent overstated the balance of every
    -- session whose parent had taken funds back.
    (s.total_deposited - s.total_spent - s.total_withdrawn) AS remaining_balance,
    -- FIX: a session without an analytics row (no transaction yet) has made 0 trades of 0 volume,
    -- not NULL ones.
    COALESCE(a.total_trades, 0) AS total_trades,
    COALESCE(a.total_volume, 0) AS total_volume,
    -- ADDED
    s.mint,
    s.approved_amount,
    s.total_withdrawn,
    (s.approved_amount - s.total_spent) AS remaining_allowance,
    s.last_activity
FROM ephemeral_sessions s
LEFT JOIN session_analytics a ON s.session_id = a.session_id
-- FIX: also not past its expiry. The program refuses every delegate action from expires_at on
-- (now >= expires_at), whether or not anyone has marked the session expired yet; such a session
-- belongs to cleanup_candidates_view, not here.
WHERE s.is_active = true
  AND s.expires_at > floor(extract(epoch FROM now()))::BIGINT;

-- Sessions needing cleanup: expired or no longer active (revoked, marked expired), and not yet
-- cleaned.
CREATE VIEW cleanup_candidates_view AS
SELECT
    session_id,
    parent_wallet,
    vault_pda,
    expires_at,
    total_deposited,
    total_spent,
    -- FIX: whole seconds (BIGINT), not a NUMERIC with microseconds. Negative for a session
    -- revoked before its expiry.
    floor(extract(epoch FROM now()))::BIGINT - expires_at AS seconds_expired,
    -- ADDED
    status,
    mint,
    total_withdrawn,
    revoked_at
FROM ephemeral_sessions
-- FIX: <=, as the program: a session is expired from the second expires_at on (now >= expires_at);
-- with < it would be neither active nor a cleanup candidate for that second.
WHERE (expires_at <= floor(extract(epoch FROM now()))::BIGINT OR is_active = false)
    AND cleaned_at IS NULL;

-- Security alerts summary: unresolved alerts per session, every session listed.
CREATE VIEW alerts_summary_view AS
SELECT
    s.session_id,
    s.parent_wallet,
    COUNT(a.id) AS total_alerts,
    -- FIX: COUNT ... FILTER is 0 when nothing matches; SUM(CASE ...) was NULL for a session
    -- without alerts.
    COUNT(a.id) FILTER (WHERE a.severity = 'critical') AS critical_alerts,
    COUNT(a.id) FILTER (WHERE a.severity = 'high') AS high_alerts,
    MAX(a.created_at) AS last_alert_time
FROM ephemeral_sessions s
-- FIX: the unresolved filter belongs to the join. In a WHERE clause it ran after the LEFT JOIN
-- and removed every session without an unresolved alert (its a.is_resolved is NULL), which
-- turned the LEFT JOIN into an inner one: sessions without alerts vanished instead of showing 0.
LEFT JOIN security_alerts a ON s.session_id = a.session_id AND a.is_resolved = false
GROUP BY s.session_id, s.parent_wallet;
