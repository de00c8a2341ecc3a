use super::*;

fn check(text: &str) -> Result<(), JsonDefect> {
    check_object(text.as_bytes()).map(drop)
}

#[test]
fn entra_shaped_objects_pass() {
    for text in [
        r#"{"typ":"JWT","alg":"RS256","x5t":"abc","kid":"abc"}"#,
        r#"{"aud":"api://jira-gateway/","iss":"https://sts.windows.net/t/","iat":1790000000,
            "nbf":1790000000,"exp":1790003600,"roles":["Jira.Read","Jira.Write"],
            "xms_mirid":"/subscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u",
            "xms_tcdt":1600000000,"wids":["0997a1d0-0d1d-4acb-b408-d5ca73121e90"],
            "xms_cc":["cp1"],"xms_ssm":"1","acct":0,"rh":"0.AAAA","ver":"1.0"}"#,
        " { } ",
        r#"{"a":{"b":[{"c":null}]},"d":[true,false,-0,0.5,-1.25e-3,9007199254740991]}"#,
        r#"{"esc":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","\u0062":1}"#,
    ] {
        assert_eq!(check(text), Ok(()), "{text}");
    }
}

#[test]
fn non_objects_are_not_an_object() {
    for text in ["[]", "1", "\"x\"", "null", "true"] {
        assert_eq!(check(text), Err(JsonDefect::NotAnObject), "{text}");
    }
}

#[test]
fn broken_json_is_a_syntax_error() {
    for text in [
        "",
        " ",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\":1}{}",
        "{\"a\":1} x",
        "{'a':1}",
        "{a:1}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":1e}",
        "{\"a\":+1}",
        "{\"a\":-}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":[1,]}",
        "{\"a\":[1 2]}",
        "{\"a\":\"\u{1}\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"open}",
        "[1]x",
        "\u{feff}{}",
    ] {
        assert_eq!(check(text), Err(JsonDefect::Syntax), "{text:?}");
    }
}

#[test]
fn text_that_is_not_utf8_is_refused() {
    assert_eq!(
        check_object(b"{\"a\":\"\xff\"}").map(drop),
        Err(JsonDefect::NotUtf8)
    );
}

#[test]
fn a_duplicate_member_at_any_depth_is_refused() {
    for text in [
        r#"{"sub":"a","sub":"a"}"#,
        r#"{"typ":"JWT","alg":"RS256","typ":"JWT"}"#,
        r#"{"x":{"y":1,"y":2}}"#,
        r#"{"x":[{"z":1},{"z":1,"q":0,"z":1}]}"#,
        r#"{"a":{"b":{"c":{"d":{"e":1,"e":1}}}}}"#,
        r#"{"a":1,"\u0061":2}"#,
        r#"{"\u00e9":1,"é":2}"#,
        r#"{"\ud83d\ude00":1,"😀":2}"#,
    ] {
        assert_eq!(check(text), Err(JsonDefect::DuplicateMember), "{text}");
    }
}

/// `name` written as a surrogate-pair escape (`\ud83d\ude00` for U+1F600).
fn escaped(name: char) -> String {
    let mut units = [0u16; 2];
    name.encode_utf16(&mut units)
        .iter()
        .map(|unit| format!("\\u{unit:04x}"))
        .collect()
}

#[test]
fn a_surrogate_pair_escape_names_the_character_it_encodes_in_every_plane() {
    for name in [
        '\u{10000}',
        '\u{1f600}',
        '\u{20000}',
        '\u{2a6d6}',
        '\u{e0041}',
        '\u{10ffff}',
    ] {
        let same = format!("{{\"{}\":1,\"{name}\":2}}", escaped(name));
        assert_eq!(check(&same), Err(JsonDefect::DuplicateMember), "{same}");
    }
    // Names one bit apart in either surrogate are different names.
    for (a, b) in [
        ('\u{20000}', '\u{10000}'),
        ('\u{10000}', '\u{10001}'),
        ('\u{10ffff}', '\u{10fffe}'),
        ('\u{1f600}', '\u{1f200}'),
    ] {
        let different = format!("{{\"{}\":1,\"{b}\":2}}", escaped(a));
        assert_eq!(check(&different), Ok(()), "{different}");
    }
}

#[test]
fn the_eight_byte_skip_passes_plain_text_and_stops_at_every_quote_backslash_or_control() {
    let word = |bytes: &[u8; 8]| u64::from_le_bytes(*bytes);
    for plain in [
        b"abcdefgh",
        b"        ",
        b"!#$%&'()",
        b"[]^_`{|}",
        b"~\x7f\x80\xff\xc3\xa9AZ",
        b"!!!!!!!!",
        b"]]]]]]]]",
    ] {
        assert!(!may_stop_string(word(plain)), "{plain:?}");
    }
    for stop in [b'"', b'\\', 0x00, 0x0a, 0x1f] {
        for at in 0..8 {
            let mut bytes = *b"abcdefgh";
            bytes[at] = stop;
            assert!(may_stop_string(word(&bytes)), "{bytes:?}");
        }
    }
}

