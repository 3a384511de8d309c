//! The restore command: put a backup back into Alga, in place (disaster recovery) or into
//! another instance or tenant (migration), as a producer of operations for the runner: the
//! same executor, journal, reconciliation and results CSV as an import.
//!
//! ```text
//! LOCATION --store::open--> BackupStore --backup.rs--> tickets, documents, comments (ordered)
//!   --targets.rs--> target per ticket (--ticket-map, else the same number; --ticket subsets)
//! Session::open(results) -> Session::connect -> resolve target numbers
//!   --ops.rs--> uploads and comment posts (keys: source id + target ticket; template: body.rs)
//!   --present.rs--> what the target holds already: `present`, nothing sent
//!   --check.rs--> backup files checked (missing or damaged: failed, never uploaded)
//!   --> Session::run_with (dry run: the plan and the time it takes)
//! ```
//! Uploads stream from the store (`source.rs`): a folder is read straight from its files, any
//! other store from its objects, and every byte is checked against the manifest's sha256 on
//! the way.

mod backup;
mod body;
mod check;
mod ops;
mod present;
mod report;
mod source;
mod targets;
mod template;

pub(crate) use template::DEFAULT_TEMPLATE;
#[cfg(test)]
pub(crate) use template::PLACEHOLDERS;

use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::exec::resolve::resolve_tickets;
use crate::import::default_results_path;
use crate::job::{Problem, Severity, TicketRef};
use crate::runner::{Completed, OpsOptions, Pacing, Runner, Session};
use crate::store::{self, BackupStore, Location};
use backup::SourceTicket;
use ops::{Builder, Planned, Target};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use targets::TicketMap;
use template::Template;

/// Options of `restore`.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The backup: a folder written by `backup`, or `s3://bucket/prefix`.
    pub location: String,
    /// Results CSV (resumed when it exists); default `results/restore-<UTC timestamp>.csv`.
    pub results: Option<PathBuf>,
    /// Only these backed-up tickets (numbers or ids); empty: all.
    pub tickets: Vec<String>,
    /// CSV `source,target`: where backed-up tickets go (default: the same number).
    pub ticket_map: Option<PathBuf>,
    /// Restore documents.
    pub documents: bool,
    /// Restore comments.
    pub comments: bool,
    /// Comment template (default: a header with the original author and date, then the text).
    pub template: Option<String>,
    /// Resolve, check and write the plan; send nothing.
    pub dry_run: bool,
    /// Restore the tickets that resolve; record the others as failed.
    pub skip_unresolved: bool,
    /// How requests are paced and retried.
    pub pacing: Pacing,
    /// Only the final summary.
    pub quiet: bool,
}

/// What a restore reads before it connects.
struct Inputs {
    store: Arc<dyn BackupStore>,
    location: Location,
    template: Template,
    tickets: Vec<SourceTicket>,
    map: TicketMap,
}

/// Restore the backup at `opts.location` into the server behind `conn`. Bad usage, a bad
/// template or ticket map and unresolved tickets exit 2 with nothing sent.
pub async fn run_restore(
    opts: &RestoreOptions,
    conn: impl FnOnce() -> Result<Connection>,
) -> Result<Completed> {
    let inputs = prepare(opts).await?;
    let results = opts
        .results
        .clone()
        .unwrap_or_else(|| default_results_path("restore"));
    let session = Session::open(&results, opts.quiet)?;
    let runner = session.connect(conn()?, &opts.pacing)?;
    runner.preflight().await?;
    let targets = resolve(&runner, &inputs.tickets, &inputs.map).await?;
    let builder = Builder {
        store: Arc::clone(&inputs.store),
        template: &inputs.template,
    };
    let mut planned: Vec<Planned> = inputs
        .tickets
        .iter()
        .zip(&targets)
        .flat_map(|(t, target)| builder.ticket(t, target))
        .collect();
    let missing = present::check(&runner, &mut planned, session.previous())
        .await
        .map_err(|e| api_fatal(&runner, e))?;
    let mut unresolved: Vec<String> = targets.iter().filter_map(|t| t.id.clone().err()).collect();
    for (ticket, why) in missing {
        planned
            .iter_mut()
            .filter(|p| p.op.ticket_id == Some(ticket))
            .for_each(|p| p.op.blocked = Some(why.clone()));
        unresolved.push(why);
    }
    check::check_files(&*inputs.store, &mut planned, session.previous()).await;
    let problems = unresolved_problems(&planned, &unresolved, opts.skip_unresolved);
    report::plan(&planned, session.previous(), opts.dry_run, opts.quiet);
    let ops_opts = OpsOptions {
        job_name: format!("restore of {}", inputs.location),
        notify: false,
        dry_run: opts.dry_run,
        skip_unresolved: opts.skip_unresolved,
        verb: "restoring",
        quiet: opts.quiet,
        problems,
        unlisted_errors: 0,
    };
    let ops = planned.into_iter().map(|p| p.op).collect();
    session
        .run_with(ops, Some(runner), &opts.pacing, &ops_opts)
        .await
}

