-- Ephemeral Vault schema, part 11: what `vault-indexer reprocess` needs to read a skipped
-- transaction again.
--
-- A source records here what it could not read (a transaction version newer than the client
-- crates, a runtime error variant they do not know, bytes that do not parse), beside what the
-- decoder could not decode. To re-read it once the indexer is upgraded - from the stored bytes,
-- without asking a node that may have pruned it - the row keeps the node's raw answer:
--   kind            why, as a word (the `reason` label of vault_indexer_skipped_total);
--   raw_format      how `raw` is encoded: 'rpc_json' (the getTransaction answer),
--                   'grpc_protobuf' (a Yellowstone update, base64) or 'chain_tx' (the
--                   indexer's own form, for what the decoder skipped);
--   raw             that answer; NULL for rows written before this migration (re-fetched);
--   reprocessed_at  set, in the same database transaction as the rows, when `reprocess` wrote
--                   it: a row is reprocessed exactly once;
--   reprocess_outcome what reprocessing made of it ('written', 'parked', 'ignored').
ALTER TABLE indexer_skipped
    ADD COLUMN kind VARCHAR(32) NOT NULL DEFAULT 'undecodable',
    ADD COLUMN raw_format VARCHAR(16)
        CONSTRAINT indexer_skipped_raw_format_known CHECK (raw_format IN ('rpc_json', 'grpc_protobuf', 'chain_tx')),
    ADD COLUMN raw JSONB,
    ADD COLUMN reprocessed_at TIMESTAMPTZ,
    ADD COLUMN reprocess_outcome VARCHAR(16),
    ADD CONSTRAINT indexer_skipped_raw_has_format CHECK ((raw IS NULL) = (raw_format IS NULL));
CREATE INDEX idx_indexer_skipped_pending ON indexer_skipped (block_slot) WHERE reprocessed_at IS NULL;
