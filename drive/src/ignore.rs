//! [`Ignore`]: gitignore-style patterns (the `ignore` crate's matcher),
//! applied to paths relative to the root of a listing or a mirror.

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::error::{Error, Result};

/// The file at a folder's root whose lines are added to a mirror's ignores.
pub const IGNORE_FILE: &str = ".hyperignore";

/// A set of gitignore patterns (`*.log`, `build/`, `!keep.log`, `/top`).
#[derive(Clone, Debug)]
pub struct Ignore {
    matcher: Gitignore,
    patterns: Vec<String>,
}

impl Default for Ignore {
    /// Ignores nothing.
    fn default() -> Self {
        Ignore {
            matcher: Gitignore::empty(),
            patterns: Vec::new(),
        }
    }
}

impl Ignore {
    /// The patterns, one per item; blank lines and `#` comments are allowed.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Ignore> {
        let patterns: Vec<String> = patterns.iter().map(|p| p.as_ref().to_string()).collect();
        let mut builder = GitignoreBuilder::new("/");
        for p in &patterns {
            builder.add_line(None, p).map_err(|e| Error::BadIgnore {
                pattern: p.clone(),
                reason: e.to_string(),
            })?;
        }
        let matcher = builder.build().map_err(|e| Error::BadIgnore {
            pattern: patterns.join(" "),
            reason: e.to_string(),
        })?;
        Ok(Ignore { matcher, patterns })
    }

    /// These patterns plus the lines of a `.hyperignore` file.
    pub fn with_file(&self, text: &str) -> Result<Ignore> {
        let mut all = self.patterns.clone();
        all.extend(text.lines().map(str::to_string));
        Ignore::new(&all)
    }

    /// Whether `rel` (a `/`-separated path relative to the root, without a
    /// leading `/`), or a folder above it, is ignored.
    pub fn matches(&self, rel: &str, is_dir: bool) -> bool {
        if rel.is_empty() {
            return false;
        }
        self.matcher
            .matched_path_or_any_parents(format!("/{rel}"), is_dir)
            .is_ignore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitignore_rules() -> Result<()> {
        let i = Ignore::new(&["*.log", "build/", "!keep.log", "/top", "# note", ""])?;
        assert!(i.matches("a.log", false));
        assert!(i.matches("x/y/a.log", false));
        assert!(!i.matches("keep.log", false));
        assert!(i.matches("build/out.o", false));
        assert!(i.matches("src/build/out.o", false));
        assert!(i.matches("top", false));
        assert!(!i.matches("x/top", false));
        assert!(!i.matches("src/main.rs", false));
        let more = i.with_file("*.tmp\n")?;
        assert!(more.matches("a.tmp", false) && more.matches("a.log", false));
        assert!(matches!(
            Ignore::new(&["a[z-a]"]),
            Err(Error::BadIgnore { .. })
        ));
        Ok(())
    }
}
