//! End-to-end tests of `load_and_validate`: the shipped example jobs, TOML jobs (inline and
//! sources), and locations of problems across files.

use std::path::{Path, PathBuf};

use super::*;

fn repo_job(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("jobs")
        .join(name)
}

fn load(path: &Path) -> (Option<Job>, Vec<Problem>) {
    load_and_validate(path, &ValidateOptions::default())
}

fn counts(job: &Job) -> (usize, usize) {
    let comments = job
        .items
        .iter()
        .filter(|i| matches!(i.action, Action::Comment(_)))
        .count();
    (comments, job.items.len() - comments)
}

fn comment(item: &JobItem) -> &CommentSpec {
    match &item.action {
        Action::Comment(c) => c,
        Action::Upload(u) => panic!("expected a comment, got an upload of {}", u.name),
    }
}

#[test]
fn shipped_demo_job_is_valid() {
    let (job, problems) = load(&repo_job("demo.toml"));
    assert!(problems.is_empty(), "{}", describe(&problems));
    let job = job.unwrap();
    assert_eq!(job.name, "demo-migration");
    assert_eq!(counts(&job), (54, 7));
    assert_eq!(
        job.settings.concurrency, None,
        "the demo shows --concurrency auto"
    );
    assert_eq!(job.settings.rate_per_minute, Some(60));
    assert_eq!(job.settings.notify, Some(false));
    let first = &job.items[0];
    assert_eq!(first.source, "comments.csv:2");
    assert_eq!(first.ticket, TicketRef::Number("TIC001000".into()));
    let c = comment(first);
    assert!(c
        .text
        .starts_with("Priya Raman wrote on 2024-03-04 08:05:\n\nHi,\n"));
    assert!(c.text.contains("\"Peer not responding\""));
    let internal = job
        .items
        .iter()
        .filter(|i| matches!(&i.action, Action::Comment(c) if c.is_internal));
    assert_eq!(internal.count(), 15);
    let names: Vec<&str> = job
        .items
        .iter()
        .filter_map(|i| match &i.action {
            Action::Upload(u) => Some(u.name.as_str()),
            Action::Comment(_) => None,
        })
        .collect();
    assert!(names.contains(&"résumé – ünïcode.txt"));
    let tickets: std::collections::BTreeSet<String> =
        job.items.iter().map(|i| i.ticket.to_string()).collect();
    assert_eq!(tickets.len(), 10);
    assert!(tickets
        .iter()
        .all(|t| ("TIC001000"..="TIC001009").contains(&t.as_str())));
}

#[test]
fn shipped_simple_csv_is_valid() {
    let (job, problems) = load(&repo_job("simple.csv"));
    assert!(problems.is_empty(), "{}", describe(&problems));
    let job = job.unwrap();
    assert_eq!(job.name, "simple");
    assert_eq!(counts(&job), (3, 3));
    let sources: Vec<&str> = job.items.iter().map(|i| i.source.as_str()).collect();
    assert_eq!(sources[0], "simple.csv:14");
    assert_eq!(sources[5], "simple.csv:17");
    assert!(comment(&job.items[5]).is_resolution);
}

#[test]
fn shipped_inline_toml_is_valid() {
    let (job, problems) = load(&repo_job("inline.toml"));
    assert!(problems.is_empty(), "{}", describe(&problems));
    let job = job.unwrap();
    assert_eq!(counts(&job), (4, 3));
    let sources: Vec<&str> = job.items.iter().map(|i| i.source.as_str()).collect();
    assert_eq!(
        sources,
        [
            "inline.toml:tickets[0].comments[0]",
            "inline.toml:tickets[0].comments[1]",
            "inline.toml:tickets[0].comments[2]",
            "inline.toml:tickets[0].attachments[0]",
            "inline.toml:tickets[0].attachments[1]",
            "inline.toml:tickets[1].comments[0]",
            "inline.toml:tickets[1].attachments[0]",
        ]
    );
    assert!(comment(&job.items[1]).is_internal);
    assert!(comment(&job.items[1]).text.starts_with("Internal:"));
}