#[test]
fn names_alike_in_length_and_first_seven_bytes_are_still_different_names() {
    assert_eq!(check(r#"{"abcdefg1":1,"abcdefg2":2}"#), Ok(()));
    assert_eq!(
        check(r#"{"xms_tcdt":1,"xms_tcdx":2,"xms_tcdt":3}"#),
        Err(JsonDefect::DuplicateMember)
    );
    let many: Vec<String> = (0..40).map(|i| format!("\"prefix_{i:02}\":{i}")).collect();
    assert_eq!(check(&format!("{{{}}}", many.join(","))), Ok(()));
}

#[test]
fn equal_names_in_different_objects_are_not_duplicates() {
    assert_eq!(
        check(r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#),
        Ok(())
    );
}

#[test]
fn duplicates_among_many_members_are_found() {
    let mut members: Vec<String> = (0..200).map(|i| format!("\"m{i}\":{i}")).collect();
    let distinct = format!("{{{}}}", members.join(","));
    assert_eq!(check(&distinct), Ok(()));
    members.push("\"m137\":0".to_owned());
    let duplicated = format!("{{{}}}", members.join(","));
    assert_eq!(check(&duplicated), Err(JsonDefect::DuplicateMember));
    let escaped = format!("{{{},\"m\\u0031\\u00337\":0}}", members[..199].join(","));
    assert_eq!(check(&escaped), Err(JsonDefect::DuplicateMember));
}

#[test]
fn undefined_escapes_are_refused() {
    for text in [
        r#"{"a":"\x41"}"#,
        r#"{"a":"\'"}"#,
        r#"{"a":"\u12"}"#,
        r#"{"a":"\u12G4"}"#,
        r#"{"a":"\U0041"}"#,
        r#"{"a\z":1}"#,
    ] {
        assert_eq!(check(text), Err(JsonDefect::BadEscape), "{text}");
    }
}

#[test]
fn unpaired_surrogate_escapes_are_refused_even_in_unread_members() {
    for text in [
        r#"{"x5u":"\uD800"}"#,
        r#"{"a":"\ud800x"}"#,
        r#"{"a":"\udc00"}"#,
        r#"{"a":"\ud800\u0041"}"#,
        r#"{"a":"\ud800\ud800"}"#,
        r#"{"a":"\ude00\ud83d"}"#,
        r#"{"\ud800":1}"#,
        r#"{"a":"\ud800\n"}"#,
    ] {
        assert_eq!(check(text), Err(JsonDefect::UnpairedSurrogate), "{text}");
    }
}

#[test]
fn numbers_beyond_the_exact_integer_range_are_refused() {
    for number in [
        "1e400",
        "-1e400",
        "9007199254740992",
        "-9007199254740992",
        "18446744073709551616",
        "100000000000000000000000",
        "1e16",
        "9.1e15",
        "9007199254740992.0",
        "0.000000000000000000001e400",
    ] {
        let text = format!("{{\"a\":{number}}}");
        assert_eq!(check(&text), Err(JsonDefect::NumberOutOfRange), "{text}");
    }
    for number in [
        "9007199254740991",
        "-9007199254740991",
        "0009",
        "1e-400",
        "1.5",
        "-0",
        "0e0",
        "1E+2",
    ] {
        let text = format!("{{\"a\":{number}}}");
        let expected = if number == "0009" {
            Err(JsonDefect::Syntax)
        } else {
            Ok(())
        };
        assert_eq!(check(&text), expected, "{text}");
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let nested = |levels: usize| {
        let mut text = String::new();
        for _ in 1..levels {
            text.push_str("{\"a\":");
        }
        text.push_str("{}");
        for _ in 1..levels {
            text.push('}');
        }
        text
    };
    assert_eq!(check(&nested(MAX_DEPTH)), Ok(()));
    assert_eq!(check(&nested(MAX_DEPTH + 1)), Err(JsonDefect::TooDeep));
    assert_eq!(check(&nested(1000)), Err(JsonDefect::TooDeep));
    let arrays = format!("{{\"a\":{}1{}}}", "[".repeat(7), "]".repeat(7));
    assert_eq!(check(&arrays), Ok(()));
    let arrays = format!("{{\"a\":{}1{}}}", "[".repeat(8), "]".repeat(8));
    assert_eq!(check(&arrays), Err(JsonDefect::TooDeep));
    // Deep nesting is refused however it ends, without reading it all.
    let unterminated = format!("{{\"a\":{}", "[".repeat(100_000));
    assert_eq!(check(&unterminated), Err(JsonDefect::TooDeep));
}

mod differential;
