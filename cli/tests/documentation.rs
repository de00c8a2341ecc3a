//! The documentation kept true by tests: the configuration reference in README.md describes
//! exactly the fields of the generated JSON Schema (`schema/plugin-config.schema.json`, itself
//! kept current by `cli.rs`), with the schema's requirement, type, bounds and defaults; and
//! every relative link of the Markdown documentation leads to a file, and a heading, that exist.
//!
//! How the README's reference is read: the `###` sections of "Configuration reference" each hold
//! one table whose first column names fields in backticks (nested objects with dots:
//! `jwks.cluster`); a column headed `type` says `required` for a required field; a column headed
//! `default` starts with the default in backticks. "Top level" is the document itself; any other
//! heading names, in backticks, the list fields whose entries its table describes
//! (`tenants[]`, or `allow`, `deny`, `public_paths` for the rules).

// This whole file is test code; clippy.toml's test allowances cover only `#[test]` functions,
// not the helpers an integration test shares between them.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const README: &str = "README.md";
const SCHEMA_FILE: &str = "schema/plugin-config.schema.json";
const REFERENCE_HEADING: &str = "## Configuration reference";
/// The table of the document's own fields; every other table is named by list fields.
const TOP_LEVEL: &str = "Top level";

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The schema's side: every field, grouped by the table that must document it.

/// A field as the schema defines it.
#[derive(Debug)]
struct SchemaField {
    /// Required, and so is every object on the way to it.
    required: bool,
    node: Value,
}

/// Fields by table: "" for the document itself, else the name of the list whose entries hold
/// them (`tenants`, `allow`, `public_paths`); within a table, by dotted name (`jwks.cluster`).
type SchemaTables = BTreeMap<String, BTreeMap<String, SchemaField>>;

/// The node a `$ref`, or an `anyOf` of a `$ref` and `null`, stands for.
fn resolve<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    if let Some(reference) = node["$ref"].as_str() {
        return resolve(
            schema,
            schema
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling {reference}")),
        );
    }
    if let Some(variants) = node["anyOf"].as_array() {
        let not_null: Vec<&Value> = variants.iter().filter(|v| v["type"] != "null").collect();
        if let [only] = not_null.as_slice() {
            return resolve(schema, only);
        }
    }
    node
}

/// The node's JSON type, `null` (the same as leaving the field out) set aside.
fn kind(node: &Value) -> String {
    match &node["type"] {
        Value::String(one) => one.clone(),
        Value::Array(many) => many
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join("|"),
        _ => String::new(),
    }
}

fn has_fields(node: &Value) -> bool {
    node["properties"].is_object()
}

