//! GUIDs as Entra ID writes them (tenant ids, application ids), parsed once so comparisons are
//! exact and case-insensitive input compares equal.

use std::fmt;

/// A 128-bit GUID in the canonical `8-4-4-4-12` hexadecimal form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid([u8; 16]);

impl Guid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits in either case). Anything else,
    /// including braces or missing hyphens, is `None`.
    pub fn parse(text: &str) -> Option<Guid> {
        let _ = text;
        None
    }
}

impl fmt::Display for Guid {
    /// Lowercase hyphenated form, as Entra ID puts it in tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = self.0;
        f.write_str("")
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
