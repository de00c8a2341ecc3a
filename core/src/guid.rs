//! GUIDs as Entra ID writes them (tenant ids, application ids), parsed once so comparisons are
//! exact and case-insensitive input compares equal.
//!
//! The configuration parses its tenant and application ids into [`Guid`]s at configure time;
//! on the request path the token's `tid` and `azp`/`appid` are parsed the same way and compared
//! as 16 bytes, so `ABCDEF…` in a configuration and `abcdef…` in a token are the same client.

use std::fmt;

/// A 128-bit GUID in the canonical `8-4-4-4-12` hexadecimal form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid([u8; 16]);

/// Number of hex digits in each hyphen-separated group of the canonical form.
const GROUP_DIGITS: [usize; 5] = [8, 4, 4, 4, 12];

/// Byte positions that start a new group (and so follow a hyphen) in the canonical form.
const HYPHEN_BEFORE: [usize; 4] = [4, 6, 8, 10];

/// Length of the canonical text form: 32 hex digits and 4 hyphens.
const TEXT_LEN: usize = 36;

impl Guid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits in either case). Anything else,
    /// including braces or missing hyphens, is `None`.
    pub fn parse(text: &str) -> Option<Guid> {
        if text.len() != TEXT_LEN {
            return None;
        }
        let mut bytes = [0u8; 16];
        let mut out = bytes.iter_mut();
        let mut groups = text.split('-');
        for digits in GROUP_DIGITS {
            let group = groups.next()?.as_bytes();
            if group.len() != digits {
                return None;
            }
            for pair in group.chunks_exact(2) {
                let [hi, lo] = pair else { return None };
                *out.next()? = crate::hex::byte(*hi, *lo)?;
            }
        }
        if groups.next().is_some() {
            return None;
        }
        Some(Guid(bytes))
    }
}

impl fmt::Display for Guid {
    /// Lowercase hyphenated form, as Entra ID puts it in tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if HYPHEN_BEFORE.contains(&index) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    #[test]
    fn lowercase_guid_round_trips() {
        let guid = Guid::parse(TENANT).unwrap();
        assert_eq!(guid.to_string(), TENANT);
    }

    #[test]
    fn uppercase_guid_parses_to_the_same_value_and_displays_lowercase() {
        let upper = Guid::parse(&TENANT.to_ascii_uppercase()).unwrap();
        assert_eq!(upper, Guid::parse(TENANT).unwrap());
        assert_eq!(upper.to_string(), TENANT);
    }

    #[test]
    fn mixed_case_guid_parses() {
        assert_eq!(
            Guid::parse("72F988bf-86F1-41aF-91Ab-2d7Cd011dB47"),
            Guid::parse(TENANT)
        );
    }

    #[test]
    fn bytes_are_read_in_text_order() {
        let guid = Guid::parse("00112233-4455-6677-8899-aabbccddeeff").unwrap();
        assert_eq!(
            guid.0,
            [
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]
        );
    }

    #[test]
    fn debug_is_the_canonical_form() {
        assert_eq!(format!("{:?}", Guid::parse(TENANT).unwrap()), TENANT);
    }

    #[test]
    fn other_forms_are_refused() {
        for text in [
            "",
            "72f988bf86f141af91ab2d7cd011db47",
            "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
            "72f988bf-86f1-41af-91ab-2d7cd011db4",
            "72f988bf-86f1-41af-91ab-2d7cd011db477",
            "72f988bf-86f1-41af-91ab2-d7cd011db47",
            "72f988b-f86f1-41af-91ab-2d7cd011db47",
            "72f988bf-86f1-41af-91ab-2d7cd011db4g",
            "72f988bf-86f1-41af-91ab-2d7cd011db+7",
            "72f988bf-86f1-41af-91ab-2d7cd011d-47",
            "72f988bf 86f1 41af 91ab 2d7cd011db47",
            " 2f988bf-86f1-41af-91ab-2d7cd011db47",
            "72f988bf-86f1-41af-91ab-2d7cd011dbé",
            "urn:uuid:72f988bf-86f1-41af-91ab-2d",
        ] {
            assert_eq!(Guid::parse(text), None, "{text:?}");
        }
    }
}