/// A temp folder with files: (relative path, contents).
pub(super) fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn find<'a>(problems: &'a [Problem], needle: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.message.contains(needle))
        .unwrap_or_else(|| panic!("no problem with {needle:?} in:\n{}", describe(problems)))
}

#[test]
fn toml_unknown_keys_warn_with_line_and_suggestion() {
    let dir = fixture(&[(
        "j.toml",
        "name = \"n\"\ncolour = 1\n[settings]\nconcurency = 3\n[[tickets]]\nticket = \"TIC001000\"\n[[tickets.comments]]\ntxt = \"hi\"\ntext = \"hello\"\n",
    )]);
    let (job, problems) = load(&dir.path().join("j.toml"));
    assert!(job.is_some());
    let p = find(&problems, "`txt`");
    assert_eq!(p.severity, Severity::Warning);
    assert_eq!(p.location, "j.toml:8: tickets[0].comments[0].txt");
    assert_eq!(
        p.message,
        "unknown key `txt` (did you mean `text`?); it is ignored"
    );
    let p = find(&problems, "`concurency`");
    assert_eq!(p.location, "j.toml:4: settings.concurency");
    assert!(p.message.contains("did you mean `concurrency`"));
    assert_eq!(find(&problems, "`colour`").location, "j.toml:2: colour");
}

#[test]
fn toml_type_errors_name_line_and_column() {
    let dir = fixture(&[(
        "j.toml",
        "[[tickets]]\nticket = \"T1\"\n[[tickets.comments]]\ntext = \"x\"\nis_internal = \"yes\"\n",
    )]);
    let (job, problems) = load(&dir.path().join("j.toml"));
    assert!(job.is_none());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].location, "j.toml:5:15");
    assert!(
        problems[0].message.contains("boolean"),
        "{}",
        problems[0].message
    );
}

#[test]
fn export_kind_is_refused_and_unknown_kind_is_an_error() {
    let dir = fixture(&[
        (
            "e.toml",
            "kind = \"export\"\ntickets = \"all\"\n[export]\nfolder = \"b\"\n",
        ),
        ("u.toml", "\n\nkind = \"sync\"\n"),
    ]);
    let (job, problems) = load(&dir.path().join("e.toml"));
    assert!(job.is_none());
    assert_eq!(problems.len(), 1, "{}", describe(&problems));
    assert_eq!(problems[0].location, "e.toml:1: kind");
    assert_eq!(
        problems[0].message,
        "export jobs are run with `alga-batch backup --job`"
    );
    let (_, problems) = load(&dir.path().join("u.toml"));
    assert_eq!(problems[0].location, "u.toml:3: kind");
    assert!(problems[0].message.contains("unknown kind `sync`"));
}

#[test]
fn inline_problems_have_readable_locators() {
    let long = "x".repeat(5001);
    let text = format!(
        "name = \"t\"\n[settings]\nconcurrency = 0\nresults = \"out/r.csv\"\n\
         [[tickets]]\ncomments = [{{ text = \"a\" }}]\n\
         [[tickets]]\nticket = \"TIC001001\"\nattachments = [\"ok.txt\", \"gone.txt\"]\n\
         [[tickets.comments]]\ntext = \"{long}\"\n\
         [[tickets]]\nticket = \"TIC001002\"\n"
    );
    let dir = fixture(&[("j.toml", &text), ("ok.txt", "fine")]);
    let (job, problems) = load(&dir.path().join("j.toml"));
    assert!(job.is_none());
    let locs = |needle: &str| find(&problems, needle).location.clone();
    assert_eq!(locs("must be at least 1"), "j.toml:3: settings.concurrency");
    assert_eq!(locs("missing ticket"), "j.toml:5: tickets[0]");
    assert_eq!(
        locs("attachment not found"),
        "j.toml:9: tickets[1].attachments[1]"
    );
    assert_eq!(
        locs("5001 characters"),
        "j.toml:10: tickets[1].comments[0].text"
    );
    let p = find(&problems, "nothing to do");
    assert_eq!(
        (p.location.as_str(), p.severity),
        ("j.toml:12: tickets[2]", Severity::Warning)
    );
}

