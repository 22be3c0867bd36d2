//! Canonical layout for configuration files, in the manner of `terraform fmt`: two-space
//! indentation from bracket depth, one space around `=` and after `,`, `=` signs and
//! trailing comments aligned within runs of consecutive lines, at most one blank line in a
//! row. Comments, strings and heredocs are kept byte for byte.
//!
//! It works on tokens rather than the syntax tree so nothing the tree does not model
//! (comments, blank lines) can be lost; the file must parse first, so the tokens are sound.

use crate::diagnostics::Diagnostic;
use crate::source::{FileId, SourceFile};

/// Formats one file. A file that does not parse is returned as its diagnostics instead.
pub fn format(text: &str) -> Result<String, Vec<Diagnostic>> {
    let loaded = crate::config::load(&[SourceFile::new("", text)], &|_| Some(String::new()));
    let syntax: Vec<Diagnostic> = loaded
        .diagnostics
        .into_iter()
        .filter(|d| d.code == crate::Code::Syntax || d.code == crate::Code::DuplicateAttribute)
        .filter(|d| d.primary_span().is_none_or(|s| s.file == FileId(0)))
        .collect();
    if hcl_edit::parser::parse_body(text).is_err() {
        return Err(syntax);
    }
    let formatted = layout(text);
    // Layout only moves whitespace between tokens. Should a token ever be misread, refuse
    // rather than write a file that means something else.
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    if squeeze(&formatted) != squeeze(text) || hcl_edit::parser::parse_body(&formatted).is_err() {
        return Err(vec![Diagnostic::error(crate::Code::Syntax, "cannot format this file safely").help(
            "the file is valid but drplan could not lay it out without changing it; it is left as it is (please report this with the file)",
        )]);
    }
    Ok(formatted)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    /// A quoted string, a heredoc or a block comment: copied verbatim.
    Opaque,
    Comment,
    Open,
    Close,
    Comma,
    Equals,
    Op,
    Newline,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
}

/// Splits HCL text into tokens. Never fails: unknown bytes become one-character words.
fn lex(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        let kind = match c {
            b'\n' => {
                i += 1;
                Kind::Newline
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = line_end(bytes, i);
                Kind::Comment
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = line_end(bytes, i);
                Kind::Comment
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(bytes.len(), |e| i + 2 + e + 2);
                Kind::Opaque
            }
            b'"' => {
                i = string_end(bytes, i + 1).unwrap_or(bytes.len());
                Kind::Opaque
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') && heredoc_marker(&text[i..]).is_some() => {
                i = heredoc_end(text, i);
                Kind::Opaque
            }
            b'{' | b'[' | b'(' => {
                i += 1;
                Kind::Open
            }
            b'}' | b']' | b')' => {
                i += 1;
                Kind::Close
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            b'=' if !matches!(bytes.get(i + 1), Some(b'=') | Some(b'>')) => {
                i += 1;
                Kind::Equals
            }
            b'=' | b'!' | b'<' | b'>' | b'&' | b'|' | b'+' | b'-' | b'*' | b'/' | b'%' | b'?' | b':' => {
                i += 1;
                if matches!(
                    (c, bytes.get(i)),
                    (b'=' | b'!' | b'<' | b'>', Some(b'='))
                        | (b'&', Some(b'&'))
                        | (b'|', Some(b'|'))
                        | (b'=', Some(b'>'))
                ) {
                    i += 1;
                }
                Kind::Op
            }
            _ if is_word(c) => {
                // HCL identifiers may contain `-` (`a-b` is one name); numbers may not.
                let ident = !c.is_ascii_digit();
                while i < bytes.len() && (is_word(bytes[i]) || (ident && bytes[i] == b'-')) {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                i += text[i..].chars().next().map_or(1, char::len_utf8);
                Kind::Word
            }
        };
        out.push(Token { kind, text: &text[start..i] });
    }
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b >= 0x80
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |p| from + p)
}

