//! The witness's HTTP service: `POST /add-checkpoint` (C2SP `tlog-witness`) and `GET
//! /metrics`. Plain HTTP: the protocol authenticates what matters (the log's signature on
//! the checkpoint, the witness's on its cosignature), and nothing it holds is secret; put
//! TLS in front where the network calls for it.
//!
//! Checking a request against the latest checkpoint and recording the new one happen under
//! one lock, so two requests can never roll the witness's view back (the protocol's race).

use std::{net::TcpListener, sync::Mutex};

use actix_web::{
    dev::Server,
    http::{header::ContentType, StatusCode},
    web, App, HttpResponse, HttpServer,
};
use anyhow::Context;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

use super::{
    protocol::{judge, AddCheckpoint, KnownLog, Misbehaviour, Verdict},
    store::WitnessStore,
    WitnessSettings,
};
use crate::audit::{checkpoint::note_body, cosignature::WitnessSigner};

/// The largest request accepted: a checkpoint, its signatures and 63 proof lines fit in a
/// few kilobytes.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

pub struct Witness {
    logs: Vec<KnownLog>,
    store: WitnessStore,
    signer: WitnessSigner,
    /// Held from reading the latest checkpoint until the new one is recorded.
    judging: Mutex<()>,
    metrics: WitnessMetrics,
}

struct WitnessMetrics {
    registry: Registry,
    cosigned: IntCounter,
    refused: IntCounterVec,
    misbehaviour: IntCounterVec,
}

impl WitnessMetrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("concordat_witness".into()), None)?;
        let cosigned = IntCounter::new("cosignatures_total", "Checkpoints cosigned")?;
        let refused = IntCounterVec::new(
            Opts::new(
                "refusals_total",
                "add-checkpoint requests refused, by status",
            ),
            &["status"],
        )?;
        let misbehaviour = IntCounterVec::new(
            Opts::new(
                "misbehaviour_total",
                "Validly signed checkpoints that contradicted the latest cosigned one, by kind; \
                 evidence is kept for each",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(cosigned.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(misbehaviour.clone()))?;
        // Present at zero, so an alert can be written before anything happens.
        for kind in [
            Misbehaviour::Fork,
            Misbehaviour::RolledBack,
            Misbehaviour::Inconsistent,
        ] {
            misbehaviour.with_label_values(&[kind.as_str()]);
        }
        Ok(Self {
            registry,
            cosigned,
            refused,
            misbehaviour,
        })
    }
}

impl Witness {
    pub fn open(settings: &WitnessSettings) -> anyhow::Result<Self> {
        let signer = WitnessSigner::load_or_create(&settings.key, &settings.name).context("key")?;
        let store = WitnessStore::open(&settings.state_dir)
            .with_context(|| format!("state_dir: {}", settings.state_dir.display()))?;
        Ok(Self {
            logs: settings.known_logs(),
            store,
            signer,
            judging: Mutex::new(()),
            metrics: WitnessMetrics::new()?,
        })
    }

    pub fn signer(&self) -> &WitnessSigner {
        &self.signer
    }

    /// One `add-checkpoint` request, start to finish. Blocking (files, fsync).
    pub fn add_checkpoint(&self, body: &str) -> (StatusCode, &'static str, String) {
        let answer = self.judge_and_record(body);
        let (status, _, _) = &answer;
        if status.is_success() {
            self.metrics.cosigned.inc();
        } else {
            self.metrics
                .refused
                .with_label_values(&[status.as_str()])
                .inc();
        }
        answer
    }