#[test]
fn warnings_alone_still_return_the_job_with_resolved_settings() {
    let dir = fixture(&[("j.toml", "[settings]\nresults = \"out/r.csv\"\nnotify = true\n[[tickets]]\nticket = \"TIC001000\"\n[[tickets.comments]]\ntext = \"a\"\n[[tickets.comments]]\ntext = \"a\"\n")]);
    let path = dir.path().join("j.toml");
    let (job, problems) = load(&path);
    let job = job.unwrap();
    assert_eq!(job.name, "j");
    assert_eq!(job.path, path);
    assert_eq!(job.settings.results, Some(dir.path().join("out/r.csv")));
    assert_eq!(job.settings.notify, Some(true));
    let p = find(&problems, "duplicate");
    assert_eq!(p.location, "j.toml:8: tickets[0].comments[1]");
    assert!(p.message.contains("j.toml:6: tickets[0].comments[0]"));
}

const EXPORT: &str = "Id,Ticket,Who,When,Private,Text,Files\n\
1,ZD-1,Ann,2024-01-02,true,\"Hello, \"\"world\"\"\nline 2\",a.txt;b.log\n\
2,ZD-2,Bob,2024-01-03,no,plain,\n\
3,ZD-9,Cy,2024-01-04,false,lost,\n\
4,ZD-1,Dee,2024-01-05,maybe,,a.txt\n";

fn source_job(extra: &str) -> String {
    format!(
        "[[sources]]\npath = \"data/export.csv\"\nticket_map = \"data/map.csv\"\nattachments_dir = \"files\"\n{extra}\
         [sources.columns]\nticket = \"Ticket\"\nbody = \"Text\"\nauthor = \"Who\"\ncreated = \"When\"\ninternal = \"Private\"\nattachments = \"Files\"\n"
    )
}

#[test]
fn sources_use_template_map_and_attachment_folder() {
    let dir = fixture(&[
        (
            "j.toml",
            &source_job("template = \"{Who} ({when}): {Text}\"\n"),
        ),
        ("data/export.csv", EXPORT),
        ("data/map.csv", "ext,alga\nZD-1,TIC001000\nZD-2,TIC001001\n"),
        ("files/a.txt", "a"),
        ("files/b.log", "bb"),
    ]);
    let (job, problems) = load(&dir.path().join("j.toml"));
    assert!(job.is_none());
    let p = find(&problems, "not in the ticket map");
    assert_eq!(p.location, "export.csv:5: column Ticket");
    assert_eq!(
        p.message,
        "external ticket `ZD-9` is not in the ticket map map.csv"
    );
    assert_eq!(
        find(&problems, "bad boolean `maybe`").location,
        "export.csv:6: column Private"
    );
    assert_eq!(problems.len(), 2, "{}", describe(&problems));

    std::fs::write(
        dir.path().join("data/export.csv"),
        EXPORT.replace(",ZD-9,", ",ZD-2,").replace("maybe", ""),
    )
    .unwrap();
    let (job, problems) = load(&dir.path().join("j.toml"));
    assert!(problems.is_empty(), "{}", describe(&problems));
    let items = job.unwrap().items;
    assert_eq!(items.len(), 6);
    let first = comment(&items[0]);
    assert_eq!(first.text, "Ann (2024-01-02): Hello, \"world\"\nline 2");
    assert!(first.is_internal);
    assert_eq!(items[0].ticket, TicketRef::Number("TIC001000".into()));
    assert_eq!(items[0].source, "export.csv:2");
    match &items[2].action {
        Action::Upload(u) => assert_eq!(
            (u.name.as_str(), u.size, u.path.clone()),
            ("b.log", 2, dir.path().join("files/b.log"))
        ),
        Action::Comment(_) => panic!("expected an upload"),
    }
    assert_eq!(items[3].source, "export.csv:4");
    assert_eq!(items[5].source, "export.csv:6");
}

