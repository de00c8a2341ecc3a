//! JQL, as far as a gateway must understand it to prove that a search stays inside a set of
//! projects: a small, total scanner ([`scan`]) and a checker ([`project_restrictions`]) that
//! finds the `project` clauses of the query's top-level conjunction.
//!
//! The checker never evaluates the query. It proves one thing: every issue the query can return
//! lies in the projects named by a clause `project = KEY` or `project in (KEY, …)` that is an
//! operand of the top-level `AND` (directly, or inside parentheses that hold only a
//! conjunction). Whatever the other operands say, they can only narrow the result.
//!
//! Everything the checker cannot prove that way is refused as [`JqlProblem`]: a top-level `OR`,
//! a project clause under `NOT`, `project != X`, `project in someFunction()`, a value that is
//! not a project key or a numeric id (a project name), an empty query, unbalanced quotes or
//! parentheses, and characters outside quotes that Jira reserves. The scanner is deliberately
//! stricter than Jira's: a query Jira would read one way must never be read another way here.
//!
//! Tokens: words (unquoted runs of ASCII letters, digits and `_ . - [ ]`), quoted strings
//! (`"…"` or `'…'`, with the backslash escapes `\" \' \\ \n \r \t \ ` (space) and `\uXXXX`),
//! the comparison operators `= != > >= < <= ~ !~`, parentheses, commas, and the connectives
//! `AND`/`&&`/`&`, `OR`/`||`/`|`, `NOT`/`!` (keywords in any letter case, only when unquoted).

use std::fmt;

/// One JQL token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An unquoted word, as written.
    Word(String),
    /// A quoted string, escapes decoded.
    Quoted(String),
    /// A comparison operator (`=`, `!=`, `>`, `>=`, `<`, `<=`, `~`, `!~`).
    Operator(&'static str),
    /// `(`.
    Open,
    /// `)`.
    Close,
    /// `,`.
    Comma,
    /// `AND`, `&&` or `&`.
    And,
    /// `OR`, `||` or `|`.
    Or,
    /// `NOT` or `!`.
    Not,
}

/// Why a query does not prove a project restriction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JqlProblem {
    /// The query is empty (Jira would return everything the caller may see).
    Empty,
    /// A quoted string is not closed.
    UnterminatedString,
    /// A backslash escape Jira does not define, or a malformed `\u` escape.
    BadEscape,
    /// A character outside quotes that is not part of a word, operator or connective.
    UnexpectedCharacter(char),
    /// Parentheses do not balance.
    UnbalancedParentheses,
    /// A connective without an operand on one side, or `ORDER BY` in the wrong place.
    Malformed,
    /// The top level is a disjunction.
    TopLevelOr,
    /// No operand of the top-level conjunction restricts `project` to keys.
    NoProjectClause,
}

impl fmt::Display for JqlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JqlProblem::Empty => f.write_str("the query is empty"),
            JqlProblem::UnterminatedString => f.write_str("a quoted string is not closed"),
            JqlProblem::BadEscape => f.write_str("a quoted string has an unknown escape"),
            JqlProblem::UnexpectedCharacter(c) => {
                write!(f, "{c:?} outside quotes is not understood")
            }
            JqlProblem::UnbalancedParentheses => f.write_str("parentheses do not balance"),
            JqlProblem::Malformed => f.write_str("a connective lacks an operand"),
            JqlProblem::TopLevelOr => f.write_str("the top level of the query is an OR"),
            JqlProblem::NoProjectClause => f.write_str(
                "no operand of the top-level AND is `project = KEY` or `project in (KEY, ...)`",
            ),
        }
    }
}

/// A value of a `project` clause that names a project the gateway can check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectValue {
    /// A project key (letter first, then letters, digits or `_`), uppercased.
    Key(String),
    /// A numeric project id, as written.
    Id(String),
}

/// One `project` clause of the top-level conjunction: every result is in one of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    /// The projects the clause admits.
    pub values: Vec<ProjectValue>,
    /// The clause as the scanner read it, for explanations (`project in (OPS, SEC)`).
    pub clause: String,
}

