//! The request headers as the host hands them over: the proxy-wasm serialized header map that
//! `proxy_get_header_map_pairs` returns, read in place. The shell takes the one buffer from the
//! host and this module finds the name and value slices in it, so reading a request's headers
//! costs one allocation instead of two per header.
//!
//! Layout (little-endian): the number of pairs `n` as a `u32`; `n` pairs of `u32` lengths (name,
//! value); then, for each pair, the name bytes, a NUL, the value bytes, a NUL.

use std::borrow::Cow;

/// The `(name, value)` pairs of a serialized header map, borrowed from it; `None` when the
/// buffer does not follow the layout. An empty buffer is an empty map.
pub fn header_pairs(serialized: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if serialized.is_empty() {
        return Some(Vec::new());
    }
    let count = usize::try_from(read_u32(serialized, 0)?).ok()?;
    // Each pair takes at least 8 bytes of lengths and 2 NULs: a count the buffer cannot hold is
    // refused before anything is reserved for it.
    if count > serialized.len() / 10 {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    for n in 0..count {
        let lengths = n.checked_mul(8)?.checked_add(4)?;
        let name_len = usize::try_from(read_u32(serialized, lengths)?).ok()?;
        let value_len = usize::try_from(read_u32(serialized, lengths.checked_add(4)?)?).ok()?;
        let (name, after_name) = field(serialized, data, name_len)?;
        let (value, after_value) = field(serialized, after_name, value_len)?;
        pairs.push((name, value));
        data = after_value;
    }
    Some(pairs)
}

/// Header bytes as text. Names are tokens Envoy's codecs have validated; a value need not be
/// UTF-8, and its invalid bytes become U+FFFD, which every check of the core refuses where it
/// matters (path, `Authorization`, method overrides).
pub fn header_text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let word: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(word))
}

/// The `len` bytes at `at`, which must be followed by a NUL; and where the next field starts.
fn field(bytes: &[u8], at: usize, len: usize) -> Option<(&[u8], usize)> {
    let end = at.checked_add(len)?;
    let text = bytes.get(at..end)?;
    match bytes.get(end) {
        Some(0) => Some((text, end.checked_add(1)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (name, value) in pairs {
            out.extend((name.len() as u32).to_le_bytes());
            out.extend((value.len() as u32).to_le_bytes());
        }
        for (name, value) in pairs {
            out.extend(*name);
            out.push(0);
            out.extend(*value);
            out.push(0);
        }
        out
    }

    #[test]
    fn pairs_are_read_in_order_without_copying() {
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"GET"),
            (b":path", b"/rest/api/2/myself"),
            (b"authorization", b"Bearer a.b.c"),
            (b"x-empty", b""),
            (b"x-bytes", b"\xff\x00\xfe"),
        ];
        let buffer = serialize(&pairs);
        let read = header_pairs(&buffer).unwrap();
        assert_eq!(read, pairs);
        let range = buffer.as_ptr_range();
        assert!(read.iter().all(|(n, _)| range.contains(&n.as_ptr())));
    }

    #[test]
    fn empty_buffer_and_zero_pairs_are_empty_maps() {
        assert_eq!(header_pairs(&[]), Some(Vec::new()));
        assert_eq!(header_pairs(&serialize(&[])), Some(Vec::new()));
    }

    #[test]
    fn truncated_or_inconsistent_buffers_are_refused() {
        let buffer = serialize(&[(b"name", b"value"), (b"other", b"x")]);
        for cut in 1..buffer.len() {
            assert_eq!(header_pairs(&buffer[..cut]), None, "cut at {cut}");
        }
        let mut missing_nul = buffer.clone();
        let nul = 4 + 16 + 4;
        assert_eq!(missing_nul[nul], 0);
        missing_nul[nul] = b'!';
        assert_eq!(header_pairs(&missing_nul), None);
        let mut huge_count = buffer.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(header_pairs(&huge_count), None);
        let mut huge_length = buffer;
        huge_length[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(header_pairs(&huge_length), None);
    }

    #[test]
    fn invalid_utf8_in_values_becomes_replacement_characters() {
        assert_eq!(header_text(b"GET"), "GET");
        assert!(matches!(header_text(b"GET"), Cow::Borrowed(_)));
        assert_eq!(header_text(b"/a\xffb"), "/a\u{fffd}b");
    }
}
