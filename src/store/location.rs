//! Where a backup lives, as users write it: a folder (`/var/backups/alga`) or an
//! S3-compatible bucket and prefix (`s3://bucket/prefix`), and opening the store behind it.

use super::{BackupStore, FolderStore, S3Store, StoreError};
use std::path::PathBuf;

/// A backup location. Read from a job file as a string (see [`Location::from_path`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "PathBuf")]
pub enum Location {
    /// A local folder.
    Folder(PathBuf),
    /// A bucket of S3-compatible object storage, and a key prefix inside it (no leading or
    /// trailing `/`; may be empty).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Prefix of every key.
        prefix: String,
    },
}

impl Location {
    /// Read a location: `s3://BUCKET[/PREFIX]` (scheme in any case), else a folder path.
    pub fn parse(raw: &str) -> Result<Location, StoreError> {
        let Some(rest) = strip_scheme(raw.trim(), "s3://") else {
            return Ok(Location::Folder(PathBuf::from(raw)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::Other(format!(
                "{raw:?} names no bucket: write s3://BUCKET/PREFIX"
            )));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(StoreError::Other(format!(
                "{raw:?}: a prefix may not hold empty, `.` or `..` parts"
            )));
        }
        Ok(Location::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// A location given as a path (`--out`, `out =`): `s3://...` when it reads as one, else
    /// the folder (a path that is not UTF-8 is always a folder).
    pub fn from_path(path: PathBuf) -> Result<Location, StoreError> {
        match path.to_str() {
            Some(s) => Location::parse(s),
            None => Ok(Location::Folder(path)),
        }
    }

    /// `s3://bucket/prefix` or the folder path, for messages and metric labels.
    pub fn describe(&self) -> String {
        match self {
            Location::Folder(p) => p.display().to_string(),
            Location::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }

    /// A folder location relative to `base` (job files name folders relative to themselves);
    /// other locations are left alone.
    pub fn relative_to(self, base: &std::path::Path) -> Location {
        match self {
            Location::Folder(p) if p.is_relative() => Location::Folder(base.join(p)),
            other => other,
        }
    }
}

impl TryFrom<PathBuf> for Location {
    type Error = StoreError;

    fn try_from(path: PathBuf) -> Result<Location, StoreError> {
        Location::from_path(path)
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// `rest` after `scheme`, compared ignoring ASCII case.
fn strip_scheme<'a>(s: &'a str, scheme: &str) -> Option<&'a str> {
    let head = s.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &s[scheme.len()..])
}

/// Open the store at `location`. `direct_io` applies to folders (see `folder/disk.rs`).
pub async fn open(
    location: &Location,
    direct_io: bool,
) -> Result<Box<dyn BackupStore>, StoreError> {
    match location {
        Location::Folder(p) => Ok(Box::new(FolderStore::new(p.clone(), direct_io))),
        Location::S3 { bucket, prefix } => Ok(Box::new(S3Store::from_env(bucket, prefix)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_buckets_are_told_apart() {
        assert_eq!(
            Location::parse("backups/alga").unwrap(),
            Location::Folder("backups/alga".into())
        );
        assert_eq!(
            Location::parse("S3://bkt/nightly/alga/").unwrap(),
            Location::S3 {
                bucket: "bkt".into(),
                prefix: "nightly/alga".into()
            }
        );
        let root = Location::parse("s3://bkt").unwrap();
        assert_eq!(root.describe(), "s3://bkt");
        assert!(Location::parse("s3://").is_err());
        assert!(Location::parse("s3:///x").is_err());
        assert!(Location::parse("s3://b/a/../x").is_err());
        assert!(Location::parse("s3://b/a//x").is_err());
        let base = std::path::Path::new("/etc/alga");
        assert_eq!(
            Location::parse("out").unwrap().relative_to(base),
            Location::Folder("/etc/alga/out".into())
        );
        assert_eq!(
            Location::parse("s3://b/p")
                .unwrap()
                .relative_to(base)
                .describe(),
            "s3://b/p"
        );
    }
}