/// Splits a query into tokens, or says why it cannot.
pub fn scan(query: &str) -> Result<Vec<Token>, JqlProblem> {
    let mut tokens = Vec::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            ' ' | '\t' | '\n' | '\r' => continue,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '=' => Token::Operator("="),
            '~' => Token::Operator("~"),
            '>' | '<' => {
                let equals = chars.next_if_eq(&'=').is_some();
                Token::Operator(match (c, equals) {
                    ('>', false) => ">",
                    ('>', true) => ">=",
                    ('<', false) => "<",
                    _ => "<=",
                })
            }
            '!' => {
                if chars.next_if_eq(&'=').is_some() {
                    Token::Operator("!=")
                } else if chars.next_if_eq(&'~').is_some() {
                    Token::Operator("!~")
                } else {
                    Token::Not
                }
            }
            '&' => {
                chars.next_if_eq(&'&');
                Token::And
            }
            '|' => {
                chars.next_if_eq(&'|');
                Token::Or
            }
            '"' | '\'' => Token::Quoted(quoted(&mut chars, c)?),
            c if is_word_char(c) => {
                let mut word = String::from(c);
                while let Some(next) = chars.next_if(|n| is_word_char(*n)) {
                    word.push(next);
                }
                if word.eq_ignore_ascii_case("and") {
                    Token::And
                } else if word.eq_ignore_ascii_case("or") {
                    Token::Or
                } else if word.eq_ignore_ascii_case("not") {
                    Token::Not
                } else {
                    Token::Word(word)
                }
            }
            other => return Err(JqlProblem::UnexpectedCharacter(other)),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// Characters of an unquoted word. Jira reserves most other punctuation (it must be quoted), so
/// anything else outside quotes is refused rather than guessed at.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']')
}

/// The rest of a quoted string opened by `quote`, escapes decoded.
fn quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    quote: char,
) -> Result<String, JqlProblem> {
    let mut text = String::new();
    loop {
        match chars.next() {
            None => return Err(JqlProblem::UnterminatedString),
            Some(c) if c == quote => return Ok(text),
            Some('\\') => text.push(match chars.next() {
                Some(c @ ('"' | '\'' | '\\' | ' ')) => c,
                Some('n') => '\n',
                Some('r') => '\r',
                Some('t') => '\t',
                Some('u') => unicode_escape(chars)?,
                None => return Err(JqlProblem::UnterminatedString),
                Some(_) => return Err(JqlProblem::BadEscape),
            }),
            Some(c) => text.push(c),
        }
    }
}

/// The four hex digits after `\u`, as a character (a surrogate is refused).
fn unicode_escape(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<char, JqlProblem> {
    let mut code: u32 = 0;
    for _ in 0..4 {
        let digit = chars
            .next()
            .and_then(|c| c.to_digit(16))
            .ok_or(JqlProblem::BadEscape)?;
        code = (code << 4) | digit;
    }
    char::from_u32(code).ok_or(JqlProblem::BadEscape)
}

/// The `project` clauses of the query's top-level conjunction (at least one), or why the query
/// does not prove a restriction.
pub fn project_restrictions(query: &str) -> Result<Vec<Restriction>, JqlProblem> {
    let tokens = scan(query)?;
    let condition = without_order_by(&tokens)?;
    if condition.is_empty() {
        return Err(JqlProblem::Empty);
    }
    check_balance(condition)?;
    let mut restrictions = Vec::new();
    collect_conjuncts(condition, &mut restrictions)?;
    if restrictions.is_empty() {
        return Err(JqlProblem::NoProjectClause);
    }
    Ok(restrictions)
}

/// The condition before a top-level `ORDER BY`; what follows it may only be field names,
/// `ASC`/`DESC` and commas. `order` and `by` are reserved words in JQL: anywhere else in the
/// condition (`order = by`) they are refused rather than guessed at, so the checker and Jira
/// cannot disagree on where the condition ends.
fn without_order_by(tokens: &[Token]) -> Result<&[Token], JqlProblem> {
    let position = tokens.windows(2).position(|pair| {
        matches!(pair, [Token::Word(order), Token::Word(by)]
            if order.eq_ignore_ascii_case("order") && by.eq_ignore_ascii_case("by"))
    });
    let condition = match position {
        Some(position) => tokens.get(..position).unwrap_or_default(),
        None => tokens,
    };
    let reserved = |t: &Token| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("order") || w.eq_ignore_ascii_case("by"));
    if condition.iter().any(reserved) {
        return Err(JqlProblem::Malformed);
    }
    let Some(position) = position else {
        return Ok(tokens);
    };
    let (condition, order) = tokens.split_at(position);
    let fields = order.get(2..).unwrap_or_default();
    let only_fields = !fields.is_empty()
        && fields
            .iter()
            .all(|t| matches!(t, Token::Word(_) | Token::Quoted(_) | Token::Comma));
    if !only_fields || depth_at_end(condition) != Some(0) {
        return Err(JqlProblem::Malformed);
    }
    Ok(condition)
}

