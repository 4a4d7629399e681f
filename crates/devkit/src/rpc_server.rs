//! A Solana JSON-RPC server for tests, beside the Geyser replay server: it serves transactions
//! the real program executed (in litesvm, [`recorded`](crate::recorded)) through the methods an
//! indexer uses - `getSignaturesForAddress`, `getTransaction`, `getSlot`,
//! `getFirstAvailableBlock`, `getHealth`, `getVersion` - in the wire format a node sends, so the
//! real `solana-rpc-client` talks to it. And it misbehaves on command ([`Misbehaviour`]) the way
//! public reports say nodes and providers do: short pages mid-range, an ignored `until`, a
//! transaction version newer than the client asked for (-32015), garbled bytes, a runtime error
//! variant newer than the client crates, a pruned ledger.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::Json;
use base64::Engine;
use ephemeral_vault_testkit::Recorded;
use serde_json::{json, Value};
use solana_message::VersionedMessage;

/// One transaction the node has: where it is and its `getTransaction` answer (base64).
#[derive(Clone, Debug)]
struct Entry {
    signature: String,
    slot: u64,
    block_time: i64,
    err: Value,
    result: Value,
}

/// How the server misbehaves; every field's default is a well-behaved node.
#[derive(Clone, Debug, Default)]
pub struct Misbehaviour {
    /// Every `getSignaturesForAddress` page holds at most this many (a provider's cap, a
    /// long-term store timing out): shorter than the limit asked for, mid-range.
    pub page_cap: Option<usize>,
    /// `getSignaturesForAddress` ignores `until` (a node that does not know the signature).
    pub ignore_until: bool,
    /// The version the node reports for a signature (others are legacy). `getTransaction`
    /// answers -32015 when it is above the request's `maxSupportedTransactionVersion`.
    pub versions: BTreeMap<String, u8>,
    /// Signatures whose transaction bytes come garbled.
    pub malformed: BTreeSet<String>,
    /// Signatures whose status carries a runtime error variant no client crate knows yet.
    pub unknown_error: BTreeSet<String>,
    /// Nothing below this slot is served (a pruned ledger); `getFirstAvailableBlock` says so.
    pub first_available_slot: u64,
}

struct Node {
    /// Oldest first, in chain order.
    entries: Vec<Entry>,
    misbehaviour: Misbehaviour,
    /// The tip `getSlot` reports (default: the newest transaction's slot).
    tip: Option<u64>,
    calls: BTreeMap<String, u64>,
}

#[derive(Clone)]
pub struct RpcServer {
    node: Arc<Mutex<Node>>,
}

impl Default for RpcServer {
    fn default() -> Self {
        Self::new()
    }
}

impl RpcServer {
    pub fn new() -> Self {
        let node = Node { entries: vec![], misbehaviour: Misbehaviour::default(), tip: None, calls: BTreeMap::new() };
        Self { node: Arc::new(Mutex::new(node)) }
    }

    fn node(&self) -> std::sync::MutexGuard<'_, Node> {
        self.node.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds executed transactions (oldest first) to the node's history.
    pub fn extend<'a>(&self, recorded: impl IntoIterator<Item = &'a Recorded>) {
        let mut node = self.node();
        for r in recorded {
            node.entries.push(Entry {
                signature: r.signature().to_string(),
                slot: r.slot,
                block_time: r.unix_timestamp,
                err: r.err.as_ref().map(|e| serde_json::to_value(e).expect("error as JSON")).unwrap_or(Value::Null),
                result: get_transaction_json(r),
            });
        }
    }

    /// Changes how the server misbehaves from now on.
    pub fn misbehave(&self, change: impl FnOnce(&mut Misbehaviour)) {
        change(&mut self.node().misbehaviour);
    }

    /// Behaves again.
    pub fn behave(&self) {
        self.node().misbehaviour = Misbehaviour::default();
    }

    pub fn set_tip(&self, slot: u64) {
        self.node().tip = Some(slot);
    }

    /// How many times `method` was called.
    pub fn calls(&self, method: &str) -> u64 {
        self.node().calls.get(method).copied().unwrap_or(0)
    }

    /// Serves on `addr` (port 0 picks one) until the task is aborted; returns the bound address.
    pub async fn serve(self, addr: SocketAddr) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = axum::Router::new().route("/", axum::routing::post(handle)).with_state(self);
        let handle = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "rpc test server stopped");
            }
        });
        Ok((bound, handle))
    }

    fn answer(&self, method: &str, params: &Value) -> Result<Value, (i64, String)> {
        let mut node = self.node();
        *node.calls.entry(method.to_string()).or_default() += 1;
        let node = &*node;
        match method {
            "getSignaturesForAddress" => Ok(signatures(node, params)),
            "getTransaction" => transaction(node, params),
            "getSlot" => Ok(json!(node.tip.or(node.entries.last().map(|e| e.slot)).unwrap_or(0))),
            "getFirstAvailableBlock" => Ok(json!(node.misbehaviour.first_available_slot)),
            "getHealth" => Ok(json!("ok")),
            "getVersion" => Ok(json!({ "solana-core": "4.3.2", "feature-set": 0 })),
            other => Err((-32601, format!("Method not found: {other}"))),
        }
    }
}