    fn judge_and_record(&self, body: &str) -> (StatusCode, &'static str, String) {
        const TEXT: &str = "text/plain; charset=utf-8";
        const SIZE: &str = "text/x.tlog.size";
        let request = match AddCheckpoint::parse(body) {
            Ok(request) => request,
            Err(reason) => return (StatusCode::BAD_REQUEST, TEXT, format!("{reason}\n")),
        };
        let origin = request.origin().to_owned();
        let (verdict, latest_note, latest_size) = {
            let _judging = self
                .judging
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let latest_note = match self.store.latest(&origin) {
                Ok(note) => note,
                Err(error) => return internal("reading the latest checkpoint", &error),
            };
            // The stored note was verified before it was recorded; verifying it again here
            // (with any key trusted for the origin) also refuses a state file changed behind
            // the witness's back.
            let latest = match &latest_note {
                Some(note) => match self.verify(&origin, note) {
                    Some(checkpoint) => Some(checkpoint),
                    None => {
                        return internal(
                            "the stored checkpoint does not verify",
                            &"no trusted key signs it",
                        )
                    }
                },
                None => None,
            };
            let verdict = judge(&self.logs, latest.as_ref(), &request);
            if let Verdict::Cosign(checkpoint) = &verdict {
                if latest.as_ref() != Some(checkpoint) {
                    if let Err(error) = self.store.record(&origin, &request.note) {
                        return internal("recording the checkpoint", &error);
                    }
                }
            }
            (verdict, latest_note, latest.map_or(0, |latest| latest.size))
        };
        match verdict {
            Verdict::Cosign(checkpoint) => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                // The body exactly as the log signed it, extension lines and all.
                let line = self
                    .signer
                    .cosign(&note_body(&request.note), u64::try_from(now).unwrap_or(0));
                tracing::info!(size = checkpoint.size, "checkpoint cosigned");
                (StatusCode::OK, TEXT, line)
            }
            Verdict::Malformed(reason) => (StatusCode::BAD_REQUEST, TEXT, format!("{reason}\n")),
            Verdict::Unsigned => (
                StatusCode::FORBIDDEN,
                TEXT,
                "no signature by a key this witness trusts for the origin\n".into(),
            ),
            Verdict::UnknownLog => (
                StatusCode::NOT_FOUND,
                TEXT,
                "this witness follows no log of that origin\n".into(),
            ),
            Verdict::StaleOldSize { latest } => (StatusCode::CONFLICT, SIZE, format!("{latest}\n")),
            Verdict::Misbehaviour(kind) => {
                // Outside the lock: the honest log's requests do not wait on this disk work.
                self.report(&origin, kind, latest_note.as_deref(), body);
                match kind {
                    Misbehaviour::Fork => (StatusCode::CONFLICT, SIZE, format!("{latest_size}\n")),
                    Misbehaviour::RolledBack => (
                        StatusCode::BAD_REQUEST,
                        TEXT,
                        "the checkpoint is smaller than the latest cosigned one\n".into(),
                    ),
                    Misbehaviour::Inconsistent => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        TEXT,
                        "the consistency proof does not verify\n".into(),
                    ),
                }
            }
        }
    }

    /// The checkpoint `note` as signed by any key trusted for `origin`.
    fn verify(&self, origin: &str, note: &str) -> Option<crate::audit::checkpoint::Checkpoint> {
        self.logs
            .iter()
            .filter(|log| log.origin == origin)
            .find_map(|log| log.key.verify(note).ok())
    }

    /// Counts, logs and keeps the evidence of a contradicting checkpoint.
    fn report(&self, origin: &str, kind: Misbehaviour, cosigned: Option<&str>, body: &str) {
        self.metrics
            .misbehaviour
            .with_label_values(&[kind.as_str()])
            .inc();
        match self.store.keep_evidence(origin, kind, cosigned, body) {
            Ok(Some(dir)) => tracing::error!(
                kind = kind.as_str(),
                evidence = %dir.display(),
                "the log contradicted a checkpoint this witness cosigned; refused, evidence kept"
            ),
            Ok(None) => tracing::error!(
                kind = kind.as_str(),
                "the log contradicted a checkpoint this witness cosigned; refused (evidence limit reached, not kept)"
            ),
            Err(error) => tracing::error!(
                kind = kind.as_str(),
                %error,
                "the log contradicted a checkpoint this witness cosigned; refused, but the evidence could not be written"
            ),
        }
    }

    fn render_metrics(&self) -> String {
        let mut buffer = String::new();
        // A failure to encode leaves the page short, never the witness down.
        let _ = TextEncoder::new().encode_utf8(&self.metrics.registry.gather(), &mut buffer);
        buffer
    }

    /// The evidence directories kept: what `concordat witness check` reports.
    pub fn evidence(&self) -> std::io::Result<Vec<std::path::PathBuf>> {
        self.store.evidence()
    }
}

fn internal(what: &str, error: &dyn std::fmt::Display) -> (StatusCode, &'static str, String) {
    tracing::error!(%error, "{what}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain; charset=utf-8",
        "the witness cannot answer now\n".into(),
    )
}