fn collect_fields(
    schema: &Value,
    object: &Value,
    table: &str,
    prefix: &str,
    required: bool,
    tables: &mut SchemaTables,
) {
    let required_names: BTreeSet<&str> = object["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, declared) in object["properties"].as_object().unwrap() {
        let node = resolve(schema, declared);
        let dotted = format!("{prefix}{name}");
        let field_required = required && required_names.contains(name.as_str());
        if kind(node) == "object" && has_fields(node) {
            collect_fields(
                schema,
                node,
                table,
                &format!("{dotted}."),
                field_required,
                tables,
            );
            continue;
        }
        // Defaults and descriptions sit next to a `$ref`, not behind it.
        let mut leaf = node.clone();
        if let (Some(leaf), Some(declared)) = (leaf.as_object_mut(), declared.as_object()) {
            for (key, value) in declared {
                leaf.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        tables.entry(table.to_owned()).or_default().insert(
            dotted,
            SchemaField {
                required: field_required,
                node: leaf,
            },
        );
        let items = resolve(schema, &node["items"]);
        if kind(node) == "array" && has_fields(items) {
            collect_fields(schema, items, name, "", true, tables);
        }
    }
}

fn schema_tables(schema: &Value) -> SchemaTables {
    let mut tables = SchemaTables::new();
    collect_fields(schema, schema, "", "", true, &mut tables);
    tables
}

// ---------------------------------------------------------------------------------------------
// The README's side: the tables of the configuration reference.

/// The text inside each backtick code span of `text`.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The cells of a Markdown table row: split on `|` outside code spans and not escaped as `\|`.
fn cells(row: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut in_code = false;
    let mut previous = ' ';
    for c in row.trim().chars() {
        match c {
            '`' => in_code = !in_code,
            '|' if !in_code && previous != '\\' => {
                cells.push(String::new());
                previous = c;
                continue;
            }
            _ => {}
        }
        cells.last_mut().unwrap().push(c);
        previous = c;
    }
    // A row starts and ends with `|`: drop the empty cells outside them.
    cells.remove(0);
    cells.pop();
    cells.iter().map(|c| c.trim().replace("\\|", "|")).collect()
}

/// One documented field: its row's cells by column name.
#[derive(Debug)]
struct Row {
    heading: String,
    columns: BTreeMap<String, String>,
}

/// The rows of the configuration reference by heading and field name, in document order.
fn readme_tables(readme: &str) -> Vec<(String, String, Row)> {
    let section = readme
        .split_once(&format!("\n{REFERENCE_HEADING}\n"))
        .unwrap_or_else(|| panic!("README.md has no '{REFERENCE_HEADING}' section"))
        .1;
    let section = section.split("\n## ").next().unwrap();
    let mut rows = Vec::new();
    let mut heading = String::new();
    let mut header: Option<Vec<String>> = None;
    let mut in_fence = false;
    for line in section.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
        }
        if in_fence {
            continue;
        }
        if let Some(title) = line.strip_prefix("### ") {
            heading = title.trim().to_owned();
            header = None;
            continue;
        }
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let row = cells(line);
        let Some(names) = &header else {
            header = Some(row.iter().map(|c| c.to_lowercase()).collect());
            continue;
        };
        if row.iter().all(|c| c.chars().all(|c| c == '-' || c == ':')) {
            continue;
        }
        assert!(
            !heading.is_empty(),
            "a table of the configuration reference has no ### heading"
        );
        let columns: BTreeMap<String, String> = names.iter().cloned().zip(row).collect();
        let first = columns.get(&names[0]).cloned().unwrap_or_default();
        let fields = code_spans(&first);
        assert!(
            !fields.is_empty(),
            "README.md, {heading}: a row whose first column names no field in backticks: {line}"
        );
        for field in fields {
            rows.push((
                heading.clone(),
                field,
                Row {
                    heading: heading.clone(),
                    columns: columns.clone(),
                },
            ));
        }
    }
    rows
}

/// The schema tables a README heading documents: "" for "Top level", else the list fields it
/// names in backticks (`tenants[]` names `tenants`).
fn tables_of_heading(heading: &str) -> Vec<String> {
    if heading == TOP_LEVEL {
        return vec![String::new()];
    }
    code_spans(heading)
        .into_iter()
        .map(|name| name.trim_end_matches("[]").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Comparing one documented field with its schema.

/// The integers written in `text`, thousands separators allowed (`604,800`).
fn integers_in(text: &str) -> Vec<i64> {
    let mut found = Vec::new();
    let mut digits = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            let continues_with_separator = chars.peek() == Some(&',') && {
                let mut ahead = chars.clone();
                ahead.next();
                ahead.peek().is_some_and(char::is_ascii_digit)
            };
            if continues_with_separator {
                chars.next();
            }
            continue;
        }
        if !digits.is_empty() {
            found.push(digits.parse().unwrap());
            digits.clear();
        }
    }
    if !digits.is_empty() {
        found.push(digits.parse().unwrap());
    }
    found
}

fn is_guid_pattern(node: &Value) -> bool {
    node["pattern"]
        .as_str()
        .is_some_and(|p| p.contains("[0-9A-Fa-f]{8}-"))
}

