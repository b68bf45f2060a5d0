//! Programme evaluation, as the Isle of Wight paper did it: each measure of emergency
//! service use counted over the W months before each subject's enrolment and the W months
//! after, for the cohort, with small numbers suppressed so that no one can be singled out.
//! Pure: it sees enrolment dates and event dates, never who or what.
//!
//! The rules on what may be asked for live here too: report dates and window lengths
//! coarse enough that two reports cannot be differenced down to a few people.

use serde::{Serialize, Serializer};
use time::{Date, Month};

use super::InvalidValue;

/// Window lengths when none are asked for.
pub const DEFAULT_WINDOWS: [u32; 2] = [12, 18];

/// Reports are as of the end of a completed month, never a chosen day: two reports a day
/// apart would differ by the people enrolled that day, and their difference would describe
/// those few individually. A date that is not a month end is moved back to the last day
/// of the month before it; a date after `today` is refused.
pub fn month_end(as_of: Date, today: Date) -> Result<Date, InvalidValue> {
    if as_of > today {
        return Err(InvalidValue::new("as_of", "must not be in the future"));
    }
    if as_of.next_day().is_some_and(|next| next.day() == 1) {
        return Ok(as_of);
    }
    Ok(as_of
        .replace_day(1)
        .map_or(as_of, |first| first.previous_day().unwrap_or(first)))
}

/// Window lengths from `12,18`: multiples of 6 months up to 120, at most four, no repeats.
pub fn parse_windows(raw: &str) -> Result<Vec<u32>, InvalidValue> {
    let invalid = || {
        InvalidValue::new(
            "windows",
            "must be one to four different multiples of 6 months up to 120, e.g. 12,18",
        )
    };
    let mut windows = Vec::new();
    for part in raw.split(',') {
        let months: u32 = part.trim().parse().map_err(|_| invalid())?;
        if !(6..=120).contains(&months) || !months.is_multiple_of(6) || windows.contains(&months) {
            return Err(invalid());
        }
        windows.push(months);
    }
    if windows.is_empty() || windows.len() > 4 {
        return Err(invalid());
    }
    Ok(windows)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    S136Detentions,
    Calls999,
    AeAttendances,
    AmbulanceCallouts,
}

impl Measure {
    pub const ALL: [Self; 4] = [
        Self::S136Detentions,
        Self::Calls999,
        Self::AeAttendances,
        Self::AmbulanceCallouts,
    ];

    /// The record type whose records count for this measure.
    pub fn record_type(self) -> &'static str {
        match self {
            Self::S136Detentions => "police.s136_detention",
            Self::Calls999 => "emergency.call_999",
            Self::AeAttendances => "health.ae_attendance",
            Self::AmbulanceCallouts => "ambulance.callout",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::S136Detentions => "s136_detentions",
            Self::Calls999 => "calls_999",
            Self::AeAttendances => "ae_attendances",
            Self::AmbulanceCallouts => "ambulance_callouts",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::S136Detentions => "s136 detentions",
            Self::Calls999 => "999 calls",
            Self::AeAttendances => "A&E attendances",
            Self::AmbulanceCallouts => "Ambulance call-outs",
        }
    }

    pub fn for_record_type(record_type: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.record_type() == record_type)
    }
}

/// One person in the cohort, without anything that identifies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortMember {
    pub enrolled_on: Date,
    pub discharged_on: Option<Date>,
    /// The day of every counted event.
    pub events: Vec<(Measure, Date)>,
}

/// A published count: the number, or `<threshold>` when it is small enough to single
/// someone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Count(u64),
    Suppressed(u32),
}

impl Cell {
    fn new(count: u64, threshold: u32) -> Self {
        // Zero is published: it describes everyone alike and singles no one out.
        if count > 0 && count < u64::from(threshold) {
            Self::Suppressed(threshold)
        } else {
            Self::Count(count)
        }
    }