/// The index just past the closing quote of a string starting at `from` (after its opening
/// quote), following `${ ... }` interpolations with nested strings. `None` if unterminated.
fn string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'\n' => return None,
            b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => {
                let mut depth = 0usize;
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b'"' => i = string_end(bytes, i + 1)? - 1,
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

fn heredoc_marker(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("<<")?;
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
    (len > 0 && rest[len..].starts_with(['\n', '\r'])).then(|| &rest[..len])
}

/// The end of a heredoc starting at `start`: just before the newline after its marker line.
fn heredoc_end(text: &str, start: usize) -> usize {
    let Some(marker) = heredoc_marker(&text[start..]) else { return start + 2 };
    let mut pos = start + line_end(text.as_bytes(), start) - start;
    while pos < text.len() {
        let line_start = pos + 1;
        let end = line_end(text.as_bytes(), line_start.min(text.len()));
        if text[line_start.min(text.len())..end].trim() == marker {
            return end;
        }
        pos = end;
    }
    text.len()
}

/// Where an unterminated string starts, if a line ends inside one: parsers tend to report
/// such a mistake far from where it was made.
pub(crate) fn unterminated_string(text: &str) -> Option<usize> {
    lex(text)
        .iter()
        .find(|t| t.kind == Kind::Opaque && t.text.starts_with('"') && string_end(t.text.as_bytes(), 1).is_none())
        .map(|t| t.text.as_ptr() as usize - text.as_ptr() as usize)
}

struct Line<'a> {
    depth: usize,
    tokens: Vec<Token<'a>>,
    /// `key =` lines are aligned on their `=`.
    assign: bool,
}

