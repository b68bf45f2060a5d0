//! The gateway's side of C2SP `tlog-witness`: each new checkpoint goes to every configured
//! witness with a consistency proof from the last one that witness cosigned, and each
//! cosignature that verifies is kept beside the checkpoint, to be served with it.
//!
//! Witnessing never holds up a request: it runs on the checkpointer's task right after each
//! checkpoint is signed, a witness that is down or refuses is reported (metrics,
//! `/health/ready` details) and tried again at the next interval, and nothing waits for a
//! quorum.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{engine::general_purpose::STANDARD, Engine};
use prometheus::{IntCounterVec, IntGaugeVec};

use super::{
    checkpoint::note_body,
    cosignature::WitnessKey,
    merkle,
    store::{self, StoredNodes},
};
use crate::{
    config::WitnessEndpoint,
    db::{Database, DbError},
};

/// How long one `add-checkpoint` may take before the witness counts as down this time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What this instance last learned of one witness.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WitnessStanding {
    pub name: String,
    /// The largest checkpoint it is known to have cosigned.
    pub cosigned_size: Option<u64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// One witness: where to send checkpoints, and the key its cosignatures must verify with.
struct Witness {
    url: String,
    key: WitnessKey,
}

/// The witnesses and what is known of each; cheap to clone.
#[derive(Clone)]
pub struct Witnesses {
    endpoints: Arc<Vec<Witness>>,
    quorum: usize,
    client: reqwest::Client,
    standing: Arc<Mutex<HashMap<String, WitnessStanding>>>,
    /// The latest checkpoint's size and how many witnesses cosigned it, after the last round.
    witnessed: Arc<Mutex<Option<(u64, usize)>>>,
    metrics: WitnessMetrics,
}

#[derive(Clone)]
pub struct WitnessMetrics {
    pub failures: IntCounterVec,
    pub cosigned_size: IntGaugeVec,
}

/// What went wrong with one witness, in words for operators (never secret).
#[derive(Debug, thiserror::Error)]
enum WitnessError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("refused with {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("answered a cosignature that does not verify with its key")]
    BadCosignature,
    #[error(
        "has cosigned a checkpoint of {witness} entries, more than this log's {log}: another \
         history under this log's key, or a database restored to an earlier point"
    )]
    Ahead { witness: u64, log: u64 },
    #[error("{0}")]
    Storage(#[from] DbError),
}

