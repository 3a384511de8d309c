//! Stored records (tickets, comments, documents) and their JSON shapes as the real server sends them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// Timestamps as the real server writes them: ISO-8601 UTC with milliseconds and `Z`.
pub(crate) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn opt_ts(t: &Option<DateTime<Utc>>) -> Value {
    t.as_ref().map_or(Value::Null, |t| Value::String(ts(t)))
}

/// A ticket as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ticket {
    pub(crate) ticket_id: Uuid,
    pub(crate) ticket_number: String,
    pub(crate) title: String,
    pub(crate) is_closed: bool,
    pub(crate) entered_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) updated_by: Option<Uuid>,
    pub(crate) closed_at: Option<DateTime<Utc>>,
    pub(crate) status_id: Uuid,
    pub(crate) status_name: String,
    pub(crate) client_id: Uuid,
    pub(crate) client_name: String,
    pub(crate) board_id: Uuid,
    pub(crate) priority_id: Uuid,
    pub(crate) entered_by: Uuid,
    pub(crate) assigned_to: Option<Uuid>,
}

/// Names of the ticket list `fields` allow-list (without the `mobile_list` macro).
pub(crate) const LIST_FIELDS: &[&str] = &[
    "ticket_id",
    "ticket_number",
    "title",
    "status_id",
    "status_name",
    "status_is_closed",
    "priority_name",
    "assigned_to_name",
    "client_name",
    "contact_name",
    "updated_at",
    "entered_at",
    "closed_at",
    "tags",
];

/// Columns always present when `fields` is used.
const ALWAYS_FIELDS: &[&str] = &[
    "ticket_id",
    "status_id",
    "entered_by",
    "assigned_to",
    "client_id",
    "board_id",
    "assigned_team_id",
];

impl Ticket {
    /// The full row of the list endpoint: every column plus the joined names.
    pub(crate) fn row(&self, tenant: Uuid) -> Map<String, Value> {
        let v = json!({
            "tenant": tenant, "ticket_id": self.ticket_id, "ticket_number": self.ticket_number,
            "title": self.title, "url": null, "contact_name_id": null, "status_id": self.status_id,
            "category_id": null, "subcategory_id": null, "priority_id": self.priority_id,
            "severity_id": null, "urgency_id": null, "impact_id": null,
            "entered_by": self.entered_by, "updated_by": self.updated_by,
            "assigned_to": self.assigned_to, "closed_by": if self.is_closed { Some(self.entered_by) } else { None },
            "entered_at": ts(&self.entered_at), "updated_at": ts(&self.updated_at),
            "closed_at": opt_ts(&self.closed_at), "is_closed": self.is_closed, "attributes": null,
            "due_date": null, "location_id": null, "email_metadata": null, "itil_impact": null,
            "itil_urgency": null, "itil_priority_level": null, "escalated": false,
            "escalation_level": null, "escalated_at": null, "escalated_by": null,
            "board_id": self.board_id, "client_id": self.client_id, "response_state": null,
            "master_ticket_id": null, "source": null, "ticket_origin": "internal",
        });
        let extra = json!({
            "sla_policy_id": null, "sla_started_at": null, "sla_response_due_at": null,
            "sla_response_at": null, "sla_response_met": null, "sla_resolution_due_at": null,
            "sla_resolution_at": null, "sla_resolution_met": null, "sla_paused_at": null,
            "sla_total_pause_minutes": 0, "assigned_team_id": null, "billing_profile_id": null,
            "client_name": self.client_name, "contact_name": null, "status_name": self.status_name,
            "status_is_closed": self.is_closed, "priority_name": "Medium",
            "category_name": null, "subcategory_name": null, "board_name": "General Support",
            "entered_by_name": "Sandbox Admin",
            "assigned_to_name": if self.assigned_to.is_some() { Some("Sandbox Admin") } else { None },
        });
        let mut out = match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Value::Object(m) = extra {
            out.extend(m);
        }
        out
    }

    /// The list row restricted to `fields` (already validated against the allow-list).
    pub(crate) fn row_with_fields(&self, tenant: Uuid, fields: &[String]) -> Map<String, Value> {
        let full = self.row(tenant);
        let mut out = Map::new();
        for name in ALWAYS_FIELDS
            .iter()
            .copied()
            .chain(fields.iter().map(String::as_str))
        {
            let value = if name == "tags" {
                Value::Array(Vec::new())
            } else {
                full.get(name).cloned().unwrap_or(Value::Null)
            };
            out.insert(name.to_string(), value);
        }
        out
    }
}

/// A comment as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Comment {
    pub(crate) comment_id: Uuid,
    pub(crate) ticket_id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) author_name: String,
    pub(crate) note: String,
    pub(crate) is_internal: bool,
    pub(crate) is_resolution: bool,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) metadata: Option<Value>,
    pub(crate) thread_id: Uuid,
    pub(crate) parent_comment_id: Option<Uuid>,
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 7);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

