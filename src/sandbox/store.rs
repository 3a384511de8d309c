//! What the sandbox holds: tickets, comments and document metadata in memory, document bytes as
//! files, and (with a data directory) an append-only journal that replays them after a restart.
//!
//! Journal: `<data>/journal.jsonl`, one upsert or delete per line. Files: `<data>/files/<file_id>`.
//! Without a data directory the files live in a temporary directory removed on shutdown.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::{Comment, Document, Ticket};

/// One journal line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Event {
    Ticket(Ticket),
    Comment(Comment),
    Document(Document),
    DocumentDeleted { document_id: Uuid },
}

/// The sandbox's data.
pub(crate) struct Store {
    tickets: Vec<Ticket>,
    ticket_index: HashMap<Uuid, usize>,
    comments: HashMap<Uuid, Vec<Comment>>,
    comment_index: HashMap<Uuid, (Uuid, usize)>,
    documents: HashMap<Uuid, Document>,
    ticket_docs: HashMap<Uuid, Vec<Uuid>>,
    files_dir: PathBuf,
    journal: Option<File>,
    ids: StdRng,
}

impl Store {
    /// An empty store whose files go to `files_dir`, journaling to `journal` if given.
    fn empty(files_dir: PathBuf, journal: Option<File>, seed: u64) -> Store {
        Store {
            tickets: Vec::new(),
            ticket_index: HashMap::new(),
            comments: HashMap::new(),
            comment_index: HashMap::new(),
            documents: HashMap::new(),
            ticket_docs: HashMap::new(),
            files_dir,
            journal,
            ids: StdRng::seed_from_u64(seed ^ 0x0001_d50f_5eed),
        }
    }

