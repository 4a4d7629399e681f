//! The Yellowstone gRPC source: subscribes to every transaction that names the program
//! (successful and failed) at a chosen commitment, resubscribes from the committed cursor after
//! any disconnect, and fills gaps older than the server can replay from an RPC backfill first.
//!
//! Lessons from public Yellowstone consumers are built in: resubscribing with `from_slot: None`
//! silently loses what happened while disconnected, so the cursor is always passed; a ping reply
//! carries the whole subscription (a bare ping would replace the filters); retries back off
//! with jitter; updates are sent with `send().await`, never `try_send`.
//!
//! A stream that stays open and sends nothing (a stalled server or a load balancer in front of
//! it) is noticed twice over: HTTP/2 keepalive pings on the channel catch a dead connection,
//! and a watchdog catches a live connection that carries nothing - no message of any kind
//! (server pings included) for [`YellowstoneConfig::silence_timeout`] means resubscribe from
//! the cursor. A server without replay (`SubscribeReplayInfo` unimplemented) is subscribed
//! live, and the slots between the cursor and the first streamed one come from the gap filler.

pub mod convert;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use yellowstone_grpc_client::GeyserGrpcClient;
use yellowstone_grpc_proto::prelude::{
    subscribe_update::UpdateOneof, CommitmentLevel, SubscribeRequest, SubscribeRequestFilterBlocksMeta,
    SubscribeRequestFilterTransactions, SubscribeRequestPing, SubscribeUpdateTransaction,
};

use crate::chain_tx::{ChainTx, Commitment};
use crate::metrics::IndexerMetrics;
use vault_chain::Backoff;

use crate::sources::{Cursor, RawFormat, SourceItem, TransactionSource, Unreadable, UnreadableReason};

