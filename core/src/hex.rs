//! Hexadecimal digits, the way GUIDs and percent-escapes (in a path, a query parameter's name, a
//! form body) spell bytes: two digits, either case, make one byte.

/// The byte the digits `high` and `low` spell, or `None` when either is not a hex digit.
pub(crate) fn byte(high: u8, low: u8) -> Option<u8> {
    Some(digit_value(high)?.wrapping_shl(4) | digit_value(low)?)
}

/// The value of one hexadecimal digit, either case.
fn digit_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(digit.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Some(digit.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_of_hex_digits_in_either_case_is_its_byte() {
        for value in 0..=u8::MAX {
            let lower = format!("{value:02x}").into_bytes();
            let upper = format!("{value:02X}").into_bytes();
            assert_eq!(byte(lower[0], lower[1]), Some(value));
            assert_eq!(byte(upper[0], upper[1]), Some(value));
        }
    }

    #[test]
    fn anything_but_a_hex_digit_spells_no_byte() {
        for other in (0..=u8::MAX).filter(|b| !b.is_ascii_hexdigit()) {
            assert_eq!(byte(other, b'0'), None);
            assert_eq!(byte(b'0', other), None);
        }
    }
}
