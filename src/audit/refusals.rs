//! Refusals before use, coalesced. A request refused by the identity layer (its certificate
//! no longer accepted, no active principal for it, or over its rate) reached no use case and
//! disclosed and changed nothing. Each one still counts, but a client repeating one can send
//! them far faster than the trail should grow: the first refusal of a certificate, action
//! and reason in a second gets its own entry, as every request does; the rest of that
//! second are counted, and one entry carrying the count (`refusals`) is written once the
//! second is over. A flood therefore costs at most two entries per certificate, action and
//! reason per second, and no refusal goes uncounted.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use super::{Action, AuditLog, PendingEntry};

/// Put in a request's extensions by the identity layer when it refuses the request, so that
/// the edge may coalesce the refusal's entry.
#[derive(Debug, Clone, Copy)]
pub struct RefusedBeforeUse;

/// Whether a refusal gets an entry of its own now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The first of its kind this second: record it as usual.
    Record,
    /// Counted into the entry written when this second is over.
    Counted,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Kind {
    certificate_sha256: Option<String>,
    action: Action,
    reason: String,
}

#[derive(Debug)]
struct Window {
    /// The second (of the Unix epoch) this window counts.
    second: i64,
    counted: u64,
    /// The latest counted refusal's entry, as it would have been written on its own.
    latest: Option<PendingEntry>,
}

#[derive(Debug, Default)]
struct State {
    windows: HashMap<Kind, Window>,
    /// Entries for windows that ended with counted refusals, waiting to be written.
    due: Vec<PendingEntry>,
}

#[derive(Debug, Default)]
pub struct Refusals {
    state: Mutex<State>,
}

impl Refusals {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is counts only; a panic elsewhere cannot leave it half-updated in a way
        // that loses more than that count.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits the refusal whose entry would be `entry`, at `second`.
    pub fn admit(&self, entry: &PendingEntry, second: i64) -> Admission {
        let kind = Kind {
            certificate_sha256: entry.certificate_sha256.clone(),
            action: entry.action,
            reason: entry.reason.clone(),
        };
        let mut state = self.state();
        if let Some(window) = state.windows.get_mut(&kind) {
            if window.second == second {
                window.counted += 1;
                window.latest = Some(entry.clone());
                return Admission::Counted;
            }
        }
        let ended = state.windows.insert(
            kind,
            Window {
                second,
                counted: 0,
                latest: None,
            },
        );
        if let Some(entry) = ended.and_then(Window::into_entry) {
            state.due.push(entry);
        }
        Admission::Record
    }

    /// The entries to write for every window that has ended by `now` (every window, when
    /// `now` is `None`: at shutdown), each carrying its count. Windows that ended are
    /// forgotten, so the table holds only the current second's kinds.
    pub fn take_due(&self, now: Option<i64>) -> Vec<PendingEntry> {
        let mut state = self.state();
        let ended: Vec<Kind> = state
            .windows
            .iter()
            .filter(|(_, window)| now.is_none_or(|now| window.second < now))
            .map(|(kind, _)| kind.clone())
            .collect();
        let mut due = std::mem::take(&mut state.due);
        for kind in ended {
            if let Some(entry) = state.windows.remove(&kind).and_then(Window::into_entry) {
                due.push(entry);
            }
        }
        due
    }

    /// Puts back entries that could not be written, to be tried again.
    pub fn retry(&self, entries: Vec<PendingEntry>) {
        self.state().due.extend(entries);
    }

    /// Writes the entries due by `now` (all, when `None`); those the trail cannot take now
    /// are kept for the next call.
    pub async fn write_due(&self, log: &AuditLog, now: Option<i64>) {
        let mut due = self.take_due(now).into_iter();
        while let Some(entry) = due.next() {
            if let Err(error) = log.append(entry.clone()).await {
                tracing::error!(%error, "counted refusals not yet written; will try again");
                self.retry(std::iter::once(entry).chain(due).collect());
                return;
            }
        }
    }
}

/// Writes counted refusals once a second, until aborted.
pub fn spawn_writer(
    refusals: std::sync::Arc<Refusals>,
    log: AuditLog,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = crate::domain::Timestamp::now()
                .micros()
                .div_euclid(1_000_000);
            refusals.write_due(&log, Some(now)).await;
        }
    })
}

impl Window {
    fn into_entry(self) -> Option<PendingEntry> {
        let mut entry = self.latest.filter(|_| self.counted > 0)?;
        entry.refusals = Some(self.counted);
        entry.time_micros = crate::domain::Timestamp::now().micros();
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Decision;

    fn refusal(certificate: &str, request_id: &str) -> PendingEntry {
        let mut entry = PendingEntry::new(
            request_id,
            Action::WhoamiRead,
            Decision::Denied,
            "unknown_principal",
        );
        entry.certificate_sha256 = Some(certificate.to_owned());
        entry
    }

    #[test]
    fn a_flood_in_one_second_is_one_entry_now_and_one_with_the_count_after() {
        let refusals = Refusals::default();
        assert_eq!(refusals.admit(&refusal("aa", "r0"), 100), Admission::Record);
        for i in 1..=499 {
            assert_eq!(
                refusals.admit(&refusal("aa", &format!("r{i}")), 100),
                Admission::Counted
            );
        }
        assert!(
            refusals.take_due(Some(100)).is_empty(),
            "the second is not over"
        );
        let due = refusals.take_due(Some(101));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].refusals, Some(499));
        assert_eq!(due[0].request_id, "r499");
        assert!(refusals.take_due(Some(102)).is_empty());
    }

    #[test]
    fn certificates_actions_and_reasons_are_counted_apart() {
        let refusals = Refusals::default();
        let mut other_reason = refusal("aa", "x");
        other_reason.reason = "rate_limited".into();
        let mut other_action = refusal("aa", "y");
        other_action.action = Action::RecordsRead;
        for entry in [
            refusal("aa", "a"),
            refusal("bb", "b"),
            other_reason,
            other_action,
        ] {
            assert_eq!(refusals.admit(&entry, 7), Admission::Record);
        }
        assert!(refusals.take_due(Some(8)).is_empty(), "nothing was counted");
    }

    #[test]
    fn a_new_second_records_again_and_keeps_the_last_seconds_count() {
        let refusals = Refusals::default();
        refusals.admit(&refusal("aa", "a"), 1);
        refusals.admit(&refusal("aa", "b"), 1);
        refusals.admit(&refusal("aa", "c"), 1);
        assert_eq!(refusals.admit(&refusal("aa", "d"), 2), Admission::Record);
        let due = refusals.take_due(None);
        assert_eq!(
            due.iter().map(|e| e.refusals).collect::<Vec<_>>(),
            [Some(2)]
        );
    }

    #[test]
    fn entries_not_written_are_kept_for_the_next_attempt() {
        let refusals = Refusals::default();
        refusals.admit(&refusal("aa", "a"), 1);
        refusals.admit(&refusal("aa", "b"), 1);
        let due = refusals.take_due(Some(2));
        refusals.retry(due);
        assert_eq!(refusals.take_due(Some(3)).len(), 1);
    }
}
