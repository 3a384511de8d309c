//! Deterministic seed data: tickets `TIC001000`, `TIC001001`, ... with a mix of open and closed,
//! some with comments and documents, and one user per API key.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::model::{Comment, Document, Ticket};
use super::store::Store;

/// A user behind an API key.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) key: String,
    pub(crate) user_id: Uuid,
    pub(crate) name: String,
    pub(crate) readonly: bool,
}

/// A UUID (v4 layout) derived from a seed and a label, stable across runs.
pub(crate) fn derived_id(seed: u64, label: &str) -> Uuid {
    let mut h = Sha256::new();
    h.update(seed.to_be_bytes());
    h.update(label.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// One user per key, read-write keys first; labels are `key1`, `key2`, ...
pub(crate) fn users(seed: u64, keys: &[String], readonly: &[String]) -> Vec<User> {
    let all = keys
        .iter()
        .map(|k| (k, false))
        .chain(readonly.iter().map(|k| (k, true)));
    all.enumerate()
        .map(|(i, (key, ro))| User {
            key: key.clone(),
            user_id: derived_id(seed, &format!("user:{key}")),
            name: if i == 0 {
                "Sandbox User".to_string()
            } else {
                format!("Sandbox User {}", i + 1)
            },
            readonly: ro,
        })
        .collect()
}

const TITLES: &[&str] = &[
    "Printer on floor 2 jams every morning",
    "VPN disconnects after ten minutes",
    "New laptop for the accounting team",
    "Email signature shows the old logo",
    "Shared drive permissions for interns",
    "Server room temperature alarm",
    "Password reset loop on the portal",
    "Slow Wi-Fi in meeting room B",
];
const CLIENTS: &[&str] = &["Acme Corp", "Globex", "Initech", "Umbrella Health"];

/// The fixed clock the seed data is dated from.
fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Builds the `i`-th seeded ticket (numbers start at `TIC001000`; every fourth one is closed).
fn ticket(seed: u64, i: usize, admin: Uuid) -> Ticket {
    let entered_at = base_time() + Duration::hours(i as i64);
    let closed = i % 4 == 3;
    let client = CLIENTS[i % CLIENTS.len()];
    Ticket {
        ticket_id: derived_id(seed, &format!("ticket:{i}")),
        ticket_number: format!("TIC{:06}", 1000 + i),
        title: TITLES[i % TITLES.len()].to_string(),
        is_closed: closed,
        entered_at,
        updated_at: entered_at + Duration::minutes(5),
        updated_by: None,
        closed_at: closed.then(|| entered_at + Duration::days(1)),
        status_id: derived_id(
            seed,
            if closed {
                "status:closed"
            } else {
                "status:open"
            },
        ),
        status_name: if closed { "Closed" } else { "New" }.to_string(),
        client_id: derived_id(seed, &format!("client:{client}")),
        client_name: client.to_string(),
        board_id: derived_id(seed, "board"),
        priority_id: derived_id(seed, "priority"),
        entered_by: admin,
        assigned_to: i.is_multiple_of(2).then_some(admin),
    }
}

/// Fills an empty store: `n` tickets, two comments on every third, a document on every fifth.
pub(crate) fn seed(store: &mut Store, seed: u64, n: usize) -> std::io::Result<()> {
    let admin = derived_id(seed, "user:seed-admin");
    for i in 0..n {
        let t = ticket(seed, i, admin);
        let (id, at) = (t.ticket_id, t.entered_at);
        store.save_ticket(t);
        if i.is_multiple_of(3) {
            for (k, text) in [
                "Initial report received from the client.",
                "Looking into it.",
            ]
            .iter()
            .enumerate()
            {
                let created = at + Duration::minutes(k as i64 + 1);
                store.save_comment(Comment {
                    comment_id: derived_id(seed, &format!("comment:{i}:{k}")),
                    ticket_id: id,
                    user_id: admin,
                    author_name: "Sandbox Admin".into(),
                    note: (*text).to_string(),
                    is_internal: k == 1,
                    is_resolution: false,
                    created_at: created,
                    updated_at: created,
                    metadata: None,
                    thread_id: derived_id(seed, &format!("thread:{i}:{k}")),
                    parent_comment_id: None,
                });
            }
        }
        if i.is_multiple_of(5) {
            let file_id = derived_id(seed, &format!("file:{i}"));
            let body = format!("diagnostic log for ticket TIC{:06}\n", 1000 + i);
            std::fs::write(store.file_path(file_id), body.as_bytes())?;
            store.save_document(Document {
                document_id: derived_id(seed, &format!("document:{i}")),
                ticket_id: id,
                document_name: format!("diagnostics-{i}.log"),
                mime_type: "text/plain".into(),
                file_size: body.len() as u64,
                user_id: admin,
                author_name: "Sandbox Admin".into(),
                file_id,
                association_id: derived_id(seed, &format!("association:{i}")),
                updated_at: at + Duration::minutes(3),
            });
        }
    }
    Ok(())
}
