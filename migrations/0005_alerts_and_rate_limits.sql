-- Ephemeral Vault schema, part 5: security alerts and the session service's rate limits.

-- ===== SECURITY ALERTS TABLE =====
CREATE TABLE security_alerts (
    id SERIAL PRIMARY KEY,
    -- NULL for an alert about a wallet rather than one session.
    session_id VARCHAR(36) REFERENCES ephemeral_sessions(session_id),
    alert_type VARCHAR(30) NOT NULL
        CONSTRAINT alerts_type_values CHECK (alert_type IN ('unusual_spending', 'high_frequency', 'ip_change', 'expired_session')),
    severity VARCHAR(10) NOT NULL
        CONSTRAINT alerts_severity_values CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    -- Alert details
    description TEXT NOT NULL,
    metadata JSONB,
    -- Status
    is_resolved BOOLEAN NOT NULL DEFAULT false,
    -- FIX: TIMESTAMPTZ (see 0001).
    resolved_at TIMESTAMPTZ,
    resolved_by VARCHAR(100),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- ADDED: resolved exactly when it has a resolution time, so "unresolved" has one meaning.
    CONSTRAINT alerts_resolved_iff_resolved_at CHECK (is_resolved = (resolved_at IS NOT NULL))
);
CREATE INDEX idx_alerts_session_id ON security_alerts(session_id);
CREATE INDEX idx_alerts_type ON security_alerts(alert_type);
CREATE INDEX idx_alerts_severity ON security_alerts(severity);
CREATE INDEX idx_alerts_unresolved ON security_alerts(is_resolved) WHERE is_resolved = false;

-- ===== RATE LIMITING TABLE =====
-- Fixed windows, one counter row per (parent_wallet, action_type). The 'system_default' rows
-- hold each action's limit: at most max_requests per window_seconds; a wallet's row may carry its
-- own max_requests/window_seconds to override them (NULL = the default's).
-- A request is counted atomically with one upsert on the unique key, e.g.
--   INSERT INTO rate_limits (parent_wallet, action_type, request_count, window_start, window_end)
--   VALUES ($wallet, $action, 1, $now, $now + $window)
--   ON CONFLICT (parent_wallet, action_type) DO UPDATE SET
--     request_count = CASE WHEN rate_limits.window_end <= $now THEN 1 ELSE rate_limits.request_count + 1 END,
--     window_start  = CASE WHEN rate_limits.window_end <= $now THEN $now ELSE rate_limits.window_start END,
--     window_end    = CASE WHEN rate_limits.window_end <= $now THEN $now + $window ELSE rate_limits.window_end END
--   RETURNING request_count;
-- and refused when the returned count exceeds the limit.
CREATE TABLE rate_limits (
    id SERIAL PRIMARY KEY,
    -- A wallet, or 'system_default' for the limits themselves.
    parent_wallet VARCHAR(44) NOT NULL
        CONSTRAINT rate_limits_parent_wallet_format
        CHECK (parent_wallet = 'system_default' OR parent_wallet ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    action_type VARCHAR(30) NOT NULL
        CONSTRAINT rate_limits_action_type_values CHECK (action_type IN ('session_create', 'deposit', 'trade')),
    -- Rate limit tracking
    request_count INTEGER NOT NULL DEFAULT 1
        CONSTRAINT rate_limits_request_count_nonnegative CHECK (request_count >= 0),
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    -- ADDED: the reference stored no limit at all, only counters. NULL on a wallet's row means
    -- the system_default row's value.
    max_requests INTEGER
        CONSTRAINT rate_limits_max_requests_positive CHECK (max_requests > 0),
    -- ADDED: the window's length, seconds; the reference only implied it by the seed rows'
    -- window_end - window_start.
    window_seconds INTEGER
        CONSTRAINT rate_limits_window_seconds_positive CHECK (window_seconds > 0),
    -- Status
    is_blocked BOOLEAN NOT NULL DEFAULT false,
    blocked_until BIGINT,
    -- FIX: TIMESTAMPTZ (see 0001).
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- ADDED: one counter per wallet and action, so it can be upserted atomically (above); two
    -- rows for one pair would split the count and let a wallet through at twice its limit.
    CONSTRAINT rate_limits_wallet_action_key UNIQUE (parent_wallet, action_type),
    CONSTRAINT rate_limits_window_order CHECK (window_end > window_start),
    CONSTRAINT rate_limits_default_has_limit
        CHECK (parent_wallet <> 'system_default' OR (max_requests IS NOT NULL AND window_seconds IS NOT NULL)),
    CONSTRAINT rate_limits_block_has_end CHECK (NOT is_blocked OR blocked_until IS NOT NULL)
);
CREATE INDEX idx_rate_limits_wallet ON rate_limits(parent_wallet);
CREATE INDEX idx_rate_limits_action ON rate_limits(action_type);
CREATE INDEX idx_rate_limits_window ON rate_limits(window_end);

CREATE TRIGGER zz_set_updated_at
BEFORE UPDATE ON rate_limits
FOR EACH ROW
EXECUTE FUNCTION set_updated_at();

-- ===== INITIAL DATA =====
-- The default limits per parent wallet:
--   session_create  10 per hour   (a session holds funds and a key: opening many is abuse)
--   deposit         30 per hour
--   trade           60 per minute (one per second on average: bots trade in bursts)
-- FIX: the reference seeded windows from NOW(), i.e. the moment of migrating, which meant
-- nothing and made two migrated databases differ. A default row's window is [0, length): its
-- counter is never used, and window_end - window_start still equals window_seconds.
INSERT INTO rate_limits (parent_wallet, action_type, request_count, window_start, window_end, max_requests, window_seconds)
VALUES
    ('system_default', 'session_create', 0, 0, 3600, 10, 3600),
    ('system_default', 'deposit', 0, 0, 3600, 30, 3600),
    ('system_default', 'trade', 0, 0, 60, 60, 60)
ON CONFLICT (parent_wallet, action_type) DO NOTHING;
