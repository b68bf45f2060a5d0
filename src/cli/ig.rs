//! `concordat ig`: information governance. `ig report` prints the IG audit report for a
//! period, in Markdown for the IG lead or JSON for other tools, through the same use case
//! any other caller would use, and audited like every report: its entry, with the digest of
//! exactly what is printed, is durable before anything is printed.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::PathBuf};

use anyhow::Context;
use clap::Subcommand;
use ring::digest::{digest, SHA256};
use time::macros::format_description;

use crate::{
    app::{
        ig_report::{self, IgQuery, IgReport, Review},
        AppError,
    },
    audit::{Action, Decision},
    config::Settings,
    domain::Timestamp,
};

#[derive(Debug, Subcommand)]
pub enum IgCommand {
    /// The IG audit report for a period: disclosures by agreement and lawful basis,
    /// agreements past review, break-glass accesses against the 72-hour review rule,
    /// refused requests, consents about to expire, the latest witnessed checkpoint.
    Report {
        /// The first day, `YYYY-MM-DD`, from 00:00 UTC.
        #[arg(long)]
        from: String,
        /// The last day, `YYYY-MM-DD`, included: up to 00:00 UTC the day after.
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value_t = IgFormat::Markdown)]
        format: IgFormat,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IgFormat {
    Markdown,
    Json,
}

pub async fn run(
    command: IgCommand,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let IgCommand::Report {
        from,
        to,
        format,
        out: path,
    } = command;
    // A file that cannot be written fails the command before anything is read or audited:
    // the report is written to `<FILE>.tmp` (mode 0600: part 5 names people by their
    // programme id) and renamed over `FILE` only once complete, so a refused or failed run
    // leaves an earlier report as it was.
    let probe = path
        .as_ref()
        .map(|path| {
            let mut probe = path.as_os_str().to_owned();
            probe.push(".tmp");
            let probe = PathBuf::from(probe);
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&probe)
                .map(|_| probe)
                .with_context(|| format!("--out: cannot write beside {}", path.display()))
        })
        .transpose()?;
    let query = IgQuery { from, to };
    let audited = super::audited_with_gateway(settings, Action::ReportIg, async |gateway, call| {
        let report = ig_report::report(gateway, call, query).await?;
        let text = render(&report, format).map_err(AppError::internal)?;
        // The entry carries the digest of exactly what is printed, durable before it is.
        let sha256 = hex::encode(digest(&SHA256, &text));
        call.audit
            .record(Decision::Granted, "ok", Some(sha256))
            .await?;
        Ok(text)
    })
    .await;
    let text = match audited {
        Ok(text) => text,
        Err(error) => {
            if let Some(probe) = &probe {
                let _ = std::fs::remove_file(probe);
            }
            return Err(super::flag_error(error));
        }
    };
    match path {
        Some(path) => {
            crate::files::write_private(&path, &text)
                .with_context(|| format!("--out: cannot write {}", path.display()))?;
            eprintln!("IG report written to {}", path.display());
        }
        None => out.write_all(&text)?,
    }
    Ok(())
}

fn render(report: &IgReport, format: IgFormat) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        IgFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(report)?)?,
        IgFormat::Markdown => markdown(report, &mut out)?,
    }
    Ok(out)
}

/// An instant as the IG lead reads it: to the minute, in UTC.
fn when(at: Timestamp) -> String {
    at.to_datetime()
        .and_then(|at| {
            at.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| at.to_rfc3339())
}

/// Text as one Markdown table cell: a bar or a line break would end it early.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// `n thing` or `n things`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn markdown(report: &IgReport, out: &mut Vec<u8>) -> std::io::Result<()> {
    let period = &report.period;
    writeln!(out, "# Information governance audit report\n")?;
    writeln!(
        out,
        "- **Period:** {} to {}, both days included ({} up to {})",
        period.from,
        period.to,
        when(period.starts_at),
        when(period.ends_before)
    )?;
    writeln!(out, "- **Produced:** {}", when(report.generated_at))?;
    writeln!(
        out,
        "- **Agreement reviews and consent expiry as of:** {}, the day the report was produced\n",
        report.as_of
    )?;
    writeln!(
        out,
        "This report holds no names, NHS numbers, record contents, break-glass justifications \
         or review notes. People are counted, never named; only section 5 lists people, by \
         their pseudonymous programme id, so that their consent can be renewed in time.\n"
    )?;
    disclosures(report, out)?;
    overdue_reviews(report, out)?;
    break_glass(report, out)?;
    refused(report, out)?;
    expiring_consents(report, out)?;
    checkpoint(report, out)
}

