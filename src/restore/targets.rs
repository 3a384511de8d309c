//! Which backed-up tickets a restore puts back, and where: `--ticket`/`--tickets` pick tickets
//! by backed-up number or id; `--ticket-map` (CSV with columns `source,target`) sends a ticket
//! to another number or to a ticket UUID; every other ticket goes to the ticket with its own
//! number on the target server (resolved exactly, as job tickets are).

use super::backup::SourceTicket;
use crate::job::TicketRef;
use std::collections::HashMap;
use uuid::Uuid;

/// `--ticket-map`: backed-up number (any case) or id -> target ticket.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TicketMap {
    by_number: HashMap<String, TicketRef>,
    by_id: HashMap<Uuid, TicketRef>,
    /// Every source as written, with its line (to report unused ones).
    sources: Vec<(String, usize)>,
}

impl TicketMap {
    /// Parse a ticket map; every problem at once, each naming `label:line`.
    pub(crate) fn parse(text: &str, label: &str) -> Result<TicketMap, Vec<String>> {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(text.as_bytes());
        let header: Vec<String> = match rdr.headers() {
            Ok(h) => h.iter().map(str::to_ascii_lowercase).collect(),
            Err(e) => return Err(vec![format!("{label}: {e}")]),
        };
        let col = |name: &str| header.iter().position(|c| c == name);
        let (Some(src), Some(dst)) = (col("source"), col("target")) else {
            return Err(vec![format!(
                "{label}:1: the header must name the columns source and target (found {})",
                header.join(",")
            )]);
        };
        let mut map = TicketMap::default();
        let mut errors = Vec::new();
        for rec in rdr.records() {
            match rec {
                Ok(r) => {
                    let line = line_of(text, r.position().map_or(0, |p| p.byte()));
                    let at = format!("{label}:{line}");
                    map.add(r.get(src), r.get(dst), &at, line, &mut errors);
                }
                Err(e) => errors.push(format!("{label}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(map)
        } else {
            Err(errors)
        }
    }

    /// Add one row (blank rows are skipped).
    fn add(
        &mut self,
        source: Option<&str>,
        target: Option<&str>,
        at: &str,
        line: usize,
        errors: &mut Vec<String>,
    ) {
        let (source, target) = (source.unwrap_or(""), target.unwrap_or(""));
        if source.is_empty() && target.is_empty() {
            return;
        }
        let (Some(s), Some(t)) = (TicketRef::parse(source), TicketRef::parse(target)) else {
            errors.push(format!("{at}: both source and target are needed"));
            return;
        };
        let fresh = match s {
            TicketRef::Id(id) => self.by_id.insert(id, t).is_none(),
            TicketRef::Number(n) => self.by_number.insert(n.to_lowercase(), t).is_none(),
        };
        if !fresh {
            errors.push(format!("{at}: source {source} is mapped twice"));
        }
        self.sources.push((source.to_string(), line));
    }

    /// Where `t` goes, when the map says: by id first, then by number.
    fn target(&self, t: &SourceTicket) -> Option<TicketRef> {
        self.by_id.get(&t.id).cloned().or_else(|| {
            let n = t.number.as_deref()?.to_lowercase();
            self.by_number.get(&n).cloned()
        })
    }

    /// Sources that name no backed-up ticket (with their lines).
    pub(crate) fn unused(&self, tickets: &[SourceTicket]) -> Vec<(String, usize)> {
        self.sources
            .iter()
            .filter(|(s, _)| !tickets.iter().any(|t| names(t, s)))
            .cloned()
            .collect()
    }
}

/// The line a record starting at `byte` is on (the reader's position may be at blank lines
/// before it).
fn line_of(text: &str, byte: u64) -> usize {
    let bytes = text.as_bytes();
    let mut at = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
    while at < bytes.len() && matches!(bytes[at], b'\n' | b'\r') {
        at += 1;
    }
    1 + bytes[..at].iter().filter(|&&b| b == b'\n').count()
}

/// Whether `r` (a number in any case, or an id) names backed-up ticket `t`.
pub(crate) fn names(t: &SourceTicket, r: &str) -> bool {
    match TicketRef::parse(r) {
        Some(TicketRef::Id(id)) => id == t.id,
        Some(TicketRef::Number(n)) => t
            .number
            .as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(&n)),
        None => false,
    }
}

/// The tickets `refs` name (all of them when `refs` is empty); the references that name no
/// backed-up ticket are an error.
pub(crate) fn select(
    tickets: Vec<SourceTicket>,
    refs: &[String],
) -> Result<Vec<SourceTicket>, Vec<String>> {
    if refs.is_empty() {
        return Ok(tickets);
    }
    let missing: Vec<String> = refs
        .iter()
        .filter(|r| !tickets.iter().any(|t| names(t, r)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    Ok(tickets
        .into_iter()
        .filter(|t| refs.iter().any(|r| names(t, r)))
        .collect())
}

/// Where a backed-up ticket goes: the map's target, else its own number; why not when the
/// backup does not record its number.
pub(crate) fn target_of(t: &SourceTicket, map: &TicketMap) -> Result<TicketRef, String> {
    if let Some(r) = map.target(t) {
        return Ok(r);
    }
    match &t.number {
        Some(n) => Ok(TicketRef::Number(n.clone())),
        None => Err(format!(
            "the backup does not record the number of ticket {}: map it with --ticket-map",
            t.id
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u128, number: Option<&str>) -> SourceTicket {
        SourceTicket {
            id: Uuid::from_u128(n),
            number: number.map(str::to_string),
            ..SourceTicket::default()
        }
    }

    const TARGET: &str = "4cfc6e7b-34f7-4935-865a-170dfaaaf6e8";

    #[test]
    fn a_map_sends_numbers_and_ids_to_numbers_and_uuids() {
        let text = format!(
            "Source, Target\nTIC1,TIC900\n\n{},{TARGET}\n",
            Uuid::from_u128(2)
        );
        let map = TicketMap::parse(&text, "map.csv").unwrap();
        assert_eq!(
            target_of(&t(1, Some("tic1")), &map),
            Ok(TicketRef::Number("TIC900".into()))
        );
        assert_eq!(
            target_of(&t(2, Some("TIC2")), &map),
            Ok(TicketRef::Id(TARGET.parse().unwrap())),
            "by id, before the number"
        );
        assert_eq!(
            target_of(&t(3, Some("TIC3")), &map),
            Ok(TicketRef::Number("TIC3".into())),
            "unmapped: its own number"
        );
        assert!(target_of(&t(4, None), &map)
            .unwrap_err()
            .contains("--ticket-map"));
        let unused = map.unused(&[t(1, Some("TIC1"))]);
        assert_eq!(unused, [(Uuid::from_u128(2).to_string(), 4)]);
    }

    #[test]
    fn bad_maps_report_every_line() {
        let errs = TicketMap::parse("from,to\nA,B\n", "m.csv").unwrap_err();
        assert!(errs[0].starts_with("m.csv:1: the header"), "{errs:?}");
        let errs = TicketMap::parse("source,target\nA,B\na,C\nD,\n", "m.csv").unwrap_err();
        assert_eq!(
            errs,
            [
                "m.csv:3: source a is mapped twice",
                "m.csv:4: both source and target are needed"
            ]
        );
    }

    #[test]
    fn selection_by_number_or_id_and_unknown_references() {
        let all = vec![t(1, Some("TIC1")), t(2, Some("TIC2")), t(3, None)];
        let got = select(
            all.clone(),
            &["tic2".into(), Uuid::from_u128(3).to_string()],
        )
        .unwrap();
        let ids: Vec<u128> = got.iter().map(|t| t.id.as_u128()).collect();
        assert_eq!(ids, [2, 3]);
        assert_eq!(select(all.clone(), &[]).unwrap().len(), 3);
        assert_eq!(
            select(all, &["TIC9".into(), "TIC1".into()]).unwrap_err(),
            ["TIC9"]
        );
    }
}
