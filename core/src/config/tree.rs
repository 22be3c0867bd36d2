//! The structural pass: HCL text → a tree of blocks and evaluated attribute values, checked
//! against the schema (unknown names, labels, duplicates, missing attributes, types).
//!
//! Every problem becomes a diagnostic and the walk goes on, so one run reports them all.

use hcl_edit::Span as _;
use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::{Block as HclBlock, BlockLabel, Body, Structure};
use hcl_edit::template::{Element, Template};

use super::schema::{self, Attr, Block, Ty};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, SourceFile, Span};
use crate::suggest::closest;

/// An evaluated value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Value>),
    Map(Vec<(String, Span, Value)>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Value {
    pub val: Val,
    pub span: Span,
    /// True when the value is a plain string literal whose characters map one to one onto
    /// the source after the opening quote, so a sub-range can be pointed at exactly.
    pub literal: bool,
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match &self.val {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The span of bytes `range` inside a string literal, or the whole value's span.
    pub fn sub_span(&self, range: std::ops::Range<usize>) -> Span {
        if self.literal {
            let start = self.span.range.start + 1;
            Span::new(self.span.file, start + range.start..start + range.end)
        } else {
            self.span.clone()
        }
    }

    fn kind(&self) -> &'static str {
        match self.val {
            Val::Null => "null",
            Val::Bool(_) => "a bool",
            Val::Num(_) => "a number",
            Val::Str(_) => "a string",
            Val::List(_) => "a list",
            Val::Map(_) => "an object",
        }
    }
}

/// A checked block: its labels, its attributes that are present with the right shape, and
/// its child blocks in source order.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub schema: &'static Block,
    pub ident_span: Span,
    pub labels: Vec<(String, Span)>,
    /// Present attributes: `None` when present but already reported as malformed.
    pub attrs: Vec<(&'static str, Option<Value>)>,
    pub children: Vec<Node>,
}

impl Node {
    pub fn label(&self) -> Option<&(String, Span)> {
        self.labels.first()
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.attrs.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.as_ref())
    }

    /// Whether the attribute was written at all (even if malformed).
    pub fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|(n, _)| *n == name)
    }

    pub fn str(&self, name: &str) -> Option<(&str, &Value)> {
        self.get(name).and_then(|v| v.as_str().map(|s| (s, v)))
    }

    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.schema.name == name)
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.schema.name == name)
    }
}

/// Environment lookups are passed in: core never reads the process environment itself.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(crate) struct Checker<'a> {
    pub diags: &'a mut Diagnostics,
    pub env: EnvLookup<'a>,
    /// Whether every file parsed; rules spanning files only make sense when they did.
    pub complete: bool,
}

fn span(file: FileId, s: Option<std::ops::Range<usize>>) -> Span {
    Span::new(file, s.unwrap_or(0..0))
}

