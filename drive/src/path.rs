//! [`DrivePath`]: a normalised drive path.
//!
//! Rules: paths resolve against the root `/`; only `/` separates segments
//! (a `\` is an ordinary character inside a drive and is converted at the
//! local-folder boundary only); empty and `.` segments drop; `..` removes
//! the previous segment and is an error past the root; a trailing `/` is
//! dropped; NUL is an error. The result is `/` (the root) or `/` followed by
//! segments joined by `/`. Writing to `/` itself is an error
//! ([`DrivePath::file`]).

use std::fmt;

use crate::error::{Error, Result};

/// A normalised, absolute drive path (see the module rules). Its bytes are
/// the metadata bee's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DrivePath(String);

fn invalid(path: &str, reason: &'static str) -> Error {
    Error::InvalidPath {
        path: path.to_string(),
        reason,
    }
}

impl DrivePath {
    /// The root folder `/`.
    pub fn root() -> DrivePath {
        DrivePath("/".to_string())
    }

    /// Normalises `path` (absolute or relative to the root).
    pub fn new(path: &str) -> Result<DrivePath> {
        DrivePath::root().join(path)
    }

    /// Normalises `path` and refuses the root: the path of a file or
    /// symlink to write.
    pub fn file(path: &str) -> Result<DrivePath> {
        let p = DrivePath::new(path)?;
        if p.is_root() {
            return Err(invalid(path, "'/' is the root folder, not a file"));
        }
        Ok(p)
    }

    /// `rel` resolved against this path as a folder (an absolute `rel`
    /// starts from the root).
    pub fn join(&self, rel: &str) -> Result<DrivePath> {
        if rel.contains('\0') {
            return Err(invalid(rel, "a path cannot contain NUL"));
        }
        let mut segments: Vec<&str> = if rel.starts_with('/') {
            Vec::new()
        } else {
            self.segments().collect()
        };
        for segment in rel.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    if segments.pop().is_none() {
                        return Err(invalid(rel, "'..' goes above the root"));
                    }
                }
                s => segments.push(s),
            }
        }
        Ok(DrivePath(format!("/{}", segments.join("/"))))
    }

    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The metadata bee's key for this path.
    pub fn key(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The segments, root first (none for the root).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The last segment (`None` for the root).
    pub fn name(&self) -> Option<&str> {
        self.segments().last()
    }

    /// The folder holding this path (`None` for the root).
    pub fn parent(&self) -> Option<DrivePath> {
        if self.is_root() {
            return None;
        }
        let cut = self.0.rfind('/').unwrap_or(0);
        Some(DrivePath(if cut == 0 {
            "/".to_string()
        } else {
            self.0[..cut].to_string()
        }))
    }

    /// Every folder above this path, nearest the root first (not the root
    /// itself).
    pub fn ancestors(&self) -> Vec<DrivePath> {
        let mut out = Vec::new();
        let mut at = self.parent();
        while let Some(p) = at {
            if p.is_root() {
                break;
            }
            at = p.parent();
            out.push(p);
        }
        out.reverse();
        out
    }

    /// The child `name` of this folder (`name` must be one segment).
    pub fn child(&self, name: &str) -> Result<DrivePath> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(invalid(name, "not a single path segment"));
        }
        self.join(name)
    }

    /// Whether `self` is `folder` or inside it.
    pub fn is_within(&self, folder: &DrivePath) -> bool {
        folder.is_root()
            || self.0 == folder.0
            || (self.0.starts_with(&folder.0)
                && self.0.as_bytes().get(folder.0.len()) == Some(&b'/'))
    }

    /// This path relative to `folder` (without a leading `/`; empty when
    /// equal), if it is within it.
    pub fn relative_to(&self, folder: &DrivePath) -> Option<&str> {
        if !self.is_within(folder) {
            return None;
        }
        let skip = if folder.is_root() {
            1
        } else {
            folder.0.len() + 1
        };
        Some(self.0.get(skip..).unwrap_or(""))
    }

    /// The bee keys strictly inside this folder: greater than `folder/`
    /// and less than `folder0` (`'0'` is the byte after `'/'`).
    pub fn subtree_bounds(&self) -> (Vec<u8>, Vec<u8>) {
        if self.is_root() {
            return (b"/".to_vec(), b"0".to_vec());
        }
        let mut low = self.0.clone().into_bytes();
        let mut high = low.clone();
        low.push(b'/');
        high.push(b'0');
        (low, high)
    }
}

impl fmt::Display for DrivePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for DrivePath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        DrivePath::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises() {
        for (input, want) in [
            ("", "/"),
            ("/", "/"),
            ("a", "/a"),
            ("/a/b/", "/a/b"),
            ("//a//./b", "/a/b"),
            ("/a/../b", "/b"),
            ("a/b/..", "/a"),
            ("a\\b", "/a\\b"),
            ("/ünï/çødé", "/ünï/çødé"),
        ] {
            assert_eq!(
                DrivePath::new(input).map(|p| p.0).ok(),
                Some(want.to_string()),
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_bad_paths_naming_them() {
        for (input, reason) in [
            ("/..", "above the root"),
            ("a/../../b", "above the root"),
            ("a\0b", "NUL"),
        ] {
            let e = DrivePath::new(input).map(|p| p.0);
            let text = e.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(text.contains(reason), "{input}: {text}");
            assert!(text.contains(input), "{text}");
        }
        assert!(matches!(
            DrivePath::file("/./"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(DrivePath::file("/x").is_ok());
    }

    #[test]
    fn family() -> Result<()> {
        let p = DrivePath::new("/a/b/c")?;
        assert_eq!(p.name(), Some("c"));
        assert_eq!(p.parent(), Some(DrivePath::new("/a/b")?));
        assert_eq!(DrivePath::new("/a")?.parent(), Some(DrivePath::root()));
        assert_eq!(DrivePath::root().parent(), None);
        assert_eq!(
            p.ancestors(),
            vec![DrivePath::new("/a")?, DrivePath::new("/a/b")?]
        );
        assert!(p.is_within(&DrivePath::new("/a")?));
        assert!(!DrivePath::new("/ab")?.is_within(&DrivePath::new("/a")?));
        assert_eq!(p.relative_to(&DrivePath::new("/a")?), Some("b/c"));
        assert_eq!(p.relative_to(&DrivePath::root()), Some("a/b/c"));
        assert_eq!(DrivePath::new("/a")?.join("../x")?, DrivePath::new("/x")?);
        assert!(DrivePath::root().child("a/b").is_err());
        Ok(())
    }

    proptest! {
        /// Normalising is idempotent, and every key of a folder's subtree
        /// sorts strictly between its bounds while its siblings do not.
        #[test]
        fn normal_form(parts in proptest::collection::vec("[a-c./]{0,3}|\\.\\.|ü", 0..8)) {
            let raw = parts.join("/");
            if let Ok(p) = DrivePath::new(&raw) {
                prop_assert_eq!(DrivePath::new(p.as_str()).ok(), Some(p.clone()));
                prop_assert!(!p.0.contains("//") && (p.is_root() || !p.0.ends_with('/')));
                if let Some(parent) = p.parent() {
                    let (low, high) = parent.subtree_bounds();
                    prop_assert!(p.key() > low.as_slice() && p.key() < high.as_slice());
                    let sibling = format!("{}-", parent.as_str());
                    if !parent.is_root() {
                        prop_assert!(!(sibling.as_bytes() > low.as_slice() && sibling.as_bytes() < high.as_slice()));
                    }
                }
            }
        }
    }
}