    pub fn count(self) -> Option<u64> {
        match self {
            Self::Count(n) => Some(n),
            Self::Suppressed(_) => None,
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Count(n) => serializer.serialize_u64(*n),
            Self::Suppressed(threshold) => serializer.serialize_str(&format!("<{threshold}")),
        }
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Suppressed(threshold) => write!(f, "<{threshold}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasureRow {
    /// A measure name, or `total` (all four measures).
    pub measure: &'static str,
    pub label: &'static str,
    pub before: Cell,
    pub after: Cell,
    /// `(after − before) / before × 100`, one decimal; null when suppressed or before is 0.
    pub change_percent: Option<f64>,
    pub suppressed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowReport {
    pub months: u32,
    /// Subjects whose W months after enrolment had fully elapsed (and who were not
    /// discharged before then).
    pub subjects: Cell,
    pub measures: Vec<MeasureRow>,
}

/// `date` moved by `months` calendar months, clamped to the end of a shorter month.
pub fn add_months(date: Date, months: i32) -> Date {
    let total = date.year() * 12 + i32::from(u8::from(date.month())) - 1 + months;
    let (year, month_index) = (total.div_euclid(12), total.rem_euclid(12));
    let month =
        Month::try_from(u8::try_from(month_index + 1).unwrap_or(1)).unwrap_or(Month::January);
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).unwrap_or(date)
}

fn change(before: u64, after: u64) -> Option<f64> {
    (before > 0).then(|| {
        let percent = (after as f64 - before as f64) / before as f64 * 100.0;
        (percent * 10.0).round() / 10.0
    })
}

/// The report for each window of `windows` months, at `as_of`.
pub fn service_usage(
    cohort: &[CohortMember],
    windows: &[u32],
    as_of: Date,
    threshold: u32,
) -> Vec<WindowReport> {
    windows
        .iter()
        .map(|&months| window(cohort, months, as_of, threshold))
        .collect()
}

fn window(cohort: &[CohortMember], months: u32, as_of: Date, threshold: u32) -> WindowReport {
    let span = i32::try_from(months).unwrap_or(i32::MAX);
    let counted: Vec<&CohortMember> = cohort
        .iter()
        .filter(|member| {
            let completed = add_months(member.enrolled_on, span);
            completed <= as_of
                && member
                    .discharged_on
                    .is_none_or(|discharged| discharged >= completed)
        })
        .collect();
    let mut totals = [(0u64, 0u64); 4];
    for member in &counted {
        let (start, end) = (
            add_months(member.enrolled_on, -span),
            add_months(member.enrolled_on, span),
        );
        for (measure, day) in &member.events {
            let Some(slot) = Measure::ALL
                .iter()
                .position(|m| m == measure)
                .and_then(|i| totals.get_mut(i))
            else {
                continue;
            };
            if (start..member.enrolled_on).contains(day) {
                slot.0 += 1;
            } else if (member.enrolled_on..end).contains(day) {
                slot.1 += 1;
            }
        }
    }
    let subjects = Cell::new(counted.len() as u64, threshold);
    // Too few people: every figure of the window would describe them individually.
    let whole_window_hidden = matches!(subjects, Cell::Suppressed(_));
    let cell = |count: u64| {
        if whole_window_hidden {
            Cell::Suppressed(threshold)
        } else {
            Cell::new(count, threshold)
        }
    };
    let mut measures: Vec<MeasureRow> = Measure::ALL
        .into_iter()
        .zip(totals)
        .map(|(measure, (before, after))| {
            row(
                measure.name(),
                measure.label(),
                cell(before),
                cell(after),
                before,
                after,
            )
        })
        .collect();
    // Secondary suppression: a total over a column with a suppressed cell would give that
    // cell away by subtraction, so the total of that column is suppressed too.
    let (before_sum, after_sum) = totals
        .iter()
        .fold((0, 0), |(b, a), (tb, ta)| (b + tb, a + ta));
    let column_hidden = |pick: fn(&MeasureRow) -> Cell| {
        measures
            .iter()
            .any(|r| matches!(pick(r), Cell::Suppressed(_)))
    };
    let total_before = if column_hidden(|r| r.before) {
        Cell::Suppressed(threshold)
    } else {
        cell(before_sum)
    };
    let total_after = if column_hidden(|r| r.after) {
        Cell::Suppressed(threshold)
    } else {
        cell(after_sum)
    };
    measures.push(row(
        "total",
        "All four measures",
        total_before,
        total_after,
        before_sum,
        after_sum,
    ));
    WindowReport {
        months,
        subjects,
        measures,
    }
}

fn row(
    measure: &'static str,
    label: &'static str,
    before: Cell,
    after: Cell,
    before_count: u64,
    after_count: u64,
) -> MeasureRow {
    let suppressed = matches!(before, Cell::Suppressed(_)) || matches!(after, Cell::Suppressed(_));
    MeasureRow {
        measure,
        label,
        before,
        after,
        change_percent: if suppressed {
            None
        } else {
            change(before_count, after_count)
        },
        suppressed,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn member(enrolled_on: Date, events: &[(Measure, Date)]) -> CohortMember {
        CohortMember {
            enrolled_on,
            discharged_on: None,
            events: events.to_vec(),
        }
    }

    #[test]
    fn reports_are_as_of_a_completed_month_end() {
        let today = date!(2026 - 04 - 10);
        assert_eq!(
            month_end(date!(2026 - 03 - 31), today).unwrap(),
            date!(2026 - 03 - 31)
        );
        assert_eq!(
            month_end(date!(2026 - 03 - 15), today).unwrap(),
            date!(2026 - 02 - 28)
        );
        assert_eq!(
            month_end(date!(2026 - 01 - 10), today).unwrap(),
            date!(2025 - 12 - 31)
        );
        assert_eq!(month_end(today, today).unwrap(), date!(2026 - 03 - 31));
        let future = month_end(date!(2026 - 04 - 11), today).unwrap_err();
        assert_eq!(future.field, "as_of");
    }

    #[test]
    fn windows_are_coarse_multiples_of_six_months() {
        assert_eq!(parse_windows("12,18").unwrap(), [12, 18]);
        assert_eq!(parse_windows("6, 24").unwrap(), [6, 24]);
        for bad in ["13", "0", "12,12", "6,12,18,24,30", "x", "", "126"] {
            let error = parse_windows(bad).unwrap_err();
            assert_eq!(error.field, "windows", "{bad}");
        }
    }

    #[test]
    fn months_are_calendar_months_clamped_to_short_months() {
        assert_eq!(add_months(date!(2025 - 01 - 31), 1), date!(2025 - 02 - 28));
        assert_eq!(
            add_months(date!(2025 - 03 - 15), -12),
            date!(2024 - 03 - 15)
        );
        assert_eq!(add_months(date!(2025 - 11 - 30), 18), date!(2027 - 05 - 30));
    }

    #[test]
    fn events_fall_in_the_before_or_after_window_by_day() {
        let enrolled = date!(2025 - 01 - 01);
        let cohort = vec![member(
            enrolled,
            &[
                (Measure::S136Detentions, date!(2024 - 01 - 01)), // first day before
                (Measure::S136Detentions, date!(2023 - 12 - 31)), // outside
                (Measure::S136Detentions, date!(2025 - 01 - 01)), // first day after
                (Measure::S136Detentions, date!(2026 - 01 - 01)), // outside
            ],
        )];
        let report = service_usage(&cohort, &[12], date!(2026 - 06 - 01), 1);
        let detentions = &report[0].measures[0];
        assert_eq!(
            (detentions.before, detentions.after),
            (Cell::Count(1), Cell::Count(1))
        );
    }

    #[test]
    fn small_counts_and_what_would_reveal_them_are_suppressed() {
        let enrolled = date!(2025 - 01 - 01);
        let mut cohort: Vec<CohortMember> = (0..6).map(|_| member(enrolled, &[])).collect();
        for _ in 0..7 {
            cohort[0]
                .events
                .push((Measure::AeAttendances, date!(2024 - 06 - 01)));
        }
        cohort[1]
            .events
            .push((Measure::S136Detentions, date!(2024 - 06 - 01)));
        cohort[1]
            .events
            .push((Measure::AeAttendances, date!(2025 - 06 - 01)));
        let report = service_usage(&cohort, &[12], date!(2026 - 06 - 01), 5);
        let w = &report[0];
        assert_eq!(w.subjects, Cell::Count(6));
        let s136 = &w.measures[0];
        assert_eq!(
            (
                s136.before,
                s136.after,
                s136.change_percent,
                s136.suppressed
            ),
            (Cell::Suppressed(5), Cell::Count(0), None, true)
        );
        let ae = &w.measures[2];
        assert_eq!(
            (ae.before, ae.after, ae.change_percent),
            (Cell::Count(7), Cell::Suppressed(5), None)
        );
        let total = &w.measures[4];
        assert_eq!(
            (total.before, total.after, total.suppressed),
            (Cell::Suppressed(5), Cell::Suppressed(5), true)
        );
        assert_eq!(
            serde_json::to_value(total.before).unwrap(),
            serde_json::json!("<5")
        );
    }

    #[test]
    fn a_cohort_below_the_threshold_hides_the_whole_window() {
        let cohort = vec![member(
            date!(2025 - 01 - 01),
            &[(Measure::Calls999, date!(2024 - 06 - 01)); 9],
        )];
        let report = service_usage(&cohort, &[12], date!(2026 - 06 - 01), 5);
        assert_eq!(report[0].subjects, Cell::Suppressed(5));
        assert!(report[0]
            .measures
            .iter()
            .all(|r| r.before == Cell::Suppressed(5)
                && r.after == Cell::Suppressed(5)
                && r.change_percent.is_none()));
    }

    #[test]
    fn only_completed_windows_count_including_for_discharged_subjects() {
        let as_of = date!(2026 - 06 - 01);
        let mut discharged_early = member(date!(2025 - 01 - 01), &[]);
        discharged_early.discharged_on = Some(date!(2025 - 08 - 01));
        let mut discharged_late = member(date!(2024 - 01 - 01), &[]);
        discharged_late.discharged_on = Some(date!(2025 - 03 - 01));
        let cohort = vec![
            member(date!(2025 - 01 - 01), &[]), // 12 months done, 18 not
            member(date!(2026 - 01 - 01), &[]), // neither
            discharged_early,                   // left before completing 12 months
            discharged_late,                    // completed 12 months, left before 18
        ];
        let report = service_usage(&cohort, &[12, 18], as_of, 1);
        assert_eq!(report[0].subjects, Cell::Count(2));
        assert_eq!(report[1].subjects, Cell::Count(0));
    }
}