fn disclosures(report: &IgReport, out: &mut Vec<u8>) -> std::io::Result<()> {
    let disclosures = &report.disclosures;
    writeln!(out, "## 1. Disclosures and their lawful basis\n")?;
    if disclosures.total == 0 {
        return writeln!(out, "No records were disclosed in the period.\n");
    }
    writeln!(
        out,
        "Records were disclosed {} in the period, about {}: reads that returned at least \
         one record. A read is counted under each agreement that applied to it (shared a record \
         type it considered), so the rows can add up to more than the total.\n",
        count(disclosures.total, "time", "times"),
        count(disclosures.subjects, "person", "people")
    )?;
    writeln!(
        out,
        "| Agreement | Version | Title | Lawful basis | Disclosures | People |"
    )?;
    writeln!(out, "| --- | --- | --- | --- | ---: | ---: |")?;
    for row in &disclosures.by_agreement {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&row.agreement_id),
            row.version.map_or("?".to_owned(), |v| v.to_string()),
            row.title
                .as_deref()
                .map_or("(not stored in the gateway)".to_owned(), cell),
            cell(&row.lawful_basis.join("; ")),
            row.disclosures,
            row.subjects
        )?;
    }
    let own = &disclosures.own_records;
    if own.disclosures > 0 {
        writeln!(
            out,
            "| No agreement applied: the agency's own records only | | | | {} | {} |",
            own.disclosures, own.subjects
        )?;
    }
    writeln!(out)
}

fn overdue_reviews(report: &IgReport, out: &mut Vec<u8>) -> std::io::Result<()> {
    writeln!(out, "## 2. Agreements past their review date\n")?;
    if report.overdue_reviews.is_empty() {
        return writeln!(
            out,
            "No agreement in force on {} is past its review date.\n",
            report.as_of
        );
    }
    writeln!(
        out,
        "In force on {} but past the date by which the parties agreed to review them:\n",
        report.as_of
    )?;
    writeln!(
        out,
        "| Agreement | Version | Title | Review by | Days overdue |"
    )?;
    writeln!(out, "| --- | --- | --- | --- | ---: |")?;
    for row in &report.overdue_reviews {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&row.agreement_id),
            row.version,
            cell(&row.title),
            row.review_by,
            row.days_overdue
        )?;
    }
    writeln!(out)
}

fn break_glass(report: &IgReport, out: &mut Vec<u8>) -> std::io::Result<()> {
    let glass = &report.break_glass;
    let hours = glass.review_within_hours;
    writeln!(out, "## 3. Break-glass accesses\n")?;
    if glass.total == 0 {
        return writeln!(
            out,
            "No break-glass access was made or attempted in the period.\n"
        );
    }
    writeln!(
        out,
        "{} in the period: {} reviewed as justified, {} as not justified, {} awaiting review. \
         Each must be reviewed within {hours} hours; {} breached that rule (reviewed later, or \
         still unreviewed after {hours} hours).\n",
        count(
            glass.total,
            "break-glass access was made or attempted",
            "break-glass accesses were made or attempted"
        ),
        glass.justified,
        glass.unjustified,
        glass.unreviewed,
        glass.breaches
    )?;
    writeln!(
        out,
        "| Entry | Time | Agency | Access | Review | Hours to review | {hours}-hour rule |"
    )?;
    writeln!(out, "| ---: | --- | --- | --- | --- | ---: | --- |")?;
    for access in &glass.accesses {
        let (review, waited) = match access.outcome {
            Review::Justified => ("justified", String::new()),
            Review::Unjustified => ("not justified", String::new()),
            Review::Unreviewed => ("awaiting review", " so far".to_owned()),
        };
        writeln!(
            out,
            "| {} | {} | {} | {} | {review} | {:.1}{waited} | {} |",
            access.leaf_index,
            when(access.time),
            access
                .agency_id
                .as_deref()
                .map_or("unidentified caller".to_owned(), cell),
            if access.decision == Decision::Granted {
                "granted"
            } else {
                "refused"
            },
            access.review_delay_hours,
            if access.breach { "**breached**" } else { "met" }
        )?;
    }
    writeln!(
        out,
        "\nThe entry number finds the access in the audit trail \
         (`GET /v1/audit/entries/{{entry}}`), where the auditor can read its justification.\n"
    )
}

