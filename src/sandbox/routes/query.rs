//! Query-string validation shaped like the server's zod schemas: each failure becomes one issue
//! `{code, message, path, ...}` and all issues are reported together.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// Collected query values and issues.
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
    pub(crate) issues: Vec<Value>,
}

impl Params {
    /// Wraps decoded query pairs.
    pub(crate) fn new(pairs: Vec<(String, String)>) -> Params {
        Params {
            pairs,
            issues: Vec::new(),
        }
    }

    /// The first value of `name`.
    pub(crate) fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A string value (any text).
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.raw(name).map(str::to_string)
    }

    /// An integer with `parseInt` semantics, within `min..=max`.
    pub(crate) fn int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let raw = self.raw(name)?.to_string();
        let Some(n) = parse_int(&raw) else {
            self.issues
                .push(json!({"code": "invalid_type", "expected": "number",
                "received": "nan", "path": [name], "message": "Expected number, received nan"}));
            return None;
        };
        if n < min {
            self.issues.push(
                json!({"code": "too_small", "minimum": min, "type": "number",
                "inclusive": true, "exact": false, "path": [name],
                "message": format!("Number must be greater than or equal to {min}")}),
            );
            return None;
        }
        if n > max {
            self.issues
                .push(json!({"code": "too_big", "maximum": max, "type": "number",
                "inclusive": true, "exact": false, "path": [name],
                "message": format!("Number must be less than or equal to {max}")}));
            return None;
        }
        Some(n)
    }

    /// `true`/`false` exactly; anything else is `Invalid boolean value`.
    pub(crate) fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.raw(name)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.issues.push(
                    json!({"code": "custom", "message": "Invalid boolean value", "path": [name]}),
                );
                None
            }
        }
    }

    /// One of `options`.
    pub(crate) fn choice(&mut self, name: &str, options: &[&str]) -> Option<String> {
        let raw = self.raw(name)?.to_string();
        if options.contains(&raw.as_str()) {
            return Some(raw);
        }
        let expected = options
            .iter()
            .map(|o| format!("'{o}'"))
            .collect::<Vec<_>>()
            .join(" | ");
        self.issues
            .push(json!({"received": raw, "code": "invalid_enum_value",
            "options": options, "path": [name],
            "message": format!("Invalid enum value. Expected {expected}, received '{raw}'")}));
        None
    }

    /// A UTC `Z` datetime (zod `string().datetime()`).
    pub(crate) fn datetime(&mut self, name: &str) -> Option<DateTime<Utc>> {
        let raw = self.raw(name)?.to_string();
        match parse_utc_z(&raw) {
            Some(t) => Some(t),
            None => {
                self.issues
                    .push(json!({"code": "invalid_string", "validation": "datetime",
                    "message": "Invalid datetime", "path": [name]}));
                None
            }
        }
    }

    /// A UUID (zod `uuid()`).
    pub(crate) fn uuid(&mut self, name: &str) -> Option<Uuid> {
        let raw = self.raw(name)?.to_string();
        self.uuid_value(name, &raw)
    }

    fn uuid_value(&mut self, name: &str, raw: &str) -> Option<Uuid> {
        match super::is_uuid_text(raw)
            .then(|| Uuid::parse_str(raw).ok())
            .flatten()
        {
            Some(u) => Some(u),
            None => {
                self.issues
                    .push(json!({"validation": "uuid", "code": "invalid_string",
                    "message": "Invalid uuid", "path": [name]}));
                None
            }
        }
    }

    /// A list given as a JSON array string or a comma-separated list.
    pub(crate) fn list(&self, name: &str) -> Option<Vec<String>> {
        let raw = self.raw(name)?;
        if raw.trim_start().starts_with('[') {
            if let Ok(v) = serde_json::from_str::<Vec<String>>(raw) {
                return Some(v);
            }
        }
        Some(
            raw.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    /// A list of UUIDs.
    pub(crate) fn uuid_list(&mut self, name: &str) -> Option<Vec<Uuid>> {
        let items = self.list(name)?;
        let mut out = Vec::new();
        for item in items {
            out.push(self.uuid_value(name, &item)?);
        }
        Some(out)
    }
}

/// JavaScript `parseInt`: optional sign, leading digits, the rest ignored.
fn parse_int(raw: &str) -> Option<i64> {
    let s = raw.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let n: i64 = digits[..end].parse().ok()?;
    Some(if neg { -n } else { n })
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` only.
pub(crate) fn parse_utc_z(raw: &str) -> Option<DateTime<Utc>> {
    let b = raw.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let head_ok = shape.iter().zip(b).all(|(s, c)| match s {
        b'd' => c.is_ascii_digit(),
        _ => s == c,
    });
    let frac = &b[19..b.len() - 1];
    let frac_ok = frac.is_empty()
        || (frac.len() > 1 && frac[0] == b'.' && frac[1..].iter().all(u8::is_ascii_digit));
    if !head_ok || !frac_ok {
        return None;
    }
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// SQL `ILIKE '%needle%'` with `%` and `_` as wildcards (not escaped, as on the server).
pub(crate) fn ilike_contains(hay: &str, needle: &str) -> bool {
    let h: Vec<char> = hay.to_lowercase().chars().collect();
    let mut p: Vec<char> = vec!['%'];
    p.extend(needle.to_lowercase().chars());
    p.push('%');
    like(&h, &p)
}

/// Iterative LIKE matcher with backtracking on the last `%`.
fn like(h: &[char], p: &[char]) -> bool {
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < h.len() {
        if j < p.len() && (p[j] == '_' || (p[j] != '%' && p[j] == h[i])) {
            i += 1;
            j += 1;
        } else if j < p.len() && p[j] == '%' {
            star = Some((j, i));
            j += 1;
        } else if let Some((sj, si)) = star {
            j = sj + 1;
            i = si + 1;
            star = Some((sj, si + 1));
        } else {
            return false;
        }
    }
    p[j..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ilike_is_case_insensitive_substring_with_underscore_wildcard() {
        assert!(ilike_contains("TIC001000", "tic001"));
        assert!(ilike_contains("TIC0010001", "TIC001000"));
        assert!(ilike_contains("TIC001000", "TIC_01"));
        assert!(!ilike_contains("TIC001000", "TIC002"));
        assert!(ilike_contains("anything", ""));
    }

    #[test]
    fn datetimes_must_be_utc_z() {
        assert!(parse_utc_z("2026-01-05T09:00:00Z").is_some());
        assert!(parse_utc_z("2026-01-05T09:00:00.123Z").is_some());
        assert!(parse_utc_z("2026-01-05T09:00:00+02:00").is_none());
        assert!(parse_utc_z("2026-01-05").is_none());
        assert!(parse_utc_z("2026-01-05T09:00:00").is_none());
    }

    #[test]
    fn parse_int_follows_javascript() {
        assert_eq!(parse_int("2.7"), Some(2));
        assert_eq!(parse_int("abc"), None);
        assert_eq!(parse_int("-3"), Some(-3));
    }
}