#[test]
fn source_mapping_and_template_errors_are_named() {
    let job =
        source_job("template = \"{Autor}: {Text}\"\n").replace("body = \"Text\"", "body = \"Txt\"");
    let dir = fixture(&[
        ("j.toml", &job),
        ("data/export.csv", EXPORT),
        ("data/map.csv", "e,a\n"),
        ("files/x", ""),
    ]);
    let (_, problems) = load(&dir.path().join("j.toml"));
    let p = find(&problems, "column `Txt`");
    assert_eq!(p.location, "j.toml:8: sources[0].columns.body");
    assert_eq!(
        p.message,
        "column `Txt` is not in export.csv (did you mean `Text`?)"
    );

    let dir2 = fixture(&[
        ("j.toml", &source_job("template = \"{Autor}: {Text}\"\n")),
        ("data/export.csv", EXPORT),
        ("data/map.csv", "e,a\n"),
        ("files/x", ""),
    ]);
    let (_, problems) = load(&dir2.path().join("j.toml"));
    let p = find(&problems, "{Autor}");
    assert_eq!(p.location, "j.toml:5: sources[0].template");
    assert_eq!(
        p.message,
        "unknown placeholder `{Autor}`: no such column in the source"
    );
}

#[test]
fn source_without_map_default_template_and_internal_value() {
    let job = "[[sources]]\npath = \"x.csv\"\n[sources.columns]\nticket = \"t\"\nbody = \"b\"\nauthor = \"a\"\ncreated = \"d\"\ninternal = \"vis\"\ninternal_value = \"Private\"\n";
    let export = "t,a,d,vis,b\nTIC001004,Ann,Mon,private,hi\nTIC001004,Bob,Tue,public,yo\n";
    let dir = fixture(&[("j.toml", job), ("x.csv", export)]);
    let (job, problems) = load(&dir.path().join("j.toml"));
    assert!(problems.is_empty(), "{}", describe(&problems));
    let items = job.unwrap().items;
    assert_eq!(comment(&items[0]).text, "Ann wrote on Mon:\n\nhi");
    assert!(comment(&items[0]).is_internal);
    assert!(!comment(&items[1]).is_internal);
    assert_eq!(items[1].ticket, TicketRef::Number("TIC001004".into()));
}

#[test]
fn broken_export_and_map_name_their_lines() {
    let mut bytes = b"Id,Ticket,Who,When,Private,Text,Files\n1,ZD-1,Ann,d,no,ok,\n2,ZD-1,B\xe9a,d,no,bad,\n3,ZD-1,C,d,no,\"open\n".to_vec();
    bytes.extend_from_slice(b"4,ZD-1,D,d,no,x,\n");
    let dir = fixture(&[
        ("j.toml", &source_job("")),
        (
            "data/map.csv",
            "ext,alga\nZD-1,TIC001000\nZD-1,TIC001002\nZD-3,\n",
        ),
        ("files/x", ""),
    ]);
    std::fs::write(dir.path().join("data/export.csv"), bytes).unwrap();
    let (_, problems) = load(&dir.path().join("j.toml"));
    assert_eq!(
        find(&problems, "not valid UTF-8").location,
        "export.csv:3:9"
    );
    assert_eq!(find(&problems, "never closed").location, "export.csv:4");
    assert_eq!(find(&problems, "mapped twice").location, "map.csv:3");
    assert_eq!(
        find(&problems, "no alga ticket for `ZD-3`").location,
        "map.csv:4"
    );
}

#[test]
fn csv_job_attachments_are_relative_to_its_folder_and_splitting_applies() {
    let long = "word ".repeat(1500);
    let csv = format!(
        "Comment_Text,TICKET,attachments\n\"{long}\",TIC001000,files/a.txt ; files/b.txt\n"
    );
    let dir = fixture(&[
        ("sub/j.csv", &csv),
        ("sub/files/a.txt", "a"),
        ("sub/files/b.txt", "b"),
    ]);
    let path = dir.path().join("sub/j.csv");
    let (job, problems) = load(&path);
    assert!(job.is_none());
    assert_eq!(
        find(&problems, "7499 characters").location,
        "j.csv:2: column comment_text"
    );
    let opts = ValidateOptions {
        split_long_comments: true,
        ..ValidateOptions::default()
    };
    let (job, problems) = load_and_validate(&path, &opts);
    assert!(problems.is_empty(), "{}", describe(&problems));
    let items = job.unwrap().items;
    assert_eq!(counts_of(&items), (2, 2));
    assert!(comment(&items[1]).text.starts_with("(part 2/2)\n"));
    match &items[3].action {
        Action::Upload(u) => assert_eq!(u.path, dir.path().join("sub/files/b.txt")),
        Action::Comment(_) => panic!("expected an upload"),
    }
}