fn refused(report: &IgReport, out: &mut Vec<u8>) -> std::io::Result<()> {
    let refused = &report.refused;
    writeln!(out, "## 4. Refused requests\n")?;
    if refused.total == 0 {
        return writeln!(out, "No request was refused in the period.\n");
    }
    writeln!(
        out,
        "{} in the period. The reason is the rule that refused it.\n",
        count(
            refused.total,
            "request was refused",
            "requests were refused"
        )
    )?;
    writeln!(out, "| Agency | Refused | Reasons |")?;
    writeln!(out, "| --- | ---: | --- |")?;
    for agency in &refused.by_agency {
        let reasons: Vec<String> = agency
            .by_reason
            .iter()
            .map(|r| format!("{} ({})", cell(&r.reason), r.refused))
            .collect();
        writeln!(
            out,
            "| {} | {} | {} |",
            agency
                .agency_id
                .as_deref()
                .map_or("unidentified caller".to_owned(), cell),
            agency.refused,
            reasons.join(", ")
        )?;
    }
    writeln!(out, "\n| Reason | Refused |")?;
    writeln!(out, "| --- | ---: |")?;
    for reason in &refused.by_reason {
        writeln!(out, "| {} | {} |", cell(&reason.reason), reason.refused)?;
    }
    writeln!(out)
}

fn expiring_consents(report: &IgReport, out: &mut Vec<u8>) -> std::io::Result<()> {
    let expiring = &report.expiring_consents;
    let days = expiring.within_days;
    writeln!(out, "## 5. Consent expiring within {days} days\n")?;
    if expiring.count == 0 {
        return writeln!(
            out,
            "No one enrolled has a consent that runs out within {days} days of {}.\n",
            report.as_of
        );
    }
    writeln!(
        out,
        "{} enrolled on the programme {} within {days} days of {}. Ask them to renew it, or \
         the gateway will stop sharing on their consent after the expiry day.\n",
        count(expiring.count, "person", "people"),
        if expiring.count == 1 {
            "has a consent that runs out"
        } else {
            "have a consent that runs out"
        },
        report.as_of
    )?;
    writeln!(
        out,
        "| Subject (pseudonymous id) | Consent expires on | Days left |"
    )?;
    writeln!(out, "| --- | --- | ---: |")?;
    for subject in &expiring.subjects {
        writeln!(
            out,
            "| {} | {} | {} |",
            cell(&subject.subject_id),
            subject.expires_on,
            subject.days_left
        )?;
    }
    writeln!(out)
}

fn checkpoint(report: &IgReport, out: &mut Vec<u8>) -> std::io::Result<()> {
    writeln!(out, "## 6. Latest signed checkpoint\n")?;
    let Some(checkpoint) = &report.checkpoint else {
        return writeln!(out, "No checkpoint of the audit trail has been signed yet.");
    };
    writeln!(
        out,
        "The gateway's latest checkpoint covers the first {} of the audit trail; it was signed \
         at {}. The gateway's signature on it {}.",
        count(checkpoint.tree_size, "entry", "entries"),
        when(checkpoint.signed_at),
        if checkpoint.signature_verified {
            "verifies"
        } else {
            "does NOT verify: tell the gateway's operator at once"
        }
    )?;
    if checkpoint.witnesses.is_empty() {
        writeln!(out, "No witness has cosigned it yet.\n")?;
    } else {
        writeln!(
            out,
            "{} cosigned it: {}.\n",
            count(checkpoint.cosignatures, "witness", "witnesses"),
            checkpoint
                .witnesses
                .iter()
                .map(|name| cell(name))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    writeln!(
        out,
        "The signed note, as `GET /v1/audit/checkpoint` serves it:\n\n```text\n{}```",
        checkpoint.signed_note
    )
}
