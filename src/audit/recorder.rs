//! The one entry of one call, whoever makes the call: an HTTP request, a console page or an
//! operator's command. The caller's edge opens a [`Recorder`] with the action; the use case
//! adds what it touched (subject, records, agreements, what it released and withheld) and,
//! before it changes anything or discloses anything, makes the entry durable. If the use
//! case never records (a refusal, an error, a plain read), the edge records the outcome
//! once the call is over. Either way a call has exactly one entry.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Action, AuditError, AuditLog, Change, CommitError, Decision, PendingEntry, Receipt};
use crate::domain::{Principal, Timestamp};

#[derive(Debug)]
struct State {
    entry: PendingEntry,
    receipt: Option<Receipt>,
    /// The instant the use case decided at, when it named one: the entry's time.
    decided_at: Option<Timestamp>,
}

/// Cheap to clone; every clone is the same entry.
#[derive(Debug, Clone)]
pub struct Recorder {
    log: AuditLog,
    action: Action,
    state: Arc<Mutex<State>>,
}

impl Recorder {
    pub fn new(log: AuditLog, request_id: &str, action: Action) -> Self {
        Self {
            log,
            action,
            state: Arc::new(Mutex::new(State {
                entry: PendingEntry::new(request_id, action, Decision::Granted, "ok"),
                receipt: None,
                decided_at: None,
            })),
        }
    }

    pub fn action(&self) -> Action {
        self.action
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while annotating leaves a partly annotated entry, which is still the
        // best account of the call; never lose the entry over it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Names the principal the call is made by, as soon as it is known (even if the call
    /// is then refused).
    pub fn identify(&self, principal: &Principal) {
        self.annotate(|entry| {
            entry.principal_id = Some(principal.id.to_string());
            entry.agency_id = Some(principal.agency.to_string());
            entry.roles = principal.roles.iter().map(|r| r.to_string()).collect();
        });
    }

    /// Names the instant the use case decides at, which becomes the entry's time (instead
    /// of the moment it is recorded): a replay of the decision then applies what stood on
    /// the same day, even for a call that straddles midnight.
    pub fn decide_at(&self, at: Timestamp) {
        self.state().decided_at = Some(at);
    }

    /// Adds ids to the entry: never values.
    pub fn annotate(&self, change: impl FnOnce(&mut PendingEntry)) {
        change(&mut self.state().entry);
    }

    /// The entry as it stands (for tests and for the edge's own fields).
    pub fn pending(&self) -> PendingEntry {
        self.state().entry.clone()
    }

    /// The receipt, once the entry is durable.
    pub fn receipt(&self) -> Option<Receipt> {
        self.state().receipt
    }

    /// Appends the entry with `decision`, `reason` and the digest of what is about to be
    /// sent, and returns once it is durable. A second call returns the first receipt: one
    /// call, one entry.
    pub async fn record(
        &self,
        decision: Decision,
        reason: &str,
        response_sha256: Option<String>,
    ) -> Result<Receipt, AuditError> {
        let entry = {
            let mut state = self.state();
            if let Some(receipt) = state.receipt {
                return Ok(receipt);
            }
            state.entry.decision = decision;
            reason.clone_into(&mut state.entry.reason);
            state.entry.response_sha256 = response_sha256;
            state.entry.time_micros = state.decided_at.unwrap_or_else(Timestamp::now).micros();
            state.entry.clone()
        };
        let receipt = self.log.append(entry).await?;
        self.state().receipt = Some(receipt);
        Ok(receipt)
    }

    /// Records the call as granted and stores `change` in the same transaction: both are
    /// durable, or neither is (a change the database refuses leaves the entry, as an
    /// error). For changes that are single writes; see [`Change`].
    pub async fn record_with_change(&self, change: Change) -> Result<Receipt, CommitError> {
        let entry = {
            let mut state = self.state();
            if state.receipt.is_some() {
                // One call, one entry: a call that already recorded cannot attach a change
                // to its entry any more.
                return Err(AuditError::Failed.into());
            }
            state.entry.time_micros = state.decided_at.unwrap_or_else(Timestamp::now).micros();
            state.entry.clone()
        };
        let receipt = self.log.commit(entry, Some(change)).await;
        // A refused change still has its entry (as an error): the edge must not add another.
        if let Ok(recorded)
        | Err(CommitError::Change {
            receipt: recorded, ..
        }) = &receipt
        {
            self.state().receipt = Some(*recorded);
        }
        receipt
    }

    /// Records the call as granted *before* the use case changes anything, so no change
    /// can exist without its entry. Use cases check everything they can first; if the
    /// change still fails, the entry over-reports an attempt as granted, never the reverse.
    pub async fn record_before_change(&self) -> Result<Receipt, AuditError> {
        self.record(Decision::Granted, "ok", None).await
    }
}