fn layout(text: &str) -> String {
    let tokens = lex(text);
    let mut lines: Vec<Line> = Vec::new();
    let mut depth = 0usize;
    let mut current: Vec<Token> = Vec::new();
    fn flush<'a>(current: &mut Vec<Token<'a>>, lines: &mut Vec<Line<'a>>, depth: &mut usize) {
        let leading_closes = current.iter().take_while(|t| t.kind == Kind::Close).count();
        let line_depth = depth.saturating_sub(leading_closes);
        for t in current.iter() {
            match t.kind {
                Kind::Open => *depth += 1,
                Kind::Close => *depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        let assign = current.len() >= 2 && current[0].kind == Kind::Word && current[1].kind == Kind::Equals;
        lines.push(Line { depth: line_depth, tokens: std::mem::take(current), assign });
    }
    for t in tokens {
        if t.kind == Kind::Newline {
            flush(&mut current, &mut lines, &mut depth);
        } else {
            current.push(t);
        }
    }
    if !current.is_empty() {
        flush(&mut current, &mut lines, &mut depth);
    }

    // Render each line's code and trailing comment apart, then align runs.
    let mut rendered: Vec<(String, String, Option<&str>, bool)> = Vec::new(); // indent+key, rest, comment, assign
    for line in &lines {
        let indent = "  ".repeat(line.depth);
        let (code, comment) = match line.tokens.last() {
            Some(t) if t.kind == Kind::Comment && line.tokens.len() > 1 => {
                (&line.tokens[..line.tokens.len() - 1], Some(t.text.trim_end()))
            }
            _ => (&line.tokens[..], None),
        };
        if line.assign {
            let key = format!("{indent}{}", code[0].text);
            rendered.push((key, join(&code[1..]), comment, true));
        } else {
            let body = join(code);
            let body =
                if code.len() == 1 && code[0].kind == Kind::Comment { body.trim_end().to_string() } else { body };
            rendered.push((
                if body.is_empty() { String::new() } else { format!("{indent}{body}") },
                String::new(),
                comment,
                false,
            ));
        }
    }

    let n = rendered.len();
    let mut key_width = vec![0usize; n];
    let mut i = 0;
    while i < n {
        if !rendered[i].3 {
            i += 1;
            continue;
        }
        let mut j = i;
        // A run: consecutive `key =` lines at one depth; a multi-line value ends it.
        while j < n && rendered[j].3 && lines[j].depth == lines[i].depth {
            j += 1;
            if lines[j - 1].tokens.iter().filter(|t| t.kind == Kind::Open).count()
                != lines[j - 1].tokens.iter().filter(|t| t.kind == Kind::Close).count()
            {
                break;
            }
        }
        let width = rendered[i..j].iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        key_width[i..j].iter_mut().for_each(|w| *w = width);
        i = j;
    }
    let code: Vec<String> = rendered
        .iter()
        .enumerate()
        .map(
            |(i, (head, rest, _, assign))| {
                if *assign { format!("{head:<w$} {rest}", w = key_width[i]) } else { head.clone() }
            },
        )
        .collect();
    let mut out_lines: Vec<String> = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        if rendered[i].2.is_none() {
            out_lines.push(code[i].clone());
            i += 1;
            continue;
        }
        let mut j = i;
        while j < n && rendered[j].2.is_some() && lines[j].depth == lines[i].depth {
            j += 1;
        }
        let width = code[i..j].iter().map(|c| c.chars().count()).max().unwrap_or(0);
        for k in i..j {
            out_lines.push(format!("{:<width$} {}", code[k], rendered[k].2.unwrap_or_default()));
        }
        i = j;
    }

    let mut out = String::with_capacity(text.len());
    let mut blank = true; // no blank lines at the top of a file
    for line in out_lines {
        let line = line.trim_end();
        if line.is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
        } else {
            out.push_str(line);
            out.push('\n');
            blank = false;
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Joins a line's tokens with canonical spacing.
fn join(tokens: &[Token<'_>]) -> String {
    let mut s = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 && space_between(&tokens[i - 1], t, tokens.get(i.wrapping_sub(2))) {
            s.push(' ');
        }
        s.push_str(t.text);
    }
    s
}

fn space_between(prev: &Token<'_>, next: &Token<'_>, before_prev: Option<&Token<'_>>) -> bool {
    match (prev.kind, next.kind) {
        (_, Kind::Comma) => false,
        (Kind::Open, Kind::Close) => false,
        // `{ a = 1 }` keeps inner spaces; `[a]` and `f(x)` do not.
        (Kind::Open, _) => prev.text == "{",
        (_, Kind::Close) => next.text == "}",
        // Calls and indexes attach: `env("X")`, `list[0]`.
        (Kind::Word, Kind::Open) => next.text == "{",
        (Kind::Close, Kind::Open) => next.text == "{",
        // Unary minus and not: `-1`, `!enabled`.
        (Kind::Op, _)
            if (prev.text == "-" || prev.text == "!")
                && before_prev.is_none_or(|b| matches!(b.kind, Kind::Equals | Kind::Open | Kind::Comma | Kind::Op)) =>
        {
            false
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::{format, unterminated_string};

    fn fmt(s: &str) -> String {
        format(s).expect("parses")
    }

    #[test]
    fn indents_aligns_and_spaces() {
        let input = "region \"a\"{\ncloud=\"aws\"\n      role =   \"active\"   # serves\nendpoint=\"x.example.com\"\ncompute \"n\" {\ncount={active=3,standby=1}\n}\n}\n";
        let expected = "region \"a\" {\n  cloud    = \"aws\"\n  role     = \"active\" # serves\n  endpoint = \"x.example.com\"\n  compute \"n\" {\n    count = { active = 3, standby = 1 }\n  }\n}\n";
        assert_eq!(fmt(input), expected);
        assert_eq!(fmt(expected), expected);
    }

    #[test]
    fn keeps_comments_strings_and_lists() {
        let input = "# top\n\n\n\nfailover {\n  // why\n  order = [\n\"a\",   # first\n    \"b\",\n  ]\n  /* block\n     comment */\n  x = env(\"A\" , \"d  d\")\n  y = -1\n}\n\n";
        let out = fmt(input);
        assert_eq!(
            out,
            "# top\n\nfailover {\n  // why\n  order = [\n    \"a\", # first\n    \"b\",\n  ]\n  /* block\n     comment */\n  x = env(\"A\", \"d  d\")\n  y = -1\n}\n"
        );
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn aligns_trailing_comments_in_runs() {
        let out = fmt("a {\n  rto = \"2h\" # one\n  uptime = 99.9   # two\n}\n");
        assert_eq!(out, "a {\n  rto    = \"2h\" # one\n  uptime = 99.9 # two\n}\n");
    }

    #[test]
    fn heredocs_are_verbatim() {
        let input = "a {\n  b = <<EOT\n   keep   this\nEOT\n}\n";
        assert_eq!(fmt(input), input);
    }

    #[test]
    fn refuses_what_does_not_parse() {
        assert!(format("a {\n").is_err());
    }

    #[test]
    fn finds_unterminated_strings() {
        assert_eq!(unterminated_string("a = \"ok\"\nb = \"open\nc = 1\n"), Some(13));
        assert_eq!(unterminated_string("a = \"${x(\"y\")}\"\n"), None);
    }
}
