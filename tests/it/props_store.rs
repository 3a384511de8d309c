//! Property tests of the backup layout's names and of the manifest reader (issue 14).

use alga_batch::store::layout::names::sanitize;
use alga_batch::store::manifest;
use proptest::prelude::*;
use std::path::{Component, Path};
use uuid::Uuid;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn a_sanitised_name_stays_inside_dir_and_is_idempotent(
        raw in prop_oneof![
            "(?s).{0,300}",
            "(\\.\\.|/|\\\\|%2[eEfF]|%5[cC]|%00|[a-z]|\\.|CON|nul|\u{202e}|\u{1b}|:|\\*){0,40}",
        ],
    ) {
        let id = Uuid::from_u128(7);
        let name = sanitize(&raw, id);
        prop_assert!(!name.is_empty());
        let dir = Path::new("/backups/alga");
        let joined = dir.join(&name);
        let comps: Vec<Component> = Path::new(&name).components().collect();
        prop_assert_eq!(comps.len(), 1, "one component: {:?}", name);
        prop_assert!(matches!(comps[0], Component::Normal(_)), "{:?}", name);
        prop_assert!(joined.starts_with(dir) && joined.parent() == Some(dir));
        prop_assert!(!name.contains(['/', '\\', '\0']), "{:?}", name);
        prop_assert!(name.len() <= 255, "{}", name.len());
        // Percent-decoding is the one step that cannot be idempotent ("%2541" -> "%41" ->
        // "A"), and the backup decodes a server's name once: every other step is.
        if !name.contains('%') {
            prop_assert_eq!(sanitize(&name, id), name.clone(), "idempotent");
        }
    }

    #[test]
    fn reading_a_manifest_of_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        text in "(?s).{0,600}",
    ) {
        let header = "ticket_id,ticket_number,document_id,document_name,path,bytes,sha256,mime_type,downloaded_at\n";
        for contents in [bytes.clone(), text.into_bytes(), [header.as_bytes(), &bytes].concat()] {
            if let Ok(entries) = manifest::parse(&contents, "manifest.csv") {
                for e in entries.values() {
                    let p = Path::new(&e.path);
                    prop_assert!(p.components().all(|c| matches!(c, Component::Normal(_))), "{:?}", e.path);
                }
            }
        }
    }
}
