//! A Yellowstone `Geyser` gRPC server that replays and streams transactions it is given.
//!
//! No Yellowstone plugin can be built for a local validator here, so this server stands in for
//! one: the test suites publish transactions that the real program executed (in litesvm), and
//! the local chain bridge publishes what a validator confirmed. Clients - the real
//! `yellowstone-grpc-client` - subscribe with the ordinary protocol: transaction filters,
//! `from_slot` replay within a bounded window, server pings, `SubscribeReplayInfo`.
//! `disconnect_all` cuts every stream, so reconnects can be exercised; `silence_open_streams`
//! keeps them open but sends nothing more on them, not even pings (a stalled server or load
//! balancer); `without_replay` serves no `SubscribeReplayInfo` and refuses `from_slot`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use yellowstone_grpc_proto::geyser::geyser_server::{Geyser, GeyserServer};
use yellowstone_grpc_proto::prelude::*;

/// What the server holds: the replay window and the live feed.
struct Feed {
    /// Updates in publication order, oldest first, at most `window_slots` slots back.
    stored: VecDeque<Stored>,
    window_slots: u64,
    newest_slot: u64,
}

/// One published update: a transaction, or the end of a block with its time.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // mostly transactions; boxing them would buy nothing
pub enum Stored {
    Transaction(SubscribeUpdateTransaction),
    BlockMeta(SubscribeUpdateBlockMeta),
}

impl Stored {
    fn slot(&self) -> u64 {
        match self {
            Stored::Transaction(u) => u.slot,
            Stored::BlockMeta(m) => m.slot,
        }
    }
}

#[derive(Clone)]
pub struct GeyserReplay {
    feed: Arc<Mutex<Feed>>,
    live: broadcast::Sender<Stored>,
    /// Bumped by `disconnect_all`; every stream ends when it changes.
    generation: watch::Sender<u64>,
    ping_every: Duration,
    subscriptions: Arc<std::sync::atomic::AtomicU64>,
    /// Bumped by `silence_open_streams`: streams opened before go silent.
    silence_epoch: Arc<std::sync::atomic::AtomicU64>,
    replay: bool,
}

impl GeyserReplay {
    /// A server that can replay the last `window_slots` slots.
    pub fn new(window_slots: u64) -> Self {
        let (live, _) = broadcast::channel(65_536);
        let (generation, _) = watch::channel(0);
        Self {
            feed: Arc::new(Mutex::new(Feed { stored: VecDeque::new(), window_slots, newest_slot: 0 })),
            live,
            generation,
            ping_every: Duration::from_secs(10),
            subscriptions: Arc::default(),
            silence_epoch: Arc::default(),
            replay: true,
        }
    }

    /// A server with replay disabled: `SubscribeReplayInfo` is unimplemented and a subscription
    /// with `from_slot` is refused.
    pub fn without_replay(mut self) -> Self {
        self.replay = false;
        self
    }

    /// Every open stream stays open but sends nothing more, not even pings; new subscriptions
    /// are served normally.
    pub fn silence_open_streams(&self) {
        self.silence_epoch.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many subscriptions clients have opened (reconnects included).
    pub fn subscriptions(&self) -> u64 {
        self.subscriptions.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn with_ping_interval(mut self, every: Duration) -> Self {
        self.ping_every = every;
        self
    }

    /// Publishes one transaction update to live subscribers and the replay window.
    pub fn publish(&self, update: SubscribeUpdateTransaction) {
        self.publish_stored(Stored::Transaction(update));
    }

    /// Publishes the end of a block: its slot and time (Yellowstone's block meta update).
    pub fn publish_block_meta(&self, slot: u64, block_time: Option<i64>) {
        self.publish_stored(Stored::BlockMeta(SubscribeUpdateBlockMeta {
            slot,
            block_time: block_time.map(|timestamp| UnixTimestamp { timestamp }),
            ..Default::default()
        }));
    }

    fn publish_stored(&self, update: Stored) {
        let mut feed = self.feed.lock().unwrap_or_else(|p| p.into_inner());
        feed.newest_slot = feed.newest_slot.max(update.slot());
        let oldest_kept = feed.newest_slot.saturating_sub(feed.window_slots);
        feed.stored.push_back(update.clone());
        while feed.stored.front().is_some_and(|u| u.slot() < oldest_kept) {
            feed.stored.pop_front();
        }
        drop(feed);
        // No live subscriber is not an error: the update stays in the window.
        let _ = self.live.send(update);
    }

    /// The oldest slot a subscription may replay from.
    pub fn first_available(&self) -> Option<u64> {
        let feed = self.feed.lock().unwrap_or_else(|p| p.into_inner());
        feed.stored.front().map(Stored::slot)
    }

    /// Ends every open subscription (as a restarting server or a network cut would).
    pub fn disconnect_all(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Serves on `addr` until `shutdown` resolves. Returns the bound address (port 0 picks one).
    pub async fn serve(
        self,
        addr: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let handle = tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_service(GeyserServer::new(self))
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "geyser replay server stopped");
            }
        });
        Ok((bound, handle))
    }
}