impl Checker<'_> {
    /// Parses and checks all files into one root node (blocks of every file merged).
    pub fn check_files(&mut self, files: &[SourceFile]) -> Node {
        let mut root = Node {
            schema: &schema::ROOT,
            ident_span: Span::new(FileId(0), 0..0),
            labels: Vec::new(),
            attrs: Vec::new(),
            children: Vec::new(),
        };
        let mut parsed_all = true;
        for (i, f) in files.iter().enumerate() {
            let file = FileId(i as u32);
            match hcl_edit::parser::parse_body(&f.text) {
                Ok(body) => self.check_body(file, &body, &mut root),
                Err(e) => {
                    parsed_all = false;
                    self.diags.push(syntax_error(file, &f.text, &e));
                }
            }
        }
        // Required top-level blocks may live in a file that did not parse: say nothing then.
        if parsed_all {
            self.check_required_children(&root, files);
        }
        self.complete = parsed_all;
        root
    }

    fn check_required_children(&mut self, node: &Node, files: &[SourceFile]) {
        for c in node.schema.blocks {
            if c.required && node.children(c.block.name).next().is_none() {
                let (at, what) = if node.schema.name == "configuration" {
                    (
                        Span::new(FileId(0), 0..files.first().map_or(0, |f| first_line_len(&f.text))),
                        "the configuration".to_string(),
                    )
                } else {
                    (node.ident_span.clone(), block_title(node))
                };
                let example = if c.block.labels.is_empty() {
                    format!("{} {{ ... }}", c.block.name)
                } else {
                    format!("{} \"NAME\" {{ ... }}", c.block.name)
                };
                self.diags.push(
                    Diagnostic::error(Code::MissingBlock, "missing block")
                        .label(at, format!("{what} has no `{}` block", c.block.name))
                        .help(format!("add `{example}` ({})", c.block.doc)),
                );
            }
        }
    }

    fn check_body(&mut self, file: FileId, body: &Body, node: &mut Node) {
        let attrs_schema = node.schema.attrs_for(node.label().map(|(l, _)| l.as_str()));
        let mut seen: Vec<(&'static str, Span)> = Vec::new();
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let key = attr.key.as_str();
                    let key_span = span(file, attr.key.span());
                    let Some(def) = attrs_schema.iter().find(|a| a.name == key) else {
                        self.unknown_attribute(node, attrs_schema, key, key_span);
                        continue;
                    };
                    if let Some((_, first)) = seen.iter().find(|(n, _)| *n == def.name) {
                        self.diags.push(
                            Diagnostic::error(Code::DuplicateAttribute, "duplicate attribute")
                                .label(key_span, format!("`{key}` is set a second time here"))
                                .label(first.clone(), "first set here")
                                .help("remove one of the two"),
                        );
                        continue;
                    }
                    seen.push((def.name, key_span));
                    let value = self.eval(file, &attr.value).and_then(|v| self.check_type(def, v));
                    node.attrs.push((def.name, value));
                }
                Structure::Block(block) => self.check_block(file, block, node),
            }
        }
        if node.schema.name != "configuration" {
            for def in attrs_schema.iter().filter(|a| a.required) {
                if !seen.iter().any(|(n, _)| *n == def.name) {
                    self.diags.push(
                        Diagnostic::error(Code::MissingAttribute, "missing attribute")
                            .label(node.ident_span.clone(), format!("{} has no `{}`", block_title(node), def.name))
                            .help(format!("add `{} = ...`: {}", def.name, def.doc)),
                    );
                }
            }
        }
    }

    fn unknown_attribute(&mut self, node: &Node, attrs: &[Attr], key: &str, at: Span) {
        let mut d = Diagnostic::error(Code::UnknownAttribute, "unknown attribute")
            .label(at, format!("`{key}` is not an attribute of {}", block_kind(node)));
        if node.schema.child(key).is_some() {
            d = d.help(format!("`{key}` is a block: write `{key} {{ ... }}`"));
        } else if let Some(s) = closest(key, attrs.iter().map(|a| a.name)) {
            d = d.help(format!("did you mean `{s}`?"));
        } else if attrs.is_empty() {
            d = d.help(format!("{} takes no attributes", block_kind(node)));
        } else {
            d = d.help(format!("expected one of: {}", list(attrs.iter().map(|a| a.name))));
        }
        self.diags.push(d);
    }

    fn check_block(&mut self, file: FileId, block: &HclBlock, parent: &mut Node) {
        let ident = block.ident.as_str();
        let ident_span = span(file, block.ident.span());
        let Some(child) = parent.schema.child(ident) else {
            let mut d = Diagnostic::error(Code::UnknownBlock, "unknown block")
                .label(ident_span, format!("`{ident}` is not a block of {}", block_kind(parent)));
            let attrs = parent.schema.attrs_for(parent.label().map(|(l, _)| l.as_str()));
            if attrs.iter().any(|a| a.name == ident) {
                d = d.help(format!("`{ident}` is an attribute: write `{ident} = ...`"));
            } else if let Some(s) = closest(ident, parent.schema.blocks.iter().map(|c| c.block.name)) {
                d = d.help(format!("did you mean `{s}`?"));
            } else if parent.schema.blocks.is_empty() {
                d = d.help(format!("{} has no nested blocks", block_kind(parent)));
            } else {
                d = d.help(format!("expected one of: {}", list(parent.schema.blocks.iter().map(|c| c.block.name))));
            }
            self.diags.push(d);
            return;
        };
        let schema = child.block;
        let labels: Vec<(String, Span)> = block
            .labels
            .iter()
            .map(|l| {
                let s = match l {
                    BlockLabel::Ident(i) => i.span(),
                    BlockLabel::String(s) => s.span(),
                };
                (l.as_str().to_string(), span(file, s))
            })
            .collect();
        if labels.len() != schema.labels.len() {
            let expected = if schema.labels.is_empty() {
                format!("`{ident}` takes no label: write `{ident} {{ ... }}`")
            } else {
                let names: Vec<String> = schema.labels.iter().map(|l| format!("\"{}\"", l.to_uppercase())).collect();
                format!("write `{ident} {} {{ ... }}`", names.join(" "))
            };
            let at = labels.get(schema.labels.len()).map_or(ident_span.clone(), |(_, s)| s.clone());
            self.diags.push(
                Diagnostic::error(Code::WrongLabels, "wrong number of block labels")
                    .label(at, format!("`{ident}` takes {} label(s), found {}", schema.labels.len(), labels.len()))
                    .help(expected),
            );
            return;
        }
        if !schema.variants.is_empty() {
            let (label, label_span) = &labels[0];
            if !schema.variants.iter().any(|v| v.label == label) {
                let choices = schema.variants.iter().map(|v| v.label);
                let mut d = Diagnostic::error(Code::InvalidValue, format!("unknown {} {}", ident, schema.labels[0]))
                    .label(label_span.clone(), format!("`{label}` is not a supported {ident} {}", schema.labels[0]));
                d = match closest(label, choices.clone()) {
                    Some(s) => d.help(format!("did you mean `{s}`? supported: {}", list(choices))),
                    None => d.help(format!("supported: {}", list(choices))),
                };
                self.diags.push(d);
                return;
            }
        }
        // Same kind and name (or a second unlabelled block) is a duplicate, across files too.
        let key = labels.first().map(|(l, _)| l.as_str());
        // Repeated blocks without a label (`replica`) are never duplicates of each other.
        let same =
            |n: &&Node| !schema.repeats() || (!schema.labels.is_empty() && n.label().map(|(l, _)| l.as_str()) == key);
        if let Some(first) = parent.children(ident).find(same) {
            let d = if schema.repeats() {
                let first_at = first.label().map_or(first.ident_span.clone(), |(_, s)| s.clone());
                Diagnostic::error(Code::DuplicateName, "duplicate name")
                    .label(labels[0].1.clone(), format!("{ident} `{}` is declared a second time here", labels[0].0))
                    .label(first_at, "first declared here")
                    .help(format!("each {ident} needs a name of its own; rename or remove one"))
            } else {
                Diagnostic::error(Code::DuplicateBlock, "duplicate block")
                    .label(ident_span, format!("a second `{ident}` block in {}", block_kind(parent)))
                    .label(first.ident_span.clone(), "first block here")
                    .help(if schema.variants.is_empty() {
                        format!("merge the two `{ident}` blocks into one")
                    } else {
                        format!("keep one `{ident}`: a configuration has a single {ident}")
                    })
            };
            self.diags.push(d);
            return;
        }
        let mut node = Node { schema, ident_span, labels, attrs: Vec::new(), children: Vec::new() };
        self.check_body(file, &block.body, &mut node);
        self.check_required_children(&node, &[]);
        parent.children.push(node);
    }

    fn check_type(&mut self, def: &Attr, v: Value) -> Option<Value> {
        let ok = match (&def.ty, &v.val) {
            (Ty::String, Val::Str(_)) | (Ty::Number, Val::Num(_)) | (Ty::Bool, Val::Bool(_)) => true,
            (Ty::Int, Val::Num(n)) => n.fract() == 0.0,
            (Ty::StringList, Val::List(items)) => {
                let mut ok = true;
                for item in items.iter().filter(|i| !matches!(i.val, Val::Str(_))) {
                    self.diags.push(wrong_type(def.name, "a string", item));
                    ok = false;
                }
                return ok.then_some(v);
            }
            (Ty::RoleCounts, Val::Map(_)) => true,
            (Ty::StringMap, Val::Map(entries)) => {
                let mut ok = true;
                for (_, _, value) in entries.iter().filter(|(_, _, v)| !matches!(v.val, Val::Str(_))) {
                    self.diags.push(wrong_type(def.name, "a string", value));
                    ok = false;
                }
                return ok.then_some(v);
            }
            _ => false,
        };
        if ok {
            return Some(v);
        }
        self.diags.push(wrong_type(def.name, def.ty.describe(), &v));
        None
    }

    /// Evaluates an expression; unsupported forms are reported and yield `None`.
    pub fn eval(&mut self, file: FileId, expr: &Expression) -> Option<Value> {
        let at = span(file, expr.span());
        let val =
            match expr {
                Expression::Null(_) => Val::Null,
                Expression::Bool(b) => Val::Bool(*b.value()),
                Expression::Number(n) => Val::Num(n.value().as_f64().unwrap_or(f64::NAN)),
                Expression::String(s) => {
                    let literal = at.range.len() == s.value().len() + 2;
                    return Some(Value { val: Val::Str(s.value().clone()), span: at, literal });
                }
                Expression::Array(items) => {
                    let mut out = Vec::new();
                    let mut ok = true;
                    for item in items.iter() {
                        match self.eval(file, item) {
                            Some(v) => out.push(v),
                            None => ok = false,
                        }
                    }
                    if !ok {
                        return None;
                    }
                    Val::List(out)
                }
                Expression::Object(obj) => {
                    let mut out: Vec<(String, Span, Value)> = Vec::new();
                    let mut ok = true;
                    for (key, value) in obj.iter() {
                        let (name, key_span) = match key {
                            ObjectKey::Ident(i) => (i.as_str().to_string(), span(file, i.span())),
                            ObjectKey::Expression(e) => match self.eval(file, e) {
                                Some(Value { val: Val::Str(s), span, .. }) => (s, span),
                                Some(other) => {
                                    self.diags.push(
                                        Diagnostic::error(Code::WrongType, "wrong type")
                                            .label(
                                                other.span.clone(),
                                                format!("object keys are names, found {}", other.kind()),
                                            )
                                            .help("write the key as a name: `{ active = 3 }`"),
                                    );
                                    ok = false;
                                    continue;
                                }
                                None => {
                                    ok = false;
                                    continue;
                                }
                            },
                        };
                        if let Some((_, first, _)) = out.iter().find(|(n, _, _)| *n == name) {
                            self.diags.push(
                                Diagnostic::error(Code::DuplicateAttribute, "duplicate attribute")
                                    .label(key_span.clone(), format!("`{name}` is set a second time here"))
                                    .label(first.clone(), "first set here")
                                    .help("remove one of the two"),
                            );
                            ok = false;
                            continue;
                        }
                        match self.eval(file, value.expr()) {
                            Some(v) => out.push((name, key_span, v)),
                            None => ok = false,
                        }
                    }
                    if !ok {
                        return None;
                    }
                    Val::Map(out)
                }
                Expression::StringTemplate(t) => Val::Str(self.template(file, t, &at)?),
                Expression::HeredocTemplate(h) => Val::Str(self.template(file, &h.template, &at)?),
                Expression::Parenthesis(p) => return self.eval(file, p.inner()),
                Expression::FuncCall(call) => return self.call(file, call, at),
                Expression::UnaryOp(op) if op.operator.value() == &hcl_edit::expr::UnaryOperator::Neg => {
                    match self.eval(file, &op.expr)? {
                        Value { val: Val::Num(n), .. } => Val::Num(-n),
                        other => {
                            self.diags.push(Diagnostic::error(Code::WrongType, "wrong type").label(
                                other.span.clone(),
                                format!("only numbers can be negated, found {}", other.kind()),
                            ));
                            return None;
                        }
                    }
                }
                Expression::Variable(_) | Expression::Traversal(_) => {
                    return self.unsupported(at, "references to variables or other values");
                }
                Expression::Conditional(_) => return self.unsupported(at, "conditional expressions"),
                Expression::ForExpr(_) => return self.unsupported(at, "`for` expressions"),
                Expression::UnaryOp(_) | Expression::BinaryOp(_) => return self.unsupported(at, "operators"),
            };
        Some(Value { val, span: at, literal: false })
    }

    fn unsupported(&mut self, at: Span, what: &str) -> Option<Value> {
        self.diags.push(
            Diagnostic::error(Code::UnsupportedExpression, "unsupported expression")
                .label(at, format!("{what} are not supported here"))
                .help("write the value itself, or read it from the environment with `env(\"NAME\")`"),
        );
        None
    }

    fn template(&mut self, file: FileId, template: &Template, at: &Span) -> Option<String> {
        let mut out = String::new();
        let mut ok = true;
        for element in template.iter() {
            match element {
                Element::Literal(s) => out.push_str(s.value()),
                Element::Interpolation(i) => match self.eval(file, &i.expr) {
                    Some(Value { val: Val::Str(s), .. }) => out.push_str(&s),
                    Some(Value { val: Val::Num(n), .. }) => out.push_str(&n.to_string()),
                    Some(other) => {
                        self.diags.push(wrong_type("the interpolation", "a string or a number", &other));
                        ok = false;
                    }
                    None => ok = false,
                },
                Element::Directive(d) => {
                    let s = match &**d {
                        hcl_edit::template::Directive::If(i) => i.span(),
                        hcl_edit::template::Directive::For(f) => f.span(),
                    };
                    self.unsupported(span(file, s.or(Some(at.range.clone()))), "template directives");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn call(&mut self, file: FileId, call: &hcl_edit::expr::FuncCall, at: Span) -> Option<Value> {
        let name = call.name.name.as_str();
        let name_span = span(file, call.name.name.span());
        if !call.name.namespace.is_empty() || name != "env" {
            let full: Vec<&str> = call.name.namespace.iter().map(|n| n.as_str()).chain([name]).collect();
            self.diags.push(
                Diagnostic::error(Code::UnknownFunction, "unknown function")
                    .label(name_span, format!("`{}` is not a function drplan knows", full.join("::")))
                    .help("the only function is `env(\"NAME\")` or `env(\"NAME\", \"default\")`"),
            );
            return None;
        }
        let args: Vec<&Expression> = call.args.iter().collect();
        if args.is_empty() || args.len() > 2 {
            self.diags.push(
                Diagnostic::error(Code::WrongArguments, "wrong number of arguments")
                    .label(at, format!("`env` takes 1 or 2 arguments, found {}", args.len()))
                    .help("write `env(\"NAME\")` or `env(\"NAME\", \"default\")`"),
            );
            return None;
        }
        let mut strings = Vec::new();
        for arg in &args {
            match self.eval(file, arg)? {
                Value { val: Val::Str(s), .. } => strings.push(s),
                other => {
                    self.diags.push(wrong_type("the argument of `env`", "a string", &other));
                    return None;
                }
            }
        }
        let var = &strings[0];
        match ((self.env)(var), strings.get(1)) {
            (Some(v), _) => Some(Value { val: Val::Str(v), span: at, literal: false }),
            (None, Some(default)) => Some(Value { val: Val::Str(default.clone()), span: at, literal: false }),
            (None, None) => {
                self.diags.push(
                    Diagnostic::error(Code::EnvUnset, "environment variable not set")
                        .label(at, format!("`{var}` is not set in the environment"))
                        .help(format!("export {var}=..., or give a default: `env(\"{var}\", \"...\")`")),
                );
                None
            }
        }
    }
}

fn wrong_type(what: &str, expected: &str, found: &Value) -> Diagnostic {
    let subject = if what.starts_with("the ") { what.to_string() } else { format!("`{what}`") };
    Diagnostic::error(Code::WrongType, "wrong type")
        .label(found.span.clone(), format!("{subject} must be {expected}, found {}", found.kind()))
        .help(match expected {
            "a string" => "quote the value: \"...\"".to_string(),
            other => format!("write {other}"),
        })
}

fn syntax_error(file: FileId, text: &str, e: &hcl_edit::parser::Error) -> Diagnostic {
    let offset = e.location().offset().min(text.len());
    if let Some(open) = crate::fmt::unterminated_string(text).filter(|o| *o <= offset) {
        let end = text[open..].find('\n').map_or(text.len(), |n| open + n);
        return Diagnostic::error(Code::Syntax, "syntax error")
            .label(Span::new(file, open..end), "this string is not closed before the end of the line")
            .help("add the closing `\"`; strings cannot span lines (use a heredoc `<<EOT` for text on several lines)");
    }
    let end = text[offset..].chars().next().map_or(offset, |c| offset + c.len_utf8());
    // The parser's message may span lines ("expected ..."); keep its first line as the label.
    let message = e.message().lines().next().unwrap_or("invalid syntax").trim().to_string();
    if message.contains("redefined attribute") {
        return Diagnostic::error(Code::DuplicateAttribute, "duplicate attribute")
            .label(
                Span::new(file, offset..offset + ident_len(&text[offset..])),
                "this attribute is already set in this block",
            )
            .help("remove one of the two");
    }
    let label = if message.is_empty() { "invalid syntax here".to_string() } else { message };
    Diagnostic::error(Code::Syntax, "syntax error")
        .label(Span::new(file, offset..end), label)
        .help("check for unbalanced braces, brackets or quotes just before this point")
}

fn ident_len(text: &str) -> usize {
    text.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-').count().max(1)
}

fn first_line_len(text: &str) -> usize {
    text.find('\n').unwrap_or(text.len())
}

pub(crate) fn block_title(node: &Node) -> String {
    match node.label() {
        Some((l, _)) => format!("{} `{l}`", node.schema.name),
        None => format!("the `{}` block", node.schema.name),
    }
}

fn block_kind(node: &Node) -> String {
    if node.schema.name == "configuration" {
        return "the configuration".to_string();
    }
    match (node.schema.variants.is_empty(), node.label()) {
        (false, Some((l, _))) => format!("{} \"{l}\"", node.schema.name),
        _ => format!("`{}`", node.schema.name),
    }
}

pub(crate) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}