async fn handle(State(server): State<RpcServer>, Json(request): Json<Value>) -> Json<Value> {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str).unwrap_or_default();
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    Json(match server.answer(method, &params) {
        Ok(result) => json!({ "jsonrpc": "2.0", "result": result, "id": id }),
        Err((code, message)) => json!({ "jsonrpc": "2.0", "error": { "code": code, "message": message }, "id": id }),
    })
}

/// `getSignaturesForAddress`: newest first, below `before`, down to `until` (exclusive).
fn signatures(node: &Node, params: &Value) -> Value {
    let config = &params[1];
    let limit = config["limit"].as_u64().map_or(1_000, |l| l.min(1_000) as usize);
    let limit = node.misbehaviour.page_cap.map_or(limit, |cap| cap.min(limit));
    let served = node.entries.iter().filter(|e| e.slot >= node.misbehaviour.first_available_slot);
    let mut newest_first: Vec<&Entry> = served.collect();
    newest_first.reverse();
    let start = match config["before"].as_str() {
        Some(before) => match newest_first.iter().position(|e| e.signature == before) {
            Some(i) => i + 1,
            None => return json!([]),
        },
        None => 0,
    };
    let until = config["until"].as_str().filter(|_| !node.misbehaviour.ignore_until);
    let page: Vec<Value> = newest_first[start..]
        .iter()
        .take_while(|e| Some(e.signature.as_str()) != until)
        .take(limit)
        .map(|e| {
            json!({
                "signature": e.signature,
                "slot": e.slot,
                "err": e.err,
                "memo": null,
                "blockTime": e.block_time,
                // Confirmed, like the recorded transactions' rows (a finalized listing would
                // promote them, and the rows would differ from a direct write by status).
                "confirmationStatus": "confirmed",
            })
        })
        .collect();
    json!(page)
}

/// `getTransaction` (base64 only, as the indexer asks for it).
fn transaction(node: &Node, params: &Value) -> Result<Value, (i64, String)> {
    let signature = params[0].as_str().unwrap_or_default();
    let Some(entry) = node.entries.iter().find(|e| e.signature == signature) else { return Ok(Value::Null) };
    if entry.slot < node.misbehaviour.first_available_slot {
        return Ok(Value::Null);
    }
    let mut result = entry.result.clone();
    if let Some(&version) = node.misbehaviour.versions.get(signature) {
        let max = params[1]["maxSupportedTransactionVersion"].as_u64();
        if max.is_none_or(|max| u64::from(version) > max) {
            // The message agave sends (rpc/src/rpc.rs, RpcCustomError::UnsupportedTransactionVersion).
            return Err((
                -32015,
                format!(
                    "Transaction version ({version}) is not supported by the requesting client. Please try the \
                     request again with the following configuration parameter: \"maxSupportedTransactionVersion\": {version}"
                ),
            ));
        }
        result["version"] = json!(version);
    }
    if node.misbehaviour.malformed.contains(signature) {
        result["transaction"][0] = json!(base64::engine::general_purpose::STANDARD.encode([1u8, 2, 3, 4, 5, 6, 7]));
    }
    if node.misbehaviour.unknown_error.contains(signature) {
        let err = json!({ "InstructionError": [0, { "SomeFutureError": 7 }] });
        result["meta"]["err"] = err.clone();
        result["meta"]["status"] = json!({ "Err": err });
    }
    Ok(result)
}

/// The `getTransaction` answer (base64 encoding) a node sends for an executed transaction: a v0
/// one with `"version": 0`, its lookups in the signed message and the addresses they loaded in
/// `meta.loadedAddresses`.
pub fn get_transaction_json(recorded: &Recorded) -> Value {
    let wire = bincode::serialize(&recorded.transaction).expect("serialize transaction");
    let err = recorded.err.as_ref().map(|e| serde_json::to_value(e).expect("error as JSON"));
    let status = match &err {
        None => json!({ "Ok": null }),
        Some(e) => json!({ "Err": e }),
    };
    let inner: Vec<Value> = recorded
        .meta
        .inner_instructions
        .iter()
        .enumerate()
        .filter(|(_, group)| !group.is_empty())
        .map(|(index, group)| {
            json!({
                "index": index,
                "instructions": group.iter().map(|i| json!({
                    "programIdIndex": i.instruction.program_id_index,
                    "accounts": i.instruction.accounts,
                    "data": bs58::encode(&i.instruction.data).into_string(),
                    "stackHeight": i.stack_height,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "slot": recorded.slot,
        "blockTime": recorded.unix_timestamp,
        "transactionIndex": 0,
        "transaction": [base64::engine::general_purpose::STANDARD.encode(wire), "base64"],
        "meta": {
            "err": err,
            "status": status,
            "fee": recorded.meta.fee,
            "preBalances": [],
            "postBalances": [],
            "innerInstructions": inner,
            "logMessages": recorded.meta.logs,
            "preTokenBalances": [],
            "postTokenBalances": [],
            "rewards": [],
            "loadedAddresses": {
                "writable": recorded.loaded_addresses.writable.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                "readonly": recorded.loaded_addresses.readonly.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            },
            "computeUnitsConsumed": recorded.meta.compute_units_consumed,
        },
        "version": match &recorded.transaction.message {
            VersionedMessage::Legacy(_) => json!("legacy"),
            VersionedMessage::V0(_) => json!(0),
            VersionedMessage::V1(_) => json!(1),
        },
    })
}