/// The parenthesis depth after `tokens`, or `None` when it goes negative.
fn depth_at_end(tokens: &[Token]) -> Option<usize> {
    let mut depth: usize = 0;
    for token in tokens {
        match token {
            Token::Open => depth = depth.checked_add(1)?,
            Token::Close => depth = depth.checked_sub(1)?,
            _ => {}
        }
    }
    Some(depth)
}

fn check_balance(tokens: &[Token]) -> Result<(), JqlProblem> {
    match depth_at_end(tokens) {
        Some(0) => Ok(()),
        _ => Err(JqlProblem::UnbalancedParentheses),
    }
}

/// Splits a balanced token run at its depth-0 `AND`s; refuses a depth-0 `OR` and empty
/// operands. Collects the project clauses among the operands, descending into operands that
/// are wholly parenthesised conjunctions.
fn collect_conjuncts(tokens: &[Token], out: &mut Vec<Restriction>) -> Result<(), JqlProblem> {
    let mut depth: usize = 0;
    let mut start: usize = 0;
    let mut operands: Vec<&[Token]> = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        match token {
            Token::Open => depth = depth.saturating_add(1),
            Token::Close => depth = depth.saturating_sub(1),
            Token::Or if depth == 0 => return Err(JqlProblem::TopLevelOr),
            Token::And if depth == 0 => {
                operands.push(tokens.get(start..index).unwrap_or_default());
                start = index.saturating_add(1);
            }
            _ => {}
        }
    }
    operands.push(tokens.get(start..).unwrap_or_default());
    for operand in operands {
        if operand.is_empty() {
            return Err(JqlProblem::Malformed);
        }
        if let Some(inner) = parenthesised(operand) {
            match collect_conjuncts(inner, out) {
                // A parenthesised disjunction is a legitimate operand; it just proves nothing.
                Err(JqlProblem::TopLevelOr) => {}
                other => other?,
            }
        } else if let Some(restriction) = project_clause(operand) {
            out.push(restriction);
        }
    }
    Ok(())
}

/// The inside of `( … )` when the outer parentheses enclose the whole run.
fn parenthesised(tokens: &[Token]) -> Option<&[Token]> {
    let (Token::Open, Token::Close) = (tokens.first()?, tokens.last()?) else {
        return None;
    };
    let inner = tokens.get(1..tokens.len().checked_sub(1)?)?;
    // `(a) AND (b)` starts and ends with parentheses that are not a pair.
    let mut depth: usize = 0;
    for token in inner {
        match token {
            Token::Open => depth = depth.checked_add(1)?,
            Token::Close => depth = depth.checked_sub(1)?,
            _ => {}
        }
    }
    (depth == 0).then_some(inner)
}