/// What is wrong with the documented field `name`, compared with its schema.
fn differences(name: &str, row: &Row, field: &SchemaField) -> Vec<String> {
    let mut problems = Vec::new();
    let at = format!("README.md, {}, `{name}`", row.heading);
    let node = &field.node;

    if let Some(written) = row.columns.get("type") {
        let says_required = written.split([',', ' ']).any(|word| word == "required");
        if says_required != field.required {
            problems.push(format!(
                "{at}: the type column {} `required`, the schema {}",
                if says_required {
                    "says"
                } else {
                    "does not say"
                },
                if field.required {
                    "requires it"
                } else {
                    "does not require it"
                }
            ));
        }
        let json_type = kind(node);
        if let Some(values) = node["enum"].as_array() {
            let expected: BTreeSet<String> = values
                .iter()
                .filter(|v| !v.is_null())
                .map(Value::to_string)
                .collect();
            let documented: BTreeSet<String> = code_spans(written).into_iter().collect();
            if documented != expected {
                problems.push(format!(
                    "{at}: documented values {documented:?}, the schema's {expected:?}"
                ));
            }
        } else {
            let word = match json_type.as_str() {
                "integer" => Some("integer"),
                "boolean" => Some("bool"),
                "array" => Some("list"),
                "object" => Some("object"),
                "string" if is_guid_pattern(node) => Some("GUID"),
                _ => None,
            };
            match word {
                Some(word) if !written.starts_with(word) => problems.push(format!(
                    "{at}: the type column should start with `{word}` (schema type {json_type}): {written}"
                )),
                None if ["integer", "bool", "list", "object", "GUID"]
                    .iter()
                    .any(|w| written.starts_with(w)) =>
                {
                    problems.push(format!(
                        "{at}: the type column names another type than the schema's {json_type}: {written}"
                    ));
                }
                _ => {}
            }
        }
        if json_type == "integer" {
            let numbers = integers_in(written);
            if let Some(max) = node["maximum"].as_i64() {
                if !numbers.contains(&max) {
                    problems.push(format!(
                        "{at}: the schema's maximum {max} is not in '{written}'"
                    ));
                }
            }
            // A lower bound given by another field (`≥ refresh_seconds`) replaces the number.
            if let Some(min) = node["minimum"].as_i64() {
                if !numbers.contains(&min) && !written.contains('≥') {
                    problems.push(format!(
                        "{at}: the schema's minimum {min} is not in '{written}'"
                    ));
                }
            }
        }
    }

    if let Some(written) = row.columns.get("default") {
        let first = code_spans(written).into_iter().next();
        match (&node["default"], first) {
            (Value::Null, Some(documented)) => {
                // A scalar written as JSON claims to be the schema's default; words, paths and
                // empty lists (`[]`, the same as leaving the field out) do not.
                if serde_json::from_str::<Value>(&documented)
                    .is_ok_and(|v| v.is_number() || v.is_boolean() || v.is_string())
                {
                    problems.push(format!(
                        "{at}: documented default {documented}, the schema has none"
                    ));
                }
            }
            (Value::Null, None) => {}
            (default, documented) => {
                let expected = default.to_string();
                if documented.as_deref() != Some(expected.as_str()) {
                    problems.push(format!(
                        "{at}: the default column should start with `{expected}`: '{written}'"
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn readme_configuration_reference_lists_exactly_the_schema_fields() {
    let schema: Value = serde_json::from_str(&read(SCHEMA_FILE)).unwrap();
    let schema = schema_tables(&schema);
    let documented = readme_tables(&read(README));
    let mut problems = Vec::new();

    // Which schema tables each README heading documents, and the other way round.
    let mut headings_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let headings: BTreeSet<&String> = documented.iter().map(|(h, _, _)| h).collect();
    for heading in &headings {
        for table in tables_of_heading(heading) {
            if !schema.contains_key(&table) {
                problems.push(format!(
                    "README.md, {heading}: `{table}` is not a list of objects in the schema"
                ));
            }
            headings_of
                .entry(table)
                .or_default()
                .push((*heading).clone());
        }
    }
    for table in schema.keys() {
        if !headings_of.contains_key(table) {
            problems.push(format!(
                "the schema's `{table}[]` entries have no table in README.md's configuration reference"
            ));
        }
    }

    // Every documented field exists in a table its heading names, and is described alike.
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (heading, name, row) in &documented {
        if !seen.insert((heading.clone(), name.clone())) {
            problems.push(format!(
                "README.md, {heading}: `{name}` is documented twice"
            ));
        }
        let fields: Vec<&SchemaField> = tables_of_heading(heading)
            .iter()
            .filter_map(|table| schema.get(table)?.get(name))
            .collect();
        if fields.is_empty() {
            problems.push(format!(
                "README.md, {heading}: `{name}` is not a field of the schema"
            ));
        }
        for field in fields {
            problems.extend(differences(name, row, field));
        }
    }

    // Every schema field is documented under a heading that names its table.
    for (table, fields) in &schema {
        for name in fields.keys() {
            let documented_here = headings_of.get(table).is_some_and(|headings| {
                headings
                    .iter()
                    .any(|h| seen.contains(&(h.clone(), name.clone())))
            });
            if !documented_here {
                let place = if table.is_empty() {
                    TOP_LEVEL.to_owned()
                } else {
                    format!("`{table}[]`")
                };
                problems.push(format!(
                    "the schema's field `{name}` ({place}) is not in README.md's configuration reference"
                ));
            }
        }
    }

    // The rules' table documents `allow` and `deny` entries alike: one problem, said once.
    let problems: BTreeSet<String> = problems.into_iter().collect();
    assert!(
        problems.is_empty(),
        "README.md's configuration reference and {SCHEMA_FILE} disagree:\n  {}",
        problems.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn reading_the_reference_finds_every_table() {
    // Guards the reader itself: were it to find nothing, the comparison above would only
    // report the schema's fields as missing; here the README's known fields must be read.
    let documented = readme_tables(&read(README));
    for (heading, field) in [
        (TOP_LEVEL, "clock_skew_seconds"),
        ("`tenants[]`", "jwks.cluster"),
        ("`clients[]`", "upstream_authorization_env"),
    ] {
        assert!(
            documented
                .iter()
                .any(|(h, f, _)| h == heading && f == field),
            "`{field}` not read under '### {heading}'"
        );
    }
    assert!(
        documented
            .iter()
            .any(|(h, f, _)| h.contains("`allow`") && f == "projects"),
        "the rules' table was not read"
    );
}

// ---------------------------------------------------------------------------------------------
// Relative links of the Markdown documentation.

/// The Markdown files whose links are checked: every `.md` of the repository, build outputs
/// (`target/`) and hidden directories (the virtualenv, `.git`) left out.
fn documentation_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|entry| Some(entry.ok()?.path()))
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') || name == "target" || name == "node_modules" {
                continue;
            }
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new(ROOT), &mut files);
    files
}

/// The lines of `text` outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut in_fence = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
                return false;
            }
            !in_fence
        })
        .collect()
}

/// GitHub's anchor for a heading: lowercase; letters, digits, `-` and `_` kept; spaces become
/// `-`; everything else dropped. Repeated headings get `-1`, `-2`, ….
fn anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in prose_lines(text) {
        let Some(title) = line
            .strip_prefix('#')
            .map(|rest| rest.trim_start_matches('#'))
            .filter(|rest| rest.starts_with(' '))
        else {
            continue;
        };
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let count = counts.entry(slug.clone()).or_insert(0);
        anchors.insert(if *count == 0 {
            slug.clone()
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// The targets of the inline links and images on `line` (`[text](target)`), outside code spans.
fn link_targets(line: &str) -> Vec<String> {
    let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join("` `");
    let mut targets = Vec::new();
    let mut rest = prose.as_str();
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(after[..end].trim().to_owned());
        rest = &after[end..];
    }
    targets
}

#[test]
fn relative_links_in_the_documentation_lead_to_files_and_headings_that_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in documentation_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file
            .strip_prefix(ROOT)
            .unwrap_or(&file)
            .display()
            .to_string();
        for line in prose_lines(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let linked = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                if !linked.exists() {
                    broken.push(format!("{name}: ({target}): no such file"));
                    continue;
                }
                if anchor.is_empty() || linked.extension().is_none_or(|e| e != "md") {
                    continue;
                }
                let heading_anchors = anchors(&std::fs::read_to_string(&linked).unwrap());
                if !heading_anchors.contains(anchor) {
                    broken.push(format!("{name}: ({target}): no heading with that anchor"));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the reader broken?"
    );
    assert!(
        broken.is_empty(),
        "broken relative links:\n  {}",
        broken.join("\n  ")
    );
}