impl Witnesses {
    /// The configured witnesses; refuses a key that does not parse, or a witness (by name)
    /// listed twice, which would count twice towards the quorum.
    pub fn new(
        configured: Vec<WitnessEndpoint>,
        quorum: usize,
        metrics: WitnessMetrics,
    ) -> anyhow::Result<Self> {
        let mut endpoints = Vec::with_capacity(configured.len());
        for endpoint in configured {
            let key = WitnessKey::parse(&endpoint.vkey)?;
            if endpoints
                .iter()
                .any(|w: &Witness| w.key.name() == key.name())
            {
                anyhow::bail!("witness {} is listed more than once", key.name());
            }
            endpoints.push(Witness {
                url: endpoint.url,
                key,
            });
        }
        // A witness answers itself: no redirects to follow, no proxy between.
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let standing = endpoints
            .iter()
            .map(|endpoint| {
                let name = endpoint.key.name().to_owned();
                let standing = WitnessStanding {
                    name: name.clone(),
                    ..WitnessStanding::default()
                };
                (name, standing)
            })
            .collect();
        Ok(Self {
            endpoints: Arc::new(endpoints),
            quorum,
            client,
            standing: Arc::new(Mutex::new(standing)),
            witnessed: Arc::default(),
            metrics,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Every witness's standing, in configuration order, for `/health/ready`.
    pub fn standing(&self) -> Vec<WitnessStanding> {
        let standing = self
            .standing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.endpoints
            .iter()
            .filter_map(|endpoint| standing.get(endpoint.key.name()).cloned())
            .collect()
    }

    /// Sends the latest stored checkpoint to every witness that has not cosigned it, all at
    /// once, and keeps what they return. Returns how many witnesses have cosigned it.
    pub async fn round(&self, database: &Database) -> Result<usize, DbError> {
        let Some(latest) = database.run(store::latest_checkpoint).await? else {
            return Ok(0);
        };
        let (size, note) = (latest.size(), latest.signed_note.as_str());
        let sends = self.endpoints.iter().map(|endpoint| async move {
            if self.cosigned_size(endpoint.key.name()) == Some(size) {
                return true;
            }
            let outcome = self.send(database, endpoint, size, note).await;
            self.note_outcome(endpoint.key.name(), size, outcome)
        });
        let cosigned = futures_util::future::join_all(sends).await;
        let count = cosigned.into_iter().filter(|cosigned| *cosigned).count();
        *self
            .witnessed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((size, count));
        Ok(count)
    }

    /// The latest checkpoint's size and how many witnesses cosigned it, after the last round.
    pub fn witnessed(&self) -> Option<(u64, usize)> {
        *self
            .witnessed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cosigned_size(&self, name: &str) -> Option<u64> {
        self.standing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .and_then(|standing| standing.cosigned_size)
    }

    /// One witness, one checkpoint: from what it cosigned last (asking it when unknown), with
    /// the proof from there.
    async fn send(
        &self,
        database: &Database,
        endpoint: &Witness,
        size: u64,
        note: &str,
    ) -> Result<Option<u64>, WitnessError> {
        let name = endpoint.key.name().to_owned();
        let mut old = match self.cosigned_size(&name) {
            Some(known) => known,
            None => database
                .run(move |conn| store::latest_cosigned_size(conn, &name))
                .await?
                .unwrap_or(0),
        };
        // At most one retry: a 409 tells the witness's real size.
        for _ in 0..2 {
            if old > size {
                // Benign only when this log has signed that much since (another instance's
                // newer checkpoint); otherwise the witness has seen a longer history under
                // this key than the log holds: a fork, or a database restored to before.
                let stored = database
                    .run(store::latest_checkpoint)
                    .await?
                    .map_or(0, |latest| latest.size());
                if stored >= old {
                    return Ok(None);
                }
                return Err(WitnessError::Ahead {
                    witness: old,
                    log: stored,
                });
            }
            let proof = database
                .run(move |conn| merkle::consistency_proof(&mut StoredNodes(conn), old, size))
                .await?;
            let body = add_checkpoint_body(old, &proof, note);
            let url = format!("{}/add-checkpoint", endpoint.url.trim_end_matches('/'));
            let response = self
                .client
                .post(url)
                .body(body)
                .send()
                .await
                .map_err(|e| WitnessError::Unreachable(e.without_url().to_string()))?;
            let status = response.status();
            let text = read_limited(response).await?;
            if status == reqwest::StatusCode::CONFLICT {
                if let Ok(latest) = text.trim().parse::<u64>() {
                    if latest != old {
                        old = latest;
                        continue;
                    }
                }
            }
            if !status.is_success() {
                return Err(WitnessError::Refused {
                    status: status.as_u16(),
                    body: text
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect(),
                });
            }
            let body = note_body(note);
            let line = cosignature_line(&endpoint.key, &body, &text)
                .ok_or(WitnessError::BadCosignature)?;
            let witness = endpoint.key.name().to_owned();
            database
                .run(move |conn| store::insert_cosignature(conn, size, &witness, &line))
                .await?;
            return Ok(Some(size));
        }
        Err(WitnessError::Refused {
            status: 409,
            body: "its size kept changing".into(),
        })
    }

    /// Records one witness's outcome; true when it has cosigned `size`.
    fn note_outcome(
        &self,
        name: &str,
        size: u64,
        outcome: Result<Option<u64>, WitnessError>,
    ) -> bool {
        let mut standing = self
            .standing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = standing.entry(name.to_owned()).or_default();
        match outcome {
            Ok(cosigned) => {
                entry.cosigned_size = cosigned.or(entry.cosigned_size);
                entry.last_error = None;
                if let Some(cosigned) = cosigned {
                    self.metrics
                        .cosigned_size
                        .with_label_values(&[name])
                        .set(i64::try_from(cosigned).unwrap_or(i64::MAX));
                }
                cosigned == Some(size)
            }
            Err(error) => {
                tracing::warn!(witness = name, %error, "witness did not cosign the checkpoint");
                self.metrics.failures.with_label_values(&[name]).inc();
                entry.last_error = Some(error.to_string());
                false
            }
        }
    }
}

/// The most of a witness's answer read: cosignature lines or a size fit in far less.
const MAX_ANSWER_BYTES: usize = 4096;

/// A witness's answer, read no further than [`MAX_ANSWER_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<String, WitnessError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| WitnessError::Unreachable(e.without_url().to_string()))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(WitnessError::Refused {
                status: response.status().as_u16(),
                body: format!("an answer longer than {MAX_ANSWER_BYTES} bytes"),
            });
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `old <size>`, the proof one base64 hash a line, an empty line, then the signed note.
fn add_checkpoint_body(old: u64, proof: &[merkle::Hash], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&STANDARD.encode(hash));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

/// The first line of `response` that is a valid cosignature by `key` on `body`.
fn cosignature_line(key: &WitnessKey, body: &str, response: &str) -> Option<String> {
    response
        .lines()
        .find(|line| key.cosignature_in(body, line).is_some())
        .map(|line| format!("{line}\n"))
}