/// A subscriber's transaction and block-meta filters, as the protocol defines them.
#[derive(Clone, Default)]
struct Filters {
    transactions: BTreeMap<String, SubscribeRequestFilterTransactions>,
    blocks_meta: Vec<String>,
}

impl Filters {
    fn from_request(request: &SubscribeRequest) -> Self {
        Self {
            transactions: request.transactions.clone().into_iter().collect(),
            blocks_meta: request.blocks_meta.keys().cloned().collect(),
        }
    }

    /// The message to send for `stored`, if this subscriber wants it.
    fn message(&self, stored: Stored) -> Option<SubscribeUpdate> {
        let (names, update) = match stored {
            Stored::Transaction(tx) => (self.matching(&tx), subscribe_update::UpdateOneof::Transaction(tx)),
            Stored::BlockMeta(meta) => (self.blocks_meta.clone(), subscribe_update::UpdateOneof::BlockMeta(meta)),
        };
        (!names.is_empty()).then_some(SubscribeUpdate { filters: names, created_at: None, update_oneof: Some(update) })
    }

    /// The names of the filters `update` matches (empty: not sent).
    fn matching(&self, update: &SubscribeUpdateTransaction) -> Vec<String> {
        let Some(info) = &update.transaction else { return vec![] };
        let keys: Vec<String> = info
            .transaction
            .as_ref()
            .and_then(|t| t.message.as_ref())
            .map(|m| m.account_keys.iter().map(|k| bs58::encode(k).into_string()).collect())
            .unwrap_or_default();
        let failed = info.meta.as_ref().is_some_and(|m| m.err.is_some());
        self.transactions
            .iter()
            .filter(|(_, f)| {
                f.vote.is_none_or(|vote| vote == info.is_vote)
                    && f.failed.is_none_or(|want_failed| want_failed == failed)
                    && (f.account_include.is_empty() || f.account_include.iter().any(|a| keys.contains(a)))
                    && f.account_exclude.iter().all(|a| !keys.contains(a))
                    && f.account_required.iter().all(|a| keys.contains(a))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<SubscribeUpdate, Status>> + Send>>;

fn unimplemented<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!("{what} is not served by the replay server")))
}

#[tonic::async_trait]
impl Geyser for GeyserReplay {
    type SubscribeStream = UpdateStream;
    type SubscribeDeshredStream = Pin<Box<dyn Stream<Item = Result<SubscribeUpdateDeshred, Status>> + Send>>;
    type SubscribeGossipStream = Pin<Box<dyn Stream<Item = Result<SubscribeUpdateGossip, Status>> + Send>>;

    async fn subscribe(
        &self,
        request: Request<Streaming<SubscribeRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let mut requests = request.into_inner();
        let first = requests.next().await.ok_or_else(|| Status::invalid_argument("no subscribe request"))??;
        let mut filters = Filters::from_request(&first);
        self.subscriptions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);

