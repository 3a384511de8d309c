//! Wire types of the Alga PSA ticket API, as the real server sends them (quirks included).

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// `{"data": ...}`, the success envelope.
#[derive(Debug, Deserialize)]
pub struct DataEnvelope<T> {
    /// The payload.
    pub data: T,
}

/// The pagination object of `GET /api/v1/tickets`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// 1-based page.
    pub page: u64,
    /// Page size.
    pub limit: u64,
    /// Total rows.
    pub total: u64,
    /// `ceil(total/limit)`.
    pub total_pages: u64,
    /// `page < totalPages`.
    pub has_next: bool,
    /// `page > 1`.
    pub has_prev: bool,
}

/// One page of the ticket list.
#[derive(Debug, Deserialize)]
pub struct TicketPage {
    /// Rows.
    pub data: Vec<Ticket>,
    /// Paging.
    pub pagination: Pagination,
}

/// A ticket row (only the fields this tool uses; the rest is kept in `extra`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Ticket {
    /// UUID.
    pub ticket_id: Uuid,
    /// Human number such as `TIC001000` (opaque, tenant-unique).
    #[serde(default)]
    pub ticket_number: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Last update (ISO, UTC).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Whether the status is a closed one.
    #[serde(default)]
    pub status_is_closed: Option<bool>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A comment, as listed or created.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Comment {
    /// UUID.
    pub comment_id: Uuid,
    /// Owning ticket.
    pub ticket_id: Uuid,
    /// Text (same as `note`).
    #[serde(default)]
    pub comment_text: Option<String>,
    /// Internal (not visible to the customer).
    #[serde(default)]
    pub is_internal: bool,
    /// Marked as resolution.
    #[serde(default)]
    pub is_resolution: bool,
    /// Creation time (ISO, UTC).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Author user id.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Stored `metadata` object (this tool puts its op key here).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Comment {
    /// The op key this tool stored in `metadata.alga_batch_op`, if any.
    pub fn op_key(&self) -> Option<&str> {
        self.metadata
            .as_ref()?
            .get(crate::api::METADATA_OP_KEY)?
            .as_str()
    }
}

/// Body of `POST /api/v1/tickets/{id}/comments`.
#[derive(Debug, Clone, Serialize)]
pub struct NewComment {
    /// Text, 1..5000 visible characters.
    pub comment_text: String,
    /// Internal note.
    pub is_internal: bool,
    /// Resolution flag.
    pub is_resolution: bool,
    /// Suppress customer notifications (default true for imports).
    #[serde(rename = "suppressContactNotifications")]
    pub suppress_contact_notifications: bool,
    /// Stored and returned by the server; carries the op key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// A document attached to a ticket.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Document {
    /// UUID.
    pub document_id: Uuid,
    /// Name as uploaded (untrusted: may hold `/`, `..`, control characters).
    #[serde(default)]
    pub document_name: String,
    /// MIME type from the upload part.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Size in bytes. The real server sends a string of digits; a number is accepted too.
    #[serde(default, deserialize_with = "de_file_size")]
    pub file_size: Option<u64>,
    /// Last update.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Accepts `"33"`, `33` or `null` for `file_size`.
fn de_file_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("bad file_size {n}"))),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("bad file_size {s:?}"))),
        Some(other) => Err(serde::de::Error::custom(format!("bad file_size {other}"))),
    }
}

/// Query of `GET /api/v1/tickets`.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    /// 1-based page.
    pub page: u64,
    /// 1..=100.
    pub limit: u64,
    /// Sort column (`ticket_number` is the stable one).
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
    /// Comma list of fields.
    pub fields: Option<String>,
    /// Case-insensitive SUBSTRING filter: match exactly yourself.
    pub ticket_number: Option<String>,
    /// UTC `...Z` timestamp.
    pub updated_from: Option<String>,
    /// Only open tickets.
    pub is_open: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_size_is_a_string_of_digits_on_the_real_server() {
        let d: Document = serde_json::from_str(
            r#"{"document_id":"07c08eec-6506-4414-84c0-86714e902383","document_name":"a.txt","file_size":"33"}"#,
        )
        .unwrap();
        assert_eq!(d.file_size, Some(33));
        let d: Document = serde_json::from_str(
            r#"{"document_id":"07c08eec-6506-4414-84c0-86714e902383","document_name":"a.txt","file_size":7}"#,
        )
        .unwrap();
        assert_eq!(d.file_size, Some(7));
    }

    #[test]
    fn comment_op_key_comes_from_metadata() {
        let c: Comment = serde_json::from_str(
            r#"{"comment_id":"07c08eec-6506-4414-84c0-86714e902383","ticket_id":"07c08eec-6506-4414-84c0-86714e902384","metadata":{"alga_batch_op":"k1"}}"#,
        )
        .unwrap();
        assert_eq!(c.op_key(), Some("k1"));
    }
}