    /// Opens a store in memory (files in `files_dir`) or from `data_dir` (replaying its journal).
    /// Returns the store and whether it already held data (then no seeding is needed).
    pub(crate) fn open(
        data_dir: Option<&Path>,
        files_dir: PathBuf,
        seed: u64,
    ) -> std::io::Result<(Store, bool)> {
        std::fs::create_dir_all(&files_dir)?;
        let Some(dir) = data_dir else {
            return Ok((Store::empty(files_dir, None, seed), false));
        };
        let path = dir.join("journal.jsonl");
        let mut events = Vec::new();
        if path.exists() {
            for line in BufReader::new(File::open(&path)?).lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let event: Event = serde_json::from_str(&line).map_err(|e| {
                    std::io::Error::other(format!("corrupt journal {}: {e}", path.display()))
                })?;
                events.push(event);
            }
        }
        let journal = OpenOptions::new().create(true).append(true).open(&path)?;
        // Ids of new records must not repeat those of an earlier run with the same seed.
        let mut store = Store::empty(files_dir, None, seed.wrapping_add(events.len() as u64));
        let had_data = !events.is_empty();
        for event in events {
            store.apply(event);
        }
        store.journal = Some(journal);
        Ok((store, had_data))
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Ticket(t) => self.put_ticket(t),
            Event::Comment(c) => self.put_comment(c),
            Event::Document(d) => self.put_document(d),
            Event::DocumentDeleted { document_id } => {
                self.remove_document(document_id);
            }
        }
    }

    fn record(&mut self, event: &Event) {
        if let Some(file) = self.journal.as_mut() {
            let mut line = serde_json::to_vec(event).unwrap_or_default();
            line.push(b'\n');
            if let Err(e) = file.write_all(&line) {
                eprintln!("sandbox: cannot write journal: {e}");
            }
        }
    }

    /// A new random (seeded) v4 UUID.
    pub(crate) fn new_id(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.ids.gen()).into_uuid()
    }

    /// Where the bytes of the file `file_id` live.
    pub(crate) fn file_path(&self, file_id: Uuid) -> PathBuf {
        self.files_dir.join(file_id.simple().to_string())
    }

    /// The directory of document files.
    pub(crate) fn files_dir(&self) -> &Path {
        &self.files_dir
    }

    fn put_ticket(&mut self, t: Ticket) {
        match self.ticket_index.get(&t.ticket_id) {
            Some(&i) => self.tickets[i] = t,
            None => {
                self.ticket_index.insert(t.ticket_id, self.tickets.len());
                self.tickets.push(t);
            }
        }
    }

    fn put_comment(&mut self, c: Comment) {
        let list = self.comments.entry(c.ticket_id).or_default();
        match self.comment_index.get(&c.comment_id) {
            Some(&(_, i)) => list[i] = c,
            None => {
                self.comment_index
                    .insert(c.comment_id, (c.ticket_id, list.len()));
                list.push(c);
            }
        }
    }

    fn put_document(&mut self, d: Document) {
        let docs = self.ticket_docs.entry(d.ticket_id).or_default();
        if !docs.contains(&d.document_id) {
            docs.push(d.document_id);
        }
        self.documents.insert(d.document_id, d);
    }

    fn remove_document(&mut self, id: Uuid) -> Option<Document> {
        let d = self.documents.remove(&id)?;
        if let Some(docs) = self.ticket_docs.get_mut(&d.ticket_id) {
            docs.retain(|x| *x != id);
        }
        Some(d)
    }

    /// Inserts or replaces a ticket.
    pub(crate) fn save_ticket(&mut self, t: Ticket) {
        let event = Event::Ticket(t);
        self.record(&event);
        self.apply(event);
    }

    /// Inserts a comment (or replaces it, for edits).
    pub(crate) fn save_comment(&mut self, c: Comment) {
        let event = Event::Comment(c);
        self.record(&event);
        self.apply(event);
    }

    /// Inserts a document.
    pub(crate) fn save_document(&mut self, d: Document) {
        let event = Event::Document(d);
        self.record(&event);
        self.apply(event);
    }

    /// Removes the document's association; the stored file stays (as on the real server).
    pub(crate) fn delete_document(&mut self, id: Uuid) -> Option<Document> {
        let d = self.remove_document(id)?;
        self.record(&Event::DocumentDeleted { document_id: id });
        Some(d)
    }

    /// All tickets in insertion order.
    pub(crate) fn tickets(&self) -> &[Ticket] {
        &self.tickets
    }

    /// One ticket.
    pub(crate) fn ticket(&self, id: Uuid) -> Option<&Ticket> {
        self.ticket_index.get(&id).map(|&i| &self.tickets[i])
    }

    /// Sets a ticket's `updated_at`/`updated_by` (a comment was posted).
    pub(crate) fn touch_ticket(&mut self, id: Uuid, at: DateTime<Utc>, by: Uuid) {
        if let Some(mut t) = self.ticket(id).cloned() {
            t.updated_at = at;
            t.updated_by = Some(by);
            self.save_ticket(t);
        }
    }

    /// A ticket's comments in insertion (creation) order.
    pub(crate) fn comments(&self, ticket: Uuid) -> &[Comment] {
        self.comments.get(&ticket).map_or(&[], Vec::as_slice)
    }

    /// One comment.
    pub(crate) fn comment(&self, id: Uuid) -> Option<&Comment> {
        let (ticket, i) = self.comment_index.get(&id)?;
        self.comments.get(ticket).and_then(|l| l.get(*i))
    }

    /// A ticket's documents, newest first.
    pub(crate) fn documents(&self, ticket: Uuid) -> Vec<&Document> {
        let mut docs: Vec<&Document> = self
            .ticket_docs
            .get(&ticket)
            .map(|ids| ids.iter().filter_map(|id| self.documents.get(id)).collect())
            .unwrap_or_default();
        docs.reverse();
        docs.sort_by_key(|d| std::cmp::Reverse(d.updated_at));
        docs
    }

    /// One document.
    pub(crate) fn document(&self, id: Uuid) -> Option<&Document> {
        self.documents.get(&id)
    }
}