/// Everything that needs no server: the template, the ticket map, the backup and the
/// selection (usage errors, exit 2).
async fn prepare(opts: &RestoreOptions) -> Result<Inputs> {
    if !opts.documents && !opts.comments {
        return Err(Error::Usage(
            "--no-documents and --no-comments leave nothing to restore".into(),
        ));
    }
    let raw = opts.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
    let template = Template::compile(raw)
        .map_err(|e| Error::Usage(format!("--comment-template: {}", e.join("; "))))?;
    let map = match &opts.ticket_map {
        Some(path) => read_map(path)?,
        None => TicketMap::default(),
    };
    let location = Location::parse(&opts.location).map_err(|e| Error::Usage(e.to_string()))?;
    let store: Arc<dyn BackupStore> = Arc::from(store::open(&location, false).await?);
    let backup = backup::read(&*store, opts.documents, opts.comments).await?;
    backup
        .warnings
        .iter()
        .for_each(|w| eprintln!("warning: {w}"));
    if backup.tickets.is_empty() {
        return Err(Error::Usage(format!(
            "{location}: nothing to restore (no manifest row{}; is it a folder written by backup?)",
            if opts.comments {
                " and no comments.jsonl"
            } else {
                ""
            }
        )));
    }
    let tickets = targets::select(backup.tickets, &opts.tickets).map_err(|missing| {
        Error::Usage(format!(
            "nothing to restore for {} in the backup at {location} (not backed up, or only what              --no-documents/--no-comments leave out)",
            missing.join(", ")
        ))
    })?;
    for (source, line) in map.unused(&tickets) {
        eprintln!("warning: ticket map line {line}: {source} names no restored ticket");
    }
    report::backup(&location, &tickets, backup.deleted, opts.quiet);
    Ok(Inputs {
        store,
        location,
        template,
        tickets,
        map,
    })
}

/// Read and parse `--ticket-map`.
fn read_map(path: &std::path::Path) -> Result<TicketMap> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read --ticket-map {}: {e}", path.display())))?;
    TicketMap::parse(&text, &path.display().to_string()).map_err(|errs| {
        errs.iter().for_each(|e| eprintln!("{e}"));
        Error::Usage(format!(
            "--ticket-map {} has {} error(s); nothing was sent",
            path.display(),
            errs.len()
        ))
    })
}

/// The target of every ticket, its number resolved exactly (the fewest list requests).
async fn resolve(
    runner: &Runner,
    tickets: &[SourceTicket],
    map: &TicketMap,
) -> Result<Vec<Target>> {
    let refs: Vec<Result<TicketRef, String>> =
        tickets.iter().map(|t| targets::target_of(t, map)).collect();
    let mut numbers: Vec<String> = refs
        .iter()
        .filter_map(|r| match r {
            Ok(TicketRef::Number(n)) => Some(n.clone()),
            _ => None,
        })
        .collect();
    numbers.sort();
    numbers.dedup();
    let resolved = match numbers.is_empty() {
        true => HashMap::new(),
        false => {
            let soft = &runner.stop().cancel.soft;
            resolve_tickets(runner.client(), runner.policy(), &numbers, soft)
                .await
                .map_err(|e| api_fatal(runner, e))?
        }
    };
    Ok(refs
        .into_iter()
        .zip(tickets)
        .map(|(r, t)| match r {
            Ok(TicketRef::Id(id)) => Target {
                reference: TicketRef::Id(id),
                id: Ok(id),
            },
            Ok(TicketRef::Number(n)) => Target {
                id: resolved
                    .get(&n)
                    .cloned()
                    .unwrap_or_else(|| Err(format!("ticket {n} was not resolved"))),
                reference: TicketRef::Number(n),
            },
            Err(why) => Target {
                reference: TicketRef::Number(t.label()),
                id: Err(why),
            },
        })
        .collect())
}

/// The run-level error for an API error that stopped the checks.
fn api_fatal(runner: &Runner, e: crate::api::ApiError) -> Error {
    match e {
        crate::api::ApiError::Cancelled => Error::Interrupted,
        e => runner.fatal(e),
    }
}

/// Places shown per unresolved target before "and N more".
const SHOWN_PLACES: usize = 5;

/// One problem per unresolved target, naming the backup files that need it: errors (exit 2,
/// nothing sent), or warnings with `skip` (those operations are recorded failed).
fn unresolved_problems(planned: &[Planned], unresolved: &[String], skip: bool) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for why in unresolved {
        if out.iter().any(|p| &p.message == why) {
            continue;
        }
        let sources: Vec<&str> = planned
            .iter()
            .filter(|p| p.op.blocked.as_ref() == Some(why))
            .map(|p| p.op.source.as_str())
            .collect();
        let more = sources.len().saturating_sub(SHOWN_PLACES);
        let mut location = sources[..sources.len().min(SHOWN_PLACES)].join(", ");
        if more > 0 {
            location.push_str(&format!(" (and {more} more)"));
        }
        let severity = if skip {
            Severity::Warning
        } else {
            Severity::Error
        };
        out.push(Problem {
            severity,
            location,
            message: why.clone(),
        });
    }
    if skip {
        out.iter().for_each(|p| eprintln!("{p}"));
    }
    out
}
