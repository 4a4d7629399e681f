-- Ephemeral Vault schema, part 4: per-session analytics, and the triggers that keep it and the
-- session's last_activity current as vault_transactions change.

-- ===== SESSION ANALYTICS TABLE =====
-- What the counters mean (the trigger below maintains them; no writer should touch them):
--   total_trades       every trade row of the session, whatever its status: attempts, pending
--                      ones included (pending = total - successful - failed)
--   successful_trades  trades 'confirmed' or 'finalized' (the reference counted only
--                      'confirmed': a trade indexed as 'finalized' was never a success)
--   failed_trades      trades 'failed'
--   total_volume       sum of amount over successful trades only: a failed trade moved nothing
--                      (the reference added every trade's amount, failed ones included)
--   total_fees_paid    sum of fee_amount over successful trades only: the program charges the
--                      trade fee only when the trade executes
--   avg_trade_size     floor(total_volume / successful_trades): the same population as
--                      total_volume; NULL while there is no successful trade
-- The remaining metrics (confirmation time, duration, rate, peak hour) cannot be derived from one
-- row change; the indexer fills them (it may write this table, see 0008).
CREATE TABLE session_analytics (
    id SERIAL PRIMARY KEY,
    session_id VARCHAR(36) NOT NULL REFERENCES ephemeral_sessions(session_id),
    -- Usage metrics
    total_trades INTEGER NOT NULL DEFAULT 0,
    successful_trades INTEGER NOT NULL DEFAULT 0,
    failed_trades INTEGER NOT NULL DEFAULT 0,
    -- Financial metrics (FIX: NUMERIC(20,0) u64, see 0001; a session's successful trades spend
    -- at most its approved amount, a u64, so the sums fit too)
    total_volume NUMERIC(20, 0) NOT NULL DEFAULT 0
        CONSTRAINT analytics_total_volume_u64 CHECK (total_volume >= 0 AND total_volume <= 18446744073709551615),
    total_fees_paid NUMERIC(20, 0) NOT NULL DEFAULT 0
        CONSTRAINT analytics_total_fees_paid_u64 CHECK (total_fees_paid >= 0 AND total_fees_paid <= 18446744073709551615),
    avg_trade_size NUMERIC(20, 0)
        CONSTRAINT analytics_avg_trade_size_u64 CHECK (avg_trade_size >= 0 AND avg_trade_size <= 18446744073709551615),
    -- Performance metrics
    avg_confirmation_time INTEGER, -- milliseconds
    session_duration INTEGER, -- seconds
    -- Activity pattern
    trades_per_minute NUMERIC(10, 2),
    peak_activity_hour INTEGER
        CONSTRAINT analytics_peak_activity_hour_range CHECK (peak_activity_hour BETWEEN 0 AND 23),
    -- FIX: TIMESTAMPTZ (see 0001).
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- FIX: update_session_analytics() upserts with ON CONFLICT (session_id), which needs a
    -- unique constraint on session_id; without one every insert into vault_transactions failed
    -- with "there is no unique or exclusion constraint matching the ON CONFLICT specification".
    CONSTRAINT session_analytics_session_id_key UNIQUE (session_id),
    -- ADDED: the counters partition the trades; a negative or overlapping count means a bug in
    -- the deltas below, which this turns into an error instead of a wrong dashboard.
    CONSTRAINT analytics_trade_counts CHECK (
        successful_trades >= 0 AND failed_trades >= 0 AND successful_trades + failed_trades <= total_trades)
);
-- Kept from the reference although the UNIQUE constraint's index serves the same lookups.
CREATE INDEX idx_analytics_session_id ON session_analytics(session_id);

CREATE TRIGGER zz_set_updated_at
BEFORE UPDATE ON session_analytics
FOR EACH ROW
EXECUTE FUNCTION set_updated_at();

-- ===== FUNCTIONS =====
-- Adds one set of deltas to a session's analytics row (the row exists: every transaction insert
-- creates it) and recomputes the average from the new sums.
CREATE FUNCTION session_analytics_add(
    p_session_id VARCHAR,
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
        -- div() truncates exactly; `/` on NUMERIC rounds to a scale chosen from its operands.
        avg_trade_size = CASE WHEN successful_trades + d_successful > 0
                              THEN div(total_volume + d_volume, successful_trades + d_successful)
                         END
    WHERE session_id = p_session_id;
END
$$;

-- FIX: the reference added +1 (and the amount) on every INSERT *and* UPDATE of a row, so a trade
-- inserted as 'pending' and then confirmed, finalized or failed was counted two or three times,
-- and any unrelated UPDATE (metadata, error_message) counted it again. Now each row contributes
-- according to its current state only: an UPDATE takes away what OLD contributed and adds what
-- NEW contributes (to OLD's and NEW's session respectively), a DELETE takes OLD's away. Any
-- sequence of status changes therefore ends with the same totals as one insert of the final
-- state.
-- SECURITY DEFINER (owner: the migrating role) so a writer of vault_transactions keeps the
-- derived table right without needing write access to it; search_path is pinned so the
-- definer's rights cannot be steered to other objects.
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
        -- Every session with a transaction has an analytics row, trades or not (as in the
        -- reference).
        INSERT INTO session_analytics (session_id)
        VALUES (NEW.session_id)
        ON CONFLICT (session_id) DO NOTHING;
    END IF;

    IF TG_OP = 'UPDATE' AND OLD.session_id = NEW.session_id THEN
        PERFORM session_analytics_add(NEW.session_id, n_trades - o_trades, n_ok - o_ok,
                                      n_failed - o_failed, n_volume - o_volume, n_fees - o_fees);
    ELSE
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            PERFORM session_analytics_add(OLD.session_id, -o_trades, -o_ok, -o_failed, -o_volume, -o_fees);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            PERFORM session_analytics_add(NEW.session_id, n_trades, n_ok, n_failed, n_volume, n_fees);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
-- FIX: also on DELETE (a removed row's contribution must go), and on UPDATE only of the columns
-- the counters read.
CREATE TRIGGER update_analytics_on_transaction
AFTER INSERT OR DELETE OR UPDATE OF session_id, transaction_type, status, amount, fee_amount
ON vault_transactions
FOR EACH ROW
EXECUTE FUNCTION update_session_analytics();

-- FIX: the reference stamped last_activity with the wall clock NOW() (as NUMERIC, rounded) when
-- the row was indexed, so backfilled history made every old session look active now. The
-- activity time is the transaction's chain time (confirmed_at) when the row has one, the
-- database's clock only for a row not yet on chain; and last_activity only moves forward (an old
-- transaction indexed late does not pull it back). The sessions trigger from 0001 enforces
-- that too; the WHERE clause just spares a no-op write.
-- It also fires when a row's status or chain time changes (pending -> confirmed brings the block
-- time), not only on insert. SECURITY DEFINER for the same reason as above.
CREATE OR REPLACE FUNCTION update_session_activity()
RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    activity BIGINT := COALESCE(NEW.confirmed_at, floor(extract(epoch FROM now()))::BIGINT);
BEGIN
    UPDATE ephemeral_sessions
    SET last_activity = activity
    WHERE session_id = NEW.session_id
      AND last_activity < activity;
    RETURN NULL;
END;
$$;
CREATE TRIGGER update_activity_on_transaction
AFTER INSERT OR UPDATE OF confirmed_at, status ON vault_transactions
FOR EACH ROW
EXECUTE FUNCTION update_session_activity();