/// `project = V` or `project in (V, …)` with every value a key or an id; anything else is not a
/// restriction.
fn project_clause(tokens: &[Token]) -> Option<Restriction> {
    let (field, rest) = tokens.split_first()?;
    let is_project = match field {
        Token::Word(name) | Token::Quoted(name) => name.eq_ignore_ascii_case("project"),
        _ => false,
    };
    if !is_project {
        return None;
    }
    let values = match rest {
        [Token::Operator("="), value] => vec![project_value(value)?],
        [Token::Word(keyword), Token::Open, list @ .., Token::Close]
            if keyword.eq_ignore_ascii_case("in") =>
        {
            list_values(list)?
        }
        _ => return None,
    };
    let listed = values
        .iter()
        .map(|v| match v {
            ProjectValue::Key(k) => k.as_str(),
            ProjectValue::Id(id) => id.as_str(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let clause = if matches!(rest.first(), Some(Token::Operator("="))) {
        format!("project = {listed}")
    } else {
        format!("project in ({listed})")
    };
    Some(Restriction { values, clause })
}

/// `V, V, …` — at least one value, separated by single commas.
fn list_values(list: &[Token]) -> Option<Vec<ProjectValue>> {
    let mut values = Vec::new();
    let mut expect_value = true;
    for token in list {
        if expect_value {
            values.push(project_value(token)?);
        } else if *token != Token::Comma {
            return None;
        }
        expect_value = !expect_value;
    }
    (!values.is_empty() && !expect_value).then_some(values)
}

/// A project key or numeric id; anything else (a name, `EMPTY`, a function) is not provable.
fn project_value(token: &Token) -> Option<ProjectValue> {
    let text = match token {
        Token::Word(text) | Token::Quoted(text) => text,
        _ => return None,
    };
    if text.eq_ignore_ascii_case("empty") || text.eq_ignore_ascii_case("null") {
        return None;
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(ProjectValue::Id(text.clone()));
    }
    super::projects::is_project_key_any_case(text)
        .then(|| ProjectValue::Key(text.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(query: &str) -> Result<Vec<Vec<String>>, JqlProblem> {
        project_restrictions(query).map(|rs| {
            rs.into_iter()
                .map(|r| {
                    r.values
                        .into_iter()
                        .map(|v| match v {
                            ProjectValue::Key(k) => k,
                            ProjectValue::Id(id) => format!("#{id}"),
                        })
                        .collect()
                })
                .collect()
        })
    }

    fn one(keys: &[&str]) -> Result<Vec<Vec<String>>, JqlProblem> {
        Ok(vec![keys.iter().map(|k| k.to_string()).collect()])
    }

    #[test]
    fn scanner_reads_every_token_kind() {
        assert_eq!(
            scan("a = \"b c\" && (d != 'e') || !f, g >= 1 <= 2 < > ~ !~ & | and OR Not").unwrap(),
            vec![
                Token::Word("a".into()),
                Token::Operator("="),
                Token::Quoted("b c".into()),
                Token::And,
                Token::Open,
                Token::Word("d".into()),
                Token::Operator("!="),
                Token::Quoted("e".into()),
                Token::Close,
                Token::Or,
                Token::Not,
                Token::Word("f".into()),
                Token::Comma,
                Token::Word("g".into()),
                Token::Operator(">="),
                Token::Word("1".into()),
                Token::Operator("<="),
                Token::Word("2".into()),
                Token::Operator("<"),
                Token::Operator(">"),
                Token::Operator("~"),
                Token::Operator("!~"),
                Token::And,
                Token::Or,
                Token::And,
                Token::Or,
                Token::Not,
            ]
        );
    }

    #[test]
    fn scanner_decodes_escapes_in_quoted_strings() {
        assert_eq!(
            scan(r#""a\"b\\c\u004fPS\ \n" 'it\'s'"#).unwrap(),
            vec![
                Token::Quoted("a\"b\\cOPS \n".into()),
                Token::Quoted("it's".into())
            ]
        );
    }

    #[test]
    fn scanner_refuses_what_it_does_not_understand() {
        assert_eq!(scan("\"open"), Err(JqlProblem::UnterminatedString));
        assert_eq!(scan("'open\\'"), Err(JqlProblem::UnterminatedString));
        assert_eq!(scan("\"a\\x\""), Err(JqlProblem::BadEscape));
        assert_eq!(scan("\"\\u12\""), Err(JqlProblem::BadEscape));
        assert_eq!(scan("\"\\ud800\""), Err(JqlProblem::BadEscape));
        for c in [
            '+', ';', '?', '*', '/', '%', '^', '$', '#', '@', '{', '}', '\\', 'é', '\0',
        ] {
            assert_eq!(
                scan(&format!("project = OPS {c}")),
                Err(JqlProblem::UnexpectedCharacter(c)),
                "{c:?}"
            );
        }
    }

    #[test]
    fn project_equals_key_is_a_restriction_in_any_spelling() {
        for query in [
            "project = OPS",
            "project=OPS",
            "PROJECT = ops",
            "Project = \"OPS\"",
            "\"project\" = 'Ops'",
            "  project\t=\nOPS  ",
        ] {
            assert_eq!(keys(query), one(&["OPS"]), "{query}");
        }
    }

    #[test]
    fn project_in_list_is_a_restriction() {
        assert_eq!(keys("project in (OPS, SEC)"), one(&["OPS", "SEC"]));
        assert_eq!(keys("project IN (\"OPS\",'sec')"), one(&["OPS", "SEC"]));
        assert_eq!(keys("project in (10000)"), one(&["#10000"]));
    }

    #[test]
    fn restriction_holds_inside_a_top_level_conjunction() {
        assert_eq!(
            keys("status = Open AND project = OPS AND assignee = currentUser() ORDER BY created DESC"),
            one(&["OPS"])
        );
        assert_eq!(
            keys("(project = OPS && status = Open) & (a = 1 OR b = 2) order by key, \"x\" asc"),
            one(&["OPS"])
        );
        assert_eq!(
            keys("((project = OPS)) AND NOT status = Done"),
            one(&["OPS"])
        );
        assert_eq!(keys("project = OPS AND project = SEC").unwrap().len(), 2);
    }

    #[test]
    fn queries_that_prove_nothing_are_refused() {
        let cases: &[(&str, JqlProblem)] = &[
            ("", JqlProblem::Empty),
            ("   ", JqlProblem::Empty),
            ("ORDER BY created", JqlProblem::Empty),
            ("project = OPS OR project = SEC", JqlProblem::TopLevelOr),
            ("project = OPS || status = Open", JqlProblem::TopLevelOr),
            ("status = Open | project = OPS", JqlProblem::TopLevelOr),
            ("project = OPS AND a = 1 OR b = 2", JqlProblem::TopLevelOr),
            ("(project = OPS OR a = 1)", JqlProblem::NoProjectClause),
            ("NOT project = SEC", JqlProblem::NoProjectClause),
            ("!(project = SEC)", JqlProblem::NoProjectClause),
            ("project != SEC", JqlProblem::NoProjectClause),
            ("project not in (SEC)", JqlProblem::NoProjectClause),
            (
                "project in projectsLeadByUser()",
                JqlProblem::NoProjectClause,
            ),
            (
                "project in (OPS, currentProject())",
                JqlProblem::NoProjectClause,
            ),
            ("project = \"Operations Team\"", JqlProblem::NoProjectClause),
            ("project = EMPTY", JqlProblem::NoProjectClause),
            ("project is EMPTY", JqlProblem::NoProjectClause),
            ("project in ()", JqlProblem::NoProjectClause),
            ("project in (OPS,)", JqlProblem::NoProjectClause),
            ("project in (OPS SEC)", JqlProblem::NoProjectClause),
            ("project = OPS-1", JqlProblem::NoProjectClause),
            ("project ~ OPS", JqlProblem::NoProjectClause),
            ("project was OPS", JqlProblem::NoProjectClause),
            ("project was (OPS)", JqlProblem::NoProjectClause),
            ("project notin (SEC)", JqlProblem::NoProjectClause),
            ("key = OPS-1", JqlProblem::NoProjectClause),
            ("project = O", JqlProblem::NoProjectClause),
            ("(project = OPS", JqlProblem::UnbalancedParentheses),
            ("project = OPS)", JqlProblem::UnbalancedParentheses),
            (") project = OPS (", JqlProblem::UnbalancedParentheses),
            ("project = \"OPS", JqlProblem::UnterminatedString),
            ("project = OPS AND", JqlProblem::Malformed),
            ("AND project = OPS", JqlProblem::Malformed),
            ("project = OPS AND AND a = 1", JqlProblem::Malformed),
            ("project = OPS &&& a = 1", JqlProblem::Malformed),
            ("project = OPS ORDER BY", JqlProblem::Malformed),
            ("project = OPS ORDER BY (a)", JqlProblem::Malformed),
            ("project = OPS ORDER BY a OR b", JqlProblem::Malformed),
            ("(project = OPS ORDER BY a)", JqlProblem::Malformed),
            ("project = OPS AND order = by", JqlProblem::Malformed),
            ("order = x AND project = OPS", JqlProblem::Malformed),
            ("project = OPS AND by = 1", JqlProblem::Malformed),
            // Found by the jql_scope fuzz target: a bare `order` that is no `ORDER BY`.
            (
                "a er 'x' () AND keLeadByser() = 1 AND order  =by AND project = OPS",
                JqlProblem::Malformed,
            ),
        ];
        for (query, problem) in cases {
            assert_eq!(keys(query), Err(problem.clone()), "{query}");
        }
    }

    #[test]
    fn quoted_connectives_are_values_not_connectives() {
        assert_eq!(
            keys("project = OPS AND summary ~ \"a OR b\""),
            one(&["OPS"])
        );
        assert_eq!(
            keys("project = \"OPS\\\" OR project = \\\"SEC\""),
            Err(JqlProblem::NoProjectClause)
        );
    }

    #[test]
    fn every_problem_says_what_is_wrong_in_its_own_words() {
        let texts = [
            JqlProblem::Empty,
            JqlProblem::UnterminatedString,
            JqlProblem::BadEscape,
            JqlProblem::UnexpectedCharacter(';'),
            JqlProblem::UnbalancedParentheses,
            JqlProblem::Malformed,
            JqlProblem::TopLevelOr,
            JqlProblem::NoProjectClause,
        ]
        .map(|problem| problem.to_string());
        assert_eq!(texts[0], "the query is empty");
        assert_eq!(texts[3], "';' outside quotes is not understood");
        assert_eq!(texts[6], "the top level of the query is an OR");
        assert!(texts[7].contains("`project = KEY`"));
        for (index, text) in texts.iter().enumerate() {
            assert!(!text.is_empty());
            assert!(!texts[..index].contains(text), "{text}");
        }
    }

    #[test]
    fn explanation_names_the_clause() {
        let restrictions = project_restrictions("a = 1 and project in (ops, 'SEC')").unwrap();
        assert_eq!(restrictions[0].clause, "project in (OPS, SEC)");
        let restrictions = project_restrictions("\"project\" = 'ops'").unwrap();
        assert_eq!(restrictions[0].clause, "project = OPS");
    }
}
