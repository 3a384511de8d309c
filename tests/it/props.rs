//! Property tests (issue 14): the job parsers never panic on arbitrary bytes, op keys do not
//! depend on row order, and the results CSV round-trips any text.

use alga_batch::job::{load_and_validate, ValidateOptions};
use alga_batch::journal::{read_rows, write_atomic, ResultRow, Status};
use alga_batch::plan::{self, KnownHashes};
use proptest::prelude::*;
use std::collections::HashMap;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn job_parsers_never_panic_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        text in "(?s).{0,400}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        for name in ["job.csv", "job.toml"] {
            for contents in [&bytes[..], text.as_bytes()] {
                let path = dir.path().join(name);
                std::fs::write(&path, contents).unwrap();
                let (job, problems) = load_and_validate(&path, &ValidateOptions::default());
                prop_assert!(job.is_some() || !problems.is_empty());
            }
        }
    }

    #[test]
    fn op_keys_do_not_depend_on_row_order(
        rows in prop::collection::vec((0u8..4, "[a-c ]{1,6}", any::<bool>()), 1..30),
        seed in any::<u64>(),
    ) {
        let mut shuffled = rows.clone();
        // A permutation driven by the seed (Fisher-Yates with a small LCG).
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(keys(&rows), keys(&shuffled));
    }

    #[test]
    fn the_results_csv_round_trips_any_text(
        fields in prop::collection::vec("(?s).{0,30}", 13),
        attempts in any::<u32>(),
        status in prop::sample::select(vec![Status::Created, Status::Failed, Status::Unknown, Status::Sending, Status::Redacted]),
    ) {
        let f = |i: usize| fields[i].clone();
        let row = ResultRow {
            op_key: f(0), source: f(1), ticket: f(2), ticket_id: f(3), kind: f(4), status,
            comment_id: f(5), document_id: f(6), file: f(7), bytes: f(8), sha256: f(9),
            http_status: f(10), attempts, error: f(11), finished_at: f(12),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(&path, &[row.clone(), row.clone()]).unwrap();
        prop_assert_eq!(read_rows(&path).unwrap(), vec![row.clone(), row]);
    }
}

/// The planned op keys of a comment job, each with what it posts.
fn keys(rows: &[(u8, String, bool)]) -> HashMap<String, (String, String, bool)> {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("ticket,comment_text,is_internal\n");
    for (t, text, internal) in rows {
        csv.push_str(&format!("TIC00100{t},x{text}x,{internal}\n"));
    }
    let path = dir.path().join("job.csv");
    std::fs::write(&path, csv).unwrap();
    let (job, problems) = load_and_validate(&path, &ValidateOptions::default());
    let job = job.unwrap_or_else(|| panic!("{problems:?}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let ops = rt
        .block_on(plan::plan(&job, &KnownHashes::placeholder(), &cancel))
        .unwrap();
    ops.into_iter()
        .map(|o| {
            let what = match &o.kind {
                plan::OpKind::Comment(c) => (o.ticket.to_string(), c.text.clone(), c.is_internal),
                other => panic!("{other:?}"),
            };
            (o.op_key, what)
        })
        .collect()
}