fn counts_of(items: &[JobItem]) -> (usize, usize) {
    let c = items
        .iter()
        .filter(|i| matches!(i.action, Action::Comment(_)))
        .count();
    (c, items.len() - c)
}

#[test]
fn non_utf8_csv_job_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.csv");
    std::fs::write(
        &path,
        b"ticket,comment_text\nTIC001000,ok\nTIC001000,caf\xe9\n",
    )
    .unwrap();
    let (job, problems) = load(&path);
    assert!(job.is_none());
    assert_eq!(problems[0].location, "j.csv:3:14");
    assert!(problems[0].message.contains("0xE9"));
}

#[test]
fn unknown_extension_and_missing_file_are_errors() {
    let dir = fixture(&[("j.txt", "x")]);
    let (_, problems) = load(&dir.path().join("j.txt"));
    assert!(problems[0].message.contains("unknown job file type `.txt`"));
    let (job, problems) = load(&dir.path().join("nope.csv"));
    assert!(job.is_none());
    assert!(problems[0].message.starts_with("cannot read"));
}

#[test]
fn toml_with_bom_and_crlf_loads() {
    let dir = fixture(&[(
        "j.toml",
        "\u{feff}name = \"b\"\r\n[[tickets]]\r\nticket = \"TIC001000\"\r\n[[tickets.comments]]\r\ntext = \"x\"\r\ncolor = 1\r\n",
    )]);
    let (job, problems) = load(&dir.path().join("j.toml"));
    assert_eq!(job.unwrap().name, "b");
    assert_eq!(
        problems[0].location,
        "j.toml:6: tickets[0].comments[0].color"
    );
}

#[test]
fn source_rows_without_ticket_and_default_attachment_folder() {
    let job = "[[sources]]\npath = \"in/x.csv\"\n[sources.columns]\nticket = \"t\"\nbody = \"b\"\nattachments = \"f\"\n";
    let export = "t,b,f\n,hi,\nTIC001004,,a.txt | b.txt\n";
    let dir = fixture(&[
        ("j.toml", job),
        ("in/x.csv", export),
        ("in/a.txt | b.txt", "x"),
    ]);
    let (job, problems) = load(&dir.path().join("j.toml"));
    assert!(job.is_none());
    assert_eq!(problems.len(), 1, "{}", describe(&problems));
    assert_eq!(problems[0].location, "x.csv:2: column t");
    assert_eq!(problems[0].message, "missing ticket");
    std::fs::write(
        dir.path().join("in/x.csv"),
        export.replace(",hi,", "TIC001004,hi,"),
    )
    .unwrap();
    let (job, problems) = load(&dir.path().join("j.toml"));
    assert!(problems.is_empty(), "{}", describe(&problems));
    let items = job.unwrap().items;
    assert_eq!(counts_of(&items), (1, 1));
    assert_eq!(items[1].source, "x.csv:3");
}

#[test]
fn ticket_map_row_without_external_id_is_an_error() {
    let dir = fixture(&[
        ("j.toml", &source_job("")),
        (
            "data/export.csv",
            "Id,Ticket,Who,When,Private,Text,Files\n1,ZD-1,A,d,no,x,\n",
        ),
        ("data/map.csv", "ext,alga\n ,TIC001000\nZD-1,TIC001001\n"),
        ("files/x", ""),
    ]);
    let (_, problems) = load(&dir.path().join("j.toml"));
    assert_eq!(
        find(&problems, "missing external ticket id").location,
        "map.csv:2"
    );
}
