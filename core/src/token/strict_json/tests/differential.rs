//! The strict check against an independent reference on generated and mutated texts: serde_json
//! reading the text, with a visitor that adds the rules serde_json does not have (duplicate
//! names, nesting depth, the number range). The two must agree on every input.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

use super::super::{check_object, MAX_DEPTH, MAX_EXACT_INTEGER};

/// Accepts a value nested `depth` containers deep, under the strict rules.
#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<(), E> {
        (v <= MAX_EXACT_INTEGER)
            .then_some(())
            .ok_or_else(|| E::custom("range"))
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<(), E> {
        (v.unsigned_abs() <= MAX_EXACT_INTEGER)
            .then_some(())
            .ok_or_else(|| E::custom("range"))
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<(), E> {
        (v.abs() <= MAX_EXACT_INTEGER as f64)
            .then_some(())
            .ok_or_else(|| E::custom("range"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        let mut names = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !names.insert(name) {
                return Err(A::Error::custom("duplicate"));
            }
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

impl Strict {
    fn enter<E: Error>(self) -> Result<Strict, E> {
        let depth = self.depth.saturating_add(1);
        if depth > MAX_DEPTH {
            return Err(E::custom("depth"));
        }
        Ok(Strict { depth })
    }
}

fn reference(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let is_object = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{');
    let mut de = serde_json::Deserializer::from_str(text);
    is_object && Strict { depth: 0 }.deserialize(&mut de).is_ok() && de.end().is_ok()
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        self.next().checked_rem(n as u64).unwrap_or(0) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &[
    "a",
    "b",
    "sub",
    "\\u0061",
    "\\u0062",
    "\\ud83d\\ude00",
    "😀",
    "é",
    "\\u00e9",
    "x\\ny",
];
const STRINGS: &[&str] = &[
    "",
    "plain",
    "\\\"",
    "\\\\",
    "\\/",
    "\\b\\f\\n\\r\\t",
    "\\u0041",
    "\\uD800",
    "\\uDC00",
    "\\ud800\\udc00",
    "\\uDBFF\\uDFFF",
    "\\ud800x",
    "\\ud800\\u0041",
    "\\x",
    "\\u12",
    "\\u12g4",
    "tab\there",
    "é",
    "\u{1}",
];
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "1790000000",
    "9007199254740991",
    "9007199254740992",
    "-9007199254740991",
    "-9007199254740992",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1.5",
    "-2.25e-3",
    "1e400",
    "-1e400",
    "1e-400",
    "1e15",
    "1e16",
    "9.007199254740991e15",
    "9.007199254740992e15",
    "01",
    "1.",
    ".5",
    "1e",
    "-",
    "+1",
    "1E+2",
    "0.1e1",
];

fn value(rng: &mut Rng, depth: usize, out: &mut String) {
    let kind = if depth >= 11 {
        rng.below(4).saturating_add(3)
    } else {
        rng.below(7)
    };
    match kind {
        0 | 1 => {
            out.push('{');
            let members = rng.below(5);
            for i in 0..members {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(rng.pick(NAMES));
                out.push_str("\":");
                value(rng, depth.saturating_add(1), out);
            }
            out.push('}');
        }
        2 => {
            out.push('[');
            let elements = rng.below(4);
            for i in 0..elements {
                if i > 0 {
                    out.push(',');
                }
                value(rng, depth.saturating_add(1), out);
            }
            out.push(']');
        }
        3 => {
            out.push('"');
            out.push_str(rng.pick(STRINGS));
            out.push('"');
        }
        4 => out.push_str(rng.pick(NUMBERS)),
        5 => out.push_str(rng.pick(&["true", "false", "null"])),
        _ => out.push_str(rng.pick(&[" ", "\n", "", "\t"])),
    }
}

const INSERTS: &[u8] = b"{}[]\":,\\ 0e-.u\xff";

fn mutate(rng: &mut Rng, text: String) -> Vec<u8> {
    let mut bytes = text.into_bytes();
    for _ in 0..rng.below(3) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(4) {
            0 => {
                bytes.remove(at);
            }
            1 => bytes.insert(at, INSERTS[rng.below(INSERTS.len())]),
            2 => bytes[at] = INSERTS[rng.below(INSERTS.len())],
            _ => {
                let end = at.saturating_add(rng.below(8)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                let to = rng.below(bytes.len());
                bytes.splice(to..to, copy);
            }
        }
    }
    bytes
}

#[test]
fn strict_check_agrees_with_the_reference_on_generated_inputs() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for case in 0..40_000 {
        let mut text = String::new();
        value(&mut rng, 0, &mut text);
        let input = if case % 2 == 0 {
            text.into_bytes()
        } else {
            mutate(&mut rng, text)
        };
        let strict = check_object(&input).is_ok();
        assert_eq!(
            strict,
            reference(&input),
            "disagreement on {:?}",
            String::from_utf8_lossy(&input)
        );
        accepted += usize::from(strict);
    }
    // The generator must reach both outcomes often enough for the comparison to mean much.
    assert!(accepted > 2_000, "only {accepted} inputs accepted");
}