async fn add_checkpoint(witness: web::Data<Witness>, body: web::Bytes) -> HttpResponse {
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return HttpResponse::BadRequest().body("the request is not UTF-8\n");
    };
    let witness = witness.into_inner();
    let answer = web::block(move || witness.add_checkpoint(&body)).await;
    match answer {
        Ok((status, content_type, text)) => HttpResponse::build(status)
            .insert_header((actix_web::http::header::CONTENT_TYPE, content_type))
            .body(text),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn metrics(witness: web::Data<Witness>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(witness.render_metrics())
}

/// Binds the witness's listener now (so the caller learns the port) and returns the server.
pub fn server(witness: Witness, listener: TcpListener) -> anyhow::Result<Server> {
    let witness = web::Data::new(witness);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(witness.clone())
            .app_data(web::PayloadConfig::default().limit(MAX_REQUEST_BYTES))
            .route("/add-checkpoint", web::post().to(add_checkpoint))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .listen(listener)?
    .run())
}

#[cfg(test)]
mod tests {
    use base64::{engine::general_purpose::STANDARD, Engine};

    use super::*;
    use crate::{
        audit::{
            checkpoint::{Checkpoint, CheckpointSigner},
            cosignature::WitnessKey,
            merkle::{consistency_proof, leaf_hash, root, Hash, MemoryTree},
        },
        witness::LogSettings,
    };

    const ORIGIN: &str = "concordat.test/log";

    fn leaves(changed: Option<usize>) -> Vec<Hash> {
        (0..16)
            .map(|i| {
                let text = if Some(i) == changed {
                    "changed".into()
                } else {
                    format!("entry {i}")
                };
                leaf_hash(text.as_bytes())
            })
            .collect()
    }

    fn body(log: &CheckpointSigner, leaves: &[Hash], old: u64, new: u64) -> String {
        let mut tree = MemoryTree::from_leaf_hashes(leaves.to_vec());
        let checkpoint = Checkpoint {
            origin: ORIGIN.into(),
            size: new,
            root: root(&mut tree, new).unwrap(),
        };
        let proof: String = consistency_proof(&mut tree, old, new)
            .unwrap()
            .iter()
            .map(|hash| format!("{}\n", STANDARD.encode(hash)))
            .collect();
        format!("old {old}\n{proof}\n{}", log.sign(&checkpoint))
    }

    #[test]
    fn the_witness_cosigns_consistent_checkpoints_remembers_across_restarts_and_keeps_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let log = CheckpointSigner::load_or_create(&dir.path().join("log"), ORIGIN).unwrap();
        let settings = WitnessSettings {
            name: "witness.test/w1".into(),
            key: dir.path().join("witness/witness.pk8"),
            state_dir: dir.path().join("witness/state"),
            bind: "127.0.0.1:0".parse().unwrap(),
            logs: vec![LogSettings {
                origin: ORIGIN.into(),
                vkey: log.verifier().encode(),
            }],
        };
        let honest = leaves(None);
        let witness = Witness::open(&settings).unwrap();
        let key = WitnessKey::parse(&witness.signer().key().encode()).unwrap();

        let (status, _, line) = witness.add_checkpoint(&body(&log, &honest, 0, 4));
        assert_eq!(status, StatusCode::OK);
        let four = body(&log, &honest, 0, 4);
        let note = four.split_once("\n\n").unwrap().1;
        let checkpoint_body = note.split_once("\n\n").unwrap().0.to_owned() + "\n";
        assert!(key.cosignature_in(&checkpoint_body, &line).is_some());

        // Restarted, it still knows size 4: a request from 0 is told so.
        drop(witness);
        let witness = Witness::open(&settings).unwrap();
        let (status, content_type, size) = witness.add_checkpoint(&body(&log, &honest, 0, 9));
        assert_eq!(
            (status, content_type, size.as_str()),
            (StatusCode::CONFLICT, "text/x.tlog.size", "4\n")
        );
        assert_eq!(
            witness.add_checkpoint(&body(&log, &honest, 4, 9)).0,
            StatusCode::OK
        );

        // The same key signing a different history: refused, evidence kept, counted.
        let forked = leaves(Some(2));
        assert_eq!(
            witness.add_checkpoint(&body(&log, &forked, 9, 12)).0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            witness.add_checkpoint(&body(&log, &forked, 9, 9)).0,
            StatusCode::CONFLICT
        );
        let evidence = witness.evidence().unwrap();
        assert_eq!(evidence.len(), 2);
        assert!(
            std::fs::read_to_string(evidence[0].join("cosigned.checkpoint"))
                .unwrap()
                .starts_with(&format!("{ORIGIN}\n9\n"))
        );
        assert!(witness
            .render_metrics()
            .contains("concordat_witness_misbehaviour_total{kind=\"inconsistent\"} 1"));
        // Its view did not move: the honest log carries on from 9.
        assert_eq!(
            witness.add_checkpoint(&body(&log, &honest, 9, 16)).0,
            StatusCode::OK
        );
    }
}