impl Comment {
    /// The object returned by POST (the inserted row plus the derived fields).
    pub(crate) fn created_json(&self, tenant: Uuid) -> Value {
        json!({
            "tenant": tenant, "comment_id": self.comment_id, "ticket_id": self.ticket_id,
            "user_id": self.user_id, "note": self.note, "is_internal": self.is_internal,
            "is_resolution": self.is_resolution, "created_at": ts(&self.created_at),
            "updated_at": ts(&self.updated_at), "author_type": "unknown", "markdown_content": null,
            "metadata": self.metadata, "is_system_generated": false, "contact_id": null,
            "thread_id": self.thread_id, "parent_comment_id": self.parent_comment_id,
            "deleted_at": null, "publish_state": "published", "scheduled_publish_at": null,
            "scheduled_publish_tz": null, "published_at": null, "schedule_job_id": null,
            "scheduled_publish_event_id": null, "scheduled_publish_dispatched_at": null,
            "scheduled_response_event_id": null, "scheduled_previous_response_state": null,
            "scheduled_response_dispatched_at": null, "comment_text": self.note,
            "comment_html": format!("<p>{}</p>", html_escape(&self.note)),
            "created_by": self.user_id, "author_contact_id": null,
            "author_contact_name": null, "author_contact_email": null,
        })
    }

    /// The object of the list endpoint with `content_format=full`.
    pub(crate) fn listed_json(&self, tenant: Uuid) -> Value {
        let mut v = self.created_json(tenant);
        if let Value::Object(m) = &mut v {
            m.insert(
                "created_by_name".into(),
                Value::String(self.author_name.clone()),
            );
            m.insert("created_by_avatar_url".into(), Value::Null);
            m.insert("reactions".into(), Value::Array(Vec::new()));
            m.insert("reaction_user_names".into(), Value::Object(Map::new()));
        }
        v
    }

    /// The compact object of the list endpoint with `content_format=markdown`.
    pub(crate) fn markdown_json(&self) -> Value {
        json!({
            "comment_id": self.comment_id, "ticket_id": self.ticket_id, "markdown_content": null,
            "author_type": "unknown", "is_internal": self.is_internal,
            "is_resolution": self.is_resolution, "created_at": ts(&self.created_at),
            "updated_at": ts(&self.updated_at), "created_by": self.user_id,
            "created_by_name": self.author_name, "author_contact_id": null,
            "author_contact_name": null, "thread_id": self.thread_id,
            "parent_comment_id": self.parent_comment_id, "deleted_at": null,
        })
    }
}

/// A document attached to a ticket, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Document {
    pub(crate) document_id: Uuid,
    pub(crate) ticket_id: Uuid,
    pub(crate) document_name: String,
    pub(crate) mime_type: String,
    pub(crate) file_size: u64,
    pub(crate) user_id: Uuid,
    pub(crate) author_name: String,
    pub(crate) file_id: Uuid,
    pub(crate) association_id: Uuid,
    pub(crate) updated_at: DateTime<Utc>,
}

impl Document {
    /// The object returned by an upload.
    pub(crate) fn created_json(&self, tenant: Uuid) -> Value {
        let ext = self
            .document_name
            .rsplit_once('.')
            .map(|(_, e)| format!(".{e}"))
            .unwrap_or_default();
        json!({
            "tenant": tenant, "document_id": self.document_id,
            "document_name": self.document_name, "type_id": null, "user_id": self.user_id,
            "order_number": 0, "created_by": self.user_id, "edited_by": null, "entered_at": null,
            "updated_at": ts(&self.updated_at), "content": null, "file_id": self.file_id,
            "storage_bucket_id": null,
            "storage_path": format!("/{tenant}/{}{ext}", self.file_id.simple()),
            "mime_type": self.mime_type, "file_size": self.file_size.to_string(),
            "shared_type_id": null, "folder_path": null,
            "thumbnail_file_id": null, "preview_file_id": null, "preview_generated_at": null,
            "is_client_visible": false, "source_template_id": null,
            "source_template_version": null, "rendered_locale": null,
            "created_by_full_name": self.author_name, "type_name": self.mime_type,
            "type_icon": "📄",
        })
    }

    /// The object of the documents list (adds the association fields).
    pub(crate) fn listed_json(&self, tenant: Uuid) -> Value {
        let mut v = self.created_json(tenant);
        if let Value::Object(m) = &mut v {
            m.insert("association_id".into(), json!(self.association_id));
            m.insert("association_created_at".into(), json!(ts(&self.updated_at)));
        }
        v
    }
}
