//! Source files and byte spans: how locations travel through drplan as plain data.

use std::ops::Range;

/// Index of a file in the set of sources one configuration was loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// A byte range inside one source file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub range: Range<usize>,
}

impl Span {
    pub fn new(file: FileId, range: Range<usize>) -> Span {
        Span { file, range }
    }

    /// The span covering both `self` and `other` (same file assumed).
    pub fn to(&self, other: &Span) -> Span {
        Span::new(self.file, self.range.start.min(other.range.start)..self.range.end.max(other.range.end))
    }
}

/// One configuration file: its display name (as the user would type it) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        SourceFile { name: name.into(), text: text.into() }
    }
}