        // Subscribe to the live feed before reading the window, so nothing falls between them.
        let mut live = self.live.subscribe();
        let replay: Vec<Stored> = match first.from_slot {
            None => vec![],
            Some(_) if !self.replay => {
                return Err(Status::invalid_argument("from_slot is not supported: replay is disabled"))
            }
            Some(from) => {
                let feed = self.feed.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(first_available) = feed.stored.front().map(Stored::slot).filter(|first| *first > from) {
                    return Err(Status::out_of_range(format!(
                        "from_slot {from} is older than the first available slot {first_available}"
                    )));
                }
                feed.stored.iter().filter(|u| u.slot() >= from).cloned().collect()
            }
        };
        let mut generation = self.generation.subscribe();
        let ping_every = self.ping_every;
        let (silence_epoch, opened_at) =
            (self.silence_epoch.clone(), self.silence_epoch.load(std::sync::atomic::Ordering::Relaxed));
        let silenced = move || silence_epoch.load(std::sync::atomic::Ordering::Relaxed) != opened_at;
        let (tx, rx) = mpsc::channel::<Result<SubscribeUpdate, Status>>(1_024);
        tokio::spawn(async move {
            // Updates both replayed and then received live are sent once.
            let mut seen = std::collections::HashSet::new();
            let key = |update: &Stored| match update {
                Stored::Transaction(tx) => tx.transaction.as_ref().map(|i| i.signature.clone()).unwrap_or_default(),
                Stored::BlockMeta(meta) => format!("block:{}", meta.slot).into_bytes(),
            };
            for update in replay {
                seen.insert(key(&update));
                if let Some(message) = filters.message(update) {
                    if tx.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
            }
            let mut ping = tokio::time::interval(ping_every);
            ping.tick().await;
            loop {
                tokio::select! {
                    _ = generation.changed() => {
                        let _ = tx.send(Err(Status::unavailable("server closed the stream"))).await;
                        return;
                    }
                    _ = ping.tick() => {
                        if silenced() { continue; }
                        let message = SubscribeUpdate {
                            filters: vec![],
                            created_at: None,
                            update_oneof: Some(subscribe_update::UpdateOneof::Ping(SubscribeUpdatePing {})),
                        };
                        if tx.send(Ok(message)).await.is_err() { return; }
                    }
                    incoming = requests.next() => match incoming {
                        Some(Ok(request)) => {
                            if let Some(ping) = request.ping {
                                let pong = SubscribeUpdate {
                                    filters: vec![],
                                    created_at: None,
                                    update_oneof: Some(subscribe_update::UpdateOneof::Pong(SubscribeUpdatePong { id: ping.id })),
                                };
                                if tx.send(Ok(pong)).await.is_err() { return; }
                            }
                            // Any request replaces the filters, as in Yellowstone: a client that
                            // answers pings with a bare ping request loses its subscription.
                            filters = Filters::from_request(&request);
                        }
                        Some(Err(_)) | None => return,
                    },
                    update = live.recv() => match update {
                        Ok(update) => {
                            if seen.remove(&key(&update)) || silenced() { continue; }
                            if let Some(message) = filters.message(update) {
                                if tx.send(Ok(message)).await.is_err() { return; }
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            // Never drop silently: end the stream so the client resubscribes
                            // from its cursor and replays what it missed.
                            let _ = tx.send(Err(Status::data_loss(format!("subscriber lagged by {n} updates")))).await;
                            return;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn subscribe_deshred(
        &self,
        _: Request<Streaming<SubscribeDeshredRequest>>,
    ) -> Result<Response<Self::SubscribeDeshredStream>, Status> {
        unimplemented("SubscribeDeshred")
    }

    async fn subscribe_gossip(
        &self,
        _: Request<SubscribeGossipRequest>,
    ) -> Result<Response<Self::SubscribeGossipStream>, Status> {
        unimplemented("SubscribeGossip")
    }

    async fn subscribe_replay_info(
        &self,
        _: Request<SubscribeReplayInfoRequest>,
    ) -> Result<Response<SubscribeReplayInfoResponse>, Status> {
        if !self.replay {
            return unimplemented("SubscribeReplayInfo");
        }
        Ok(Response::new(SubscribeReplayInfoResponse { first_available: self.first_available() }))
    }

    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PongResponse>, Status> {
        Ok(Response::new(PongResponse { count: request.into_inner().count }))
    }

    async fn get_latest_blockhash(
        &self,
        _: Request<GetLatestBlockhashRequest>,
    ) -> Result<Response<GetLatestBlockhashResponse>, Status> {
        unimplemented("GetLatestBlockhash")
    }

    async fn get_block_height(
        &self,
        _: Request<GetBlockHeightRequest>,
    ) -> Result<Response<GetBlockHeightResponse>, Status> {
        unimplemented("GetBlockHeight")
    }

    async fn get_slot(&self, _: Request<GetSlotRequest>) -> Result<Response<GetSlotResponse>, Status> {
        let slot = self.feed.lock().unwrap_or_else(|p| p.into_inner()).newest_slot;
        Ok(Response::new(GetSlotResponse { slot }))
    }

    async fn is_blockhash_valid(
        &self,
        _: Request<IsBlockhashValidRequest>,
    ) -> Result<Response<IsBlockhashValidResponse>, Status> {
        unimplemented("IsBlockhashValid")
    }

    async fn get_version(&self, _: Request<GetVersionRequest>) -> Result<Response<GetVersionResponse>, Status> {
        Ok(Response::new(GetVersionResponse {
            version: format!(
                "{{\"name\":\"ephemeral-vault geyser-replay\",\"version\":\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            ),
        }))
    }
}