/// Fills `[from, to)` slots from another source (RPC) when the gRPC server cannot replay them.
/// The future is `Send`, so a pipeline with a gap filler can run on a spawned task.
pub trait GapFiller {
    fn fill(
        &mut self,
        from: &Cursor,
        to_slot: u64,
        out: &mpsc::Sender<SourceItem>,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

/// No gap filling: a gap older than the server's replay window is an error, so the source
/// retries (with backoff, logging each time) and never skips past the gap.
pub struct NoGapFiller;

impl GapFiller for NoGapFiller {
    async fn fill(&mut self, from: &Cursor, to_slot: u64, _: &mpsc::Sender<SourceItem>) -> anyhow::Result<()> {
        anyhow::bail!(
            "slots {}..{to_slot} are older than the gRPC server can replay and no RPC backfill is configured",
            from.slot
        )
    }
}

#[derive(Clone, Debug)]
pub struct YellowstoneConfig {
    pub endpoint: String,
    pub x_token: Option<String>,
    pub commitment: Commitment,
    pub program: Pubkey,
    pub connect_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Where to start when nothing is committed yet (`None`: live transactions only).
    pub start_slot: Option<u64>,
    /// Slots replayed before the committed cursor: slots can complete slightly out of order,
    /// and replaying is free (writes are idempotent) while missing one is not.
    pub replay_margin_slots: u64,
    /// No message of any kind for this long (about two of the server's ping intervals) means
    /// the stream is stalled: resubscribe from the cursor.
    pub silence_timeout: Duration,
    /// HTTP/2 keepalive pings on the channel, and how long to wait for their answer.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl YellowstoneConfig {
    pub fn new(endpoint: impl Into<String>, commitment: Commitment) -> Self {
        Self {
            endpoint: endpoint.into(),
            x_token: None,
            commitment,
            program: ephemeral_vault::ID,
            connect_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(30),
            start_slot: None,
            replay_margin_slots: 32,
            silence_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(15),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

pub struct YellowstoneSource<G: GapFiller = NoGapFiller> {
    config: YellowstoneConfig,
    gap_filler: G,
    /// Newest slot handed to the writer; where a reconnect resumes when nothing is committed.
    last_seen: Option<Cursor>,
    pub reconnects: u64,
    metrics: Option<Arc<IndexerMetrics>>,
}

impl YellowstoneSource<NoGapFiller> {
    pub fn new(config: YellowstoneConfig) -> Self {
        Self::with_gap_filler(config, NoGapFiller)
    }
}

impl<G: GapFiller> YellowstoneSource<G> {
    pub fn with_gap_filler(config: YellowstoneConfig, gap_filler: G) -> Self {
        Self { config, gap_filler, last_seen: None, reconnects: 0, metrics: None }
    }

    /// Counts stalls (the watchdog's resubscriptions) in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<IndexerMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn request(&self, from_slot: Option<u64>) -> SubscribeRequest {
        let filter = SubscribeRequestFilterTransactions {
            vote: Some(false),
            failed: None, // both successful and failed transactions
            account_include: vec![self.config.program.to_string()],
            ..Default::default()
        };
        SubscribeRequest {
            transactions: HashMap::from([("vault".to_string(), filter)]),
            // Block times come with block meta, not with transactions.
            blocks_meta: HashMap::from([("times".to_string(), SubscribeRequestFilterBlocksMeta::default())]),
            commitment: Some(match self.config.commitment {
                Commitment::Confirmed => CommitmentLevel::Confirmed,
                Commitment::Finalized => CommitmentLevel::Finalized,
            } as i32),
            from_slot,
            ..Default::default()
        }
    }

    async fn connect(&self) -> anyhow::Result<GeyserGrpcClient> {
        Ok(GeyserGrpcClient::build_from_shared(self.config.endpoint.clone())?
            .x_token(self.config.x_token.clone())?
            .connect_timeout(self.config.connect_timeout)
            .http2_keep_alive_interval(self.config.keepalive_interval)
            .keep_alive_timeout(self.config.keepalive_timeout)
            .keep_alive_while_idle(true)
            .max_decoding_message_size(64 * 1024 * 1024)
            .connect()
            .await?)
    }

    /// One subscription, until the stream ends or fails. Returns Ok when `out` closed.
    async fn subscribe_once(
        &mut self,
        resume: Option<&Cursor>,
        out: &mpsc::Sender<SourceItem>,
    ) -> anyhow::Result<bool> {
        let mut client = self.connect().await?;
        let mut from_slot = match resume {
            Some(cursor) => Some(cursor.slot.saturating_sub(self.config.replay_margin_slots)),
            None => self.config.start_slot,
        };
        // Without replay on the server, what lies between the cursor and the first streamed
        // slot is filled from the gap filler once that slot is known.
        let mut fill_from: Option<Cursor> = None;
        if let Some(from) = from_slot {
            let first_available = match client.subscribe_replay_info().await {
                Ok(info) => info.first_available,
                Err(yellowstone_grpc_client::GeyserGrpcClientError::TonicStatus(status))
                    if status.code() == tonic::Code::Unimplemented =>
                {
                    tracing::warn!("the gRPC server has no replay: subscribing live, the gap comes from RPC");
                    fill_from = Some(resume.cloned().unwrap_or(Cursor { slot: from, signature: None }));
                    from_slot = None;
                    None
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(first) = first_available.filter(|first| *first > from) {
                match resume.filter(|cursor| cursor.slot < first) {
                    // Committed history ends before what the server still has: the slots in
                    // between must come from somewhere else, or they would be lost silently.
                    Some(cursor) => {
                        tracing::warn!(
                            from = cursor.slot,
                            to = first,
                            "gap older than the gRPC replay window: filling it first"
                        );
                        self.gap_filler.fill(cursor, first, out).await?;
                    }
                    // Only the safety margin (or a fresh start's wish) is older than the
                    // window: start at the oldest slot the server has.
                    None => tracing::info!(requested = from, first, "starting at the oldest replayable slot"),
                }
                from_slot = Some(first);
            }
        }
        let request = self.request(from_slot);
        let (mut sink, mut stream) = client.subscribe_with_request(Some(request.clone())).await?;
        tracing::info!(endpoint = %self.config.endpoint, ?from_slot, "subscribed");
        let mut blocks = BlockTimes::default();
        loop {
            let update = match tokio::time::timeout(self.config.silence_timeout, stream.next()).await {
                Ok(Some(message)) => message?,
                Ok(None) => anyhow::bail!("stream ended by the server"),
                Err(_) => {
                    if let Some(metrics) = &self.metrics {
                        metrics.stream_stalls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    tracing::error!(silence = ?self.config.silence_timeout, endpoint = %self.config.endpoint,
                        "no message on the gRPC stream, not even a ping: resubscribing from the cursor");
                    anyhow::bail!("stream silent for {:?}", self.config.silence_timeout);
                }
            };
            let streamed_slot = match &update.update_oneof {
                Some(UpdateOneof::Transaction(tx)) => Some(tx.slot),
                Some(UpdateOneof::BlockMeta(meta)) => Some(meta.slot),
                _ => None,
            };
            if let (Some(slot), Some(cursor)) = (streamed_slot, fill_from.as_ref()) {
                // The first streamed slot is known: fill up to it (inclusive; the stream may have
                // started mid-slot, and what it repeats is absorbed by the idempotent writes).
                tracing::info!(from = cursor.slot, to = slot, "filling the slots before the live stream from RPC");
                self.gap_filler.fill(cursor, slot + 1, out).await?;
                fill_from = None;
            }
            let ready = match update.update_oneof {
                Some(UpdateOneof::Transaction(tx_update)) => {
                    match convert::chain_tx_from_update(&tx_update, self.config.commitment) {
                        Ok(tx) => blocks.transaction(tx),
                        Err(e) => match unreadable_update(&tx_update, &e) {
                            // Recorded in indexer_skipped with the update's bytes, then streamed past.
                            Some(unreadable) => {
                                tracing::error!(signature = %unreadable.signature, slot = unreadable.slot,
                                    reason = unreadable.reason.as_str(), error = %e,
                                    "transaction update unreadable: recorded in indexer_skipped and streamed past");
                                if out.send(unreadable.into()).await.is_err() {
                                    return Ok(true);
                                }
                                vec![]
                            }
                            None => {
                                tracing::error!(slot = tx_update.slot, error = %e, "transaction update without a signature dropped");
                                vec![]
                            }
                        },
                    }
                }
                Some(UpdateOneof::BlockMeta(meta)) => blocks.block(meta.slot, meta.block_time.map(|t| t.timestamp)),
                Some(UpdateOneof::Ping(_)) => {
                    // Answer with the full subscription plus the ping, so the filters stay.
                    let mut reply = request.clone();
                    reply.from_slot = None;
                    reply.ping = Some(SubscribeRequestPing { id: 1 });
                    sink.send(reply).await?;
                    vec![]
                }
                _ => vec![],
            };
            for tx in ready {
                let cursor = Cursor { slot: tx.slot, signature: Some(tx.signature.clone()) };
                if out.send(tx.into()).await.is_err() {
                    return Ok(true);
                }
                // Resume no later than the oldest transaction still waiting for its block time.
                self.last_seen = Some(match blocks.oldest_waiting() {
                    Some(slot) if slot < cursor.slot => Cursor { slot, signature: None },
                    _ => cursor,
                });
            }
        }
    }
}

/// An update that does not convert, as a row for `indexer_skipped`: its protobuf bytes (what
/// `vault-indexer reprocess` reads again) and why. `None` when it carries no signature at all.
pub fn unreadable_update(update: &SubscribeUpdateTransaction, error: &convert::ConvertError) -> Option<Unreadable> {
    use yellowstone_grpc_proto::prost::Message as _;
    let info = update.transaction.as_ref()?;
    let signature = info
        .transaction
        .as_ref()
        .and_then(|t| t.signatures.first())
        .filter(|s| s.len() == 64)
        .or(Some(&info.signature).filter(|s| s.len() == 64))?;
    let reason = match error {
        convert::ConvertError::Bad { what: "transaction error", .. } => UnreadableReason::UnknownError,
        _ => UnreadableReason::Malformed,
    };
    use base64::Engine;
    Some(Unreadable {
        signature: bs58::encode(signature).into_string(),
        slot: update.slot,
        reason,
        detail: error.to_string(),
        format: RawFormat::GrpcProtobuf,
        raw: serde_json::json!({ "protobuf": base64::engine::general_purpose::STANDARD.encode(update.encode_to_vec()) }),
    })
}

/// Holds transactions until their block's time is known (Yellowstone sends it in the block's
/// meta update), so failed transactions - which carry no event timestamp - get a chain time.
#[derive(Default)]
struct BlockTimes {
    times: std::collections::BTreeMap<u64, Option<i64>>,
    waiting: std::collections::BTreeMap<u64, Vec<ChainTx>>,
}

impl BlockTimes {
    /// Most slots of block times remembered; older ones are forgotten.
    const KEEP: usize = 1_024;

    fn transaction(&mut self, mut tx: ChainTx) -> Vec<ChainTx> {
        match self.times.get(&tx.slot) {
            Some(time) => {
                tx.block_time = tx.block_time.or(*time);
                vec![tx]
            }
            None => {
                self.waiting.entry(tx.slot).or_default().push(tx);
                vec![]
            }
        }
    }

    /// A block ended: release its transactions, and those of older slots whose meta never came.
    fn block(&mut self, slot: u64, time: Option<i64>) -> Vec<ChainTx> {
        self.times.insert(slot, time);
        while self.times.len() > Self::KEEP {
            self.times.pop_first();
        }
        let later = self.waiting.split_off(&(slot + 1));
        let released = std::mem::replace(&mut self.waiting, later);
        released
            .into_iter()
            .flat_map(|(tx_slot, txs)| {
                let time = self.times.get(&tx_slot).copied().flatten();
                txs.into_iter().map(move |mut tx| {
                    tx.block_time = tx.block_time.or(time);
                    tx
                })
            })
            .collect()
    }

    fn oldest_waiting(&self) -> Option<u64> {
        self.waiting.keys().next().copied()
    }
}

impl<G: GapFiller> TransactionSource for YellowstoneSource<G> {
    fn name(&self) -> &'static str {
        match self.config.commitment {
            Commitment::Confirmed => "yellowstone",
            Commitment::Finalized => "yellowstone-finalized",
        }
    }

    async fn stream(&mut self, resume: Option<Cursor>, out: mpsc::Sender<SourceItem>) -> anyhow::Result<()> {
        let mut backoff = Backoff::new(self.config.backoff_base, self.config.backoff_cap);
        self.last_seen = resume;
        loop {
            let resume = self.last_seen.clone();
            let started = tokio::time::Instant::now();
            match self.subscribe_once(resume.as_ref(), &out).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "yellowstone subscription failed"),
            }
            if out.is_closed() {
                return Ok(());
            }
            // A subscription that lived a while was healthy: start the backoff over.
            if started.elapsed() > self.config.backoff_cap {
                backoff.reset();
            }
            self.reconnects += 1;
            let delay = backoff.next_delay();
            tracing::info!(?delay, attempt = backoff.attempts(), "reconnecting to yellowstone");
            tokio::time::sleep(delay).await;
        }
    }
}
