//! Model assertions: business rules, written in a small expression language, that override a model's decisions and scores or flag rows.
//!
//! Pure: rule text in, a [`RuleSet`] out ([`parse`]); names and types checked against the columns ([`check`]); a [`Batch`] and
//! its score column in, per-rule matches and per-row overrides out ([`apply`]). Evaluation is vectorised: each expression is
//! computed for all rows at once, column by column, so a rule costs a few passes over its columns whatever the row count.
//!
//! # The language
//!
//! One rule per line, `<condition> => <action>`; blank lines and `#` comments (to the end of the line, outside strings) are
//! skipped. Keywords are case-insensitive.
//!
//! ```text
//! rule      = condition "=>" action
//! action    = "decision" "=" ("0" | "1" | "true" | "false")
//!           | "score" "=" ["-"] NUMBER
//!           | "flag" STRING
//! condition = conj { "or" conj }
//! conj      = neg { "and" neg }
//! neg       = "not" neg | predicate
//! predicate = sum [ ("<" | "<=" | ">" | ">=" | "==" | "!=") sum        (no chaining: a < b < c is refused)
//!                 | ["not"] "in" "[" literal { "," literal } [","] "]"
//!                 | "between" sum "and" sum                            (inclusive)
//!                 | "is" ["not"] "missing" ]
//! sum       = product { ("+" | "-") product }                          (precedence climbing, left-associative)
//! product   = unary { ("*" | "/") unary }
//! unary     = "-" unary | primary
//! primary   = NUMBER | STRING | "true" | "false" | "score" | NAME | `any name` | "(" condition ")"
//! literal   = ["-"] NUMBER | STRING | "true" | "false"
//! ```
//!
//! Precedence, loosest first: `or`, `and`, `not`, comparisons and the `in`/`between`/`is` tests, `+ -`, `* /`, unary `-`.
//! Numbers are `12`, `1.5`, `.5`, `1e-3`; strings are double-quoted with `\"` and `\\` as the only escapes; names are
//! `[A-Za-z_][A-Za-z0-9_.]*` or anything but a backtick between backticks. The bare word `score` is the model score being
//! evaluated (the caller names its column); `` `score` `` in backticks is a data column called "score".
//!
//! # Types
//!
//! Three kinds of value: numbers, text and conditions (true/false). [`check`] refuses, before anything runs:
//! comparing a number with text; ordering text (`<`, `between` on text: "10" < "9" as text, so only `==`, `!=` and `in`);
//! arithmetic on text or conditions; a number or text where a condition is expected (write `flag_col == 1`); the empty string
//! as a literal (it is how text stores "missing": use `is missing`); `between` with constant bounds in the wrong order.
//! `true`/`false` compare with numbers as 1/0 (boolean columns arrive as 1/0 numbers), with `==` and `!=` only.
//!
//! # Missing values
//!
//! A missing number is NaN, a missing text the empty string. Two-valued, SQL-like: every comparison and test involving a
//! missing value is false — `<`, `==`, and also `!=`, `between`, `in` and `not in`. So `x != 3` and `x not in [3]` are false
//! for a missing `x`, while `not (x == 3)` and `not (x in [3])` are true. `is missing` / `is not missing` test it directly.
//! Arithmetic with a missing operand is missing; division by zero is missing.
//!
//! # Conflicts
//!
//! Rules run in order, like a firewall. For each row the first matching `decision` rule sets the decision and the first
//! matching `score` rule sets the score; later rules of the same kind still count the row in their `touched` rows, and in
//! `shadowed` (and in `conflicts` when they would have set a different value), but change nothing. Flags accumulate (a label
//! once per row). A decision override and a score override are independent: how they combine with the model's threshold is the
//! caller's call (the natural reading: a decision override wins over the thresholded, possibly overridden, score).
//!
//! # Bounds
//!
//! Rule text ≤ 64 KiB, ≤ 500 rules, nesting ≤ 64 levels (parentheses, `not`, unary minus and the expression tree itself; no
//! recursion deeper than that, so hostile input cannot overflow the stack), string literals and names ≤ 1 KiB, `in` lists
//! ≤ 1000 items, flag labels ≤ 100 characters without control characters. Errors show at most the offending line, cut to
//! 200 characters around the error, and quote at most 40 characters of any token.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Serialize;

use super::names::closest;
use crate::models::{Batch, Values};

/// Most bytes of rule text.
pub const MAX_SOURCE: usize = 64 * 1024;
/// Most rules in a set.
pub const MAX_RULES: usize = 500;
/// Deepest nesting of an expression (parentheses, `not`, unary minus, operators).
pub const MAX_DEPTH: usize = 64;
/// Most bytes in a string literal or a backticked name.
pub const MAX_STRING: usize = 1024;
/// Most items in an `in` list.
pub const MAX_LIST: usize = 1000;
/// Most characters in a flag label.
pub const MAX_FLAG: usize = 100;

/// Words with a meaning in conditions; a column named like one needs backticks.
const KEYWORDS: [&str; 10] = ["and", "or", "not", "in", "between", "is", "missing", "true", "false", "score"];

/// A parsed rule set, in the order written (order matters: see the module docs on conflicts).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

/// One rule: when `condition` holds for a row, `action` applies to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rule {
    /// 1-based line of the rule in the source.
    pub line: usize,
    /// The source line as written (error columns count in it).
    pub text: String,
    /// When the rule applies to a row.
    pub condition: Expr,
    /// What it does then.
    pub action: Action,
}

impl RuleSet {
    /// The data columns the rules read (not `score`), sorted: what a caller must load to apply them.
    pub fn columns(&self) -> Vec<String> {
        fn walk(e: &Expr, out: &mut std::collections::BTreeSet<String>) {
            match &e.node {
                Node::Column(c) => {
                    out.insert(c.clone());
                }
                Node::Number(_) | Node::Text(_) | Node::Bool(_) | Node::Score => {}
                Node::Neg(a) | Node::Not(a) | Node::Missing { value: a, .. } => walk(a, out),
                Node::Arith(_, a, b) | Node::Compare(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::In { value, list, .. } => {
                    walk(value, out);
                    list.iter().for_each(|x| walk(x, out));
                }
                Node::Between { value, low, high } => [value, low, high].into_iter().for_each(|x| walk(x, out)),
                Node::And(v) | Node::Or(v) => v.iter().for_each(|x| walk(x, out)),
            }
        }
        let mut out = std::collections::BTreeSet::new();
        self.rules.iter().for_each(|r| walk(&r.condition, &mut out));
        out.into_iter().collect()
    }
}

/// What a rule does to the rows it matches.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Override the thresholded decision (`decision = 0` / `decision = 1`).
    Decision(bool),
    /// Mark the rows with a label; the decision is unchanged.
    Flag(String),
    /// Override the score itself (the caller clamps it as its task requires).
    Score(f64),
}

/// Where an expression starts in its line (1-based column; 0 when built by hand).
///
/// Ignored by equality: two expressions that differ only in where they were written are the same expression.
#[derive(Clone, Copy, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Pos(pub usize);

impl PartialEq for Pos {
    fn eq(&self, _: &Pos) -> bool {
        true
    }
}

/// An expression node and its position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Expr {
    /// Where it was written (for errors).
    pub at: Pos,
    /// What it is.
    pub node: Node,
}

/// The kinds of expression.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// A number literal (never negative from the parser: `-3` is `Neg(3)`).
    Number(f64),
    /// A string literal.
    Text(String),
    /// `true` or `false`.
    Bool(bool),
    /// A data column.
    Column(String),
    /// The model score (the column the caller names in [`apply`]).
    Score,
    /// Unary minus.
    Neg(Box<Expr>),
    /// `left op right` on numbers.
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `left op right`: numbers with any operator, text and conditions with `==`/`!=`.
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    /// `value in [list]`, or `value not in [list]` when `negated`; the items are literals.
    In { value: Box<Expr>, list: Vec<Expr>, negated: bool },
    /// `value between low and high`, bounds included.
    Between { value: Box<Expr>, low: Box<Expr>, high: Box<Expr> },
    /// `value is missing`, or `value is not missing` when `negated`.
    Missing { value: Box<Expr>, negated: bool },
    /// `not condition`.
    Not(Box<Expr>),
    /// Two or more conditions, all of which hold (nested `and`s are flattened).
    And(Vec<Expr>),
    /// Two or more conditions, one of which holds (nested `or`s are flattened).
    Or(Vec<Expr>),
}

/// Arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// The type of a data column, as [`check`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Numeric,
    Text,
}

/// A rule set that cannot be parsed, checked or applied, with where.
///
/// Displays as `line 3, column 14: expected a value after 'and'`, then the line (at most 200 characters around the error)
/// and a caret under the column. `line` 0 is about the whole set or the data, with no position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleError {
    /// 1-based line, 0 for the whole set.
    pub line: usize,
    /// 1-based column (in characters), 0 for none.
    pub column: usize,
    pub message: String,
    /// The offending line, cut to 200 characters around the column.
    pub excerpt: String,
    /// Where the caret goes in `excerpt` (0-based, in characters).
    pub caret: usize,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}", self.message);
        }
        write!(f, "line {}, column {}: {}\n  {}\n  {}^", self.line, self.column, self.message, self.excerpt, " ".repeat(self.caret))
    }
}

impl std::error::Error for RuleError {}

impl RuleError {
    fn whole(message: impl Into<String>) -> RuleError {
        RuleError {
            line: 0,
            column: 0,
            message: message.into(),
            excerpt: String::new(),
            caret: 0,
        }
    }

    fn at(line: usize, text: &str, fault: Fault) -> RuleError {
        let (excerpt, caret) = excerpt(text, fault.col);
        RuleError {
            line,
            column: fault.col,
            message: fault.msg,
            excerpt,
            caret,
        }
    }
}

/// A window of at most 200 characters of `text` around `column`, control characters blanked (so the caret lines up and
/// nothing odd reaches a terminal), and the caret's offset in it.
fn excerpt(text: &str, column: usize) -> (String, usize) {
    const WIDTH: usize = 200;
    let chars: Vec<char> = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let col0 = column.saturating_sub(1).min(chars.len());
    if chars.len() <= WIDTH {
        return (chars.into_iter().collect(), col0);
    }
    let start = col0.saturating_sub(WIDTH / 2).min(chars.len() - WIDTH);
    let end = start + WIDTH;
    let mut s = String::new();
    if start > 0 {
        s.push('…');
    }
    s.extend(&chars[start..end]);
    if end < chars.len() {
        s.push('…');
    }
    (s, col0 - start + usize::from(start > 0))
}

/// At most 40 characters of user text, for messages.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

/// An error inside one line, before the line number and text are attached.
#[derive(Debug)]
struct Fault {
    col: usize,
    msg: String,
}

fn fault(col: usize, msg: impl Into<String>) -> Fault {
    Fault { col, msg: msg.into() }
}

// ---------------------------------------------------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    /// A bare word: a keyword or a column name.
    Word(String),
    /// A backticked name: always a column.
    Quoted(String),
    Sym(&'static str),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    /// 1-based column of the first character.
    col: usize,
    /// 1-based column just after the last character.
    end: usize,
    /// The characters as written, for messages.
    text: String,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Splits one line into tokens, stopping at a `#` comment.
fn lex(line: &str) -> Result<Vec<Token>, Fault> {
    let chars: Vec<char> = line.chars().collect();
    let n = chars.len();
    let digit_at = |j: usize| chars.get(j).is_some_and(|c| c.is_ascii_digit());
    let mut out = vec![];
    let mut i = 0;
    while i < n {
        let c = chars[i];
        let col = i + 1;
        let start = i;
        let tok = match c {
            ' ' | '\t' => {
                i += 1;
                continue;
            }
            '#' => break,
            _ if c.is_ascii_digit() || (c == '.' && digit_at(i + 1)) => {
                while digit_at(i) {
                    i += 1;
                }
                if chars.get(i) == Some(&'.') {
                    i += 1;
                    while digit_at(i) {
                        i += 1;
                    }
                }
                if matches!(chars.get(i), Some('e' | 'E')) {
                    let sign = usize::from(matches!(chars.get(i + 1), Some('+' | '-')));
                    if !digit_at(i + 1 + sign) {
                        return Err(fault(col, "malformed number: an exponent needs digits, as in 1e-3"));
                    }
                    i += 1 + sign;
                    while digit_at(i) {
                        i += 1;
                    }
                }
                if chars.get(i).is_some_and(|&c| is_name_char(c)) {
                    let bad: String = chars[start..=i].iter().collect();
                    return Err(fault(col, format!("malformed number '{}'", clip(&bad))));
                }
                let text: String = chars[start..i].iter().collect();
                let v: f64 = text.parse().map_err(|_| fault(col, format!("malformed number '{}'", clip(&text))))?;
                if !v.is_finite() {
                    return Err(fault(col, format!("number '{}' is out of range", clip(&text))));
                }
                Tok::Num(v)
            }
            _ if is_name_start(c) => {
                while chars.get(i).is_some_and(|&c| is_name_char(c)) {
                    i += 1;
                }
                Tok::Word(chars[start..i].iter().collect())
            }
            '`' => {
                let Some(len) = chars[i + 1..].iter().position(|&c| c == '`') else {
                    return Err(fault(col, "unterminated name: a closing ` is missing"));
                };
                let name: String = chars[i + 1..i + 1 + len].iter().collect();
                if name.is_empty() {
                    return Err(fault(col, "empty name between backticks"));
                }
                if name.len() > MAX_STRING {
                    return Err(fault(col, format!("name longer than {MAX_STRING} bytes")));
                }
                if name.chars().any(char::is_control) {
                    return Err(fault(col, "control character in a name"));
                }
                i += len + 2;
                Tok::Quoted(name)
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(fault(col, "unterminated string: a closing \" is missing")),
                        Some('"') => break,
                        Some('\\') => match chars.get(i + 1) {
                            Some(&e @ ('"' | '\\')) => {
                                s.push(e);
                                i += 2;
                            }
                            Some(&e) => return Err(fault(i + 1, format!("unknown escape '\\{}' in a string; only \\\" and \\\\ are allowed", clip(&e.to_string())))),
                            None => return Err(fault(col, "unterminated string: a closing \" is missing")),
                        },
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                    if s.len() > MAX_STRING {
                        return Err(fault(col, format!("string longer than {MAX_STRING} bytes")));
                    }
                }
                i += 1;
                Tok::Str(s)
            }
            _ => {
                let two: String = chars[i..(i + 2).min(n)].iter().collect();
                let sym = match two.as_str() {
                    "<=" => Some("<="),
                    ">=" => Some(">="),
                    "==" => Some("=="),
                    "!=" => Some("!="),
                    "=>" => Some("=>"),
                    _ => None,
                };
                if let Some(sym) = sym {
                    i += 2;
                    Tok::Sym(sym)
                } else {
                    let sym = match c {
                        '(' => "(",
                        ')' => ")",
                        '[' => "[",
                        ']' => "]",
                        ',' => ",",
                        '+' => "+",
                        '-' => "-",
                        '*' => "*",
                        '/' => "/",
                        '<' => "<",
                        '>' => ">",
                        '=' => "=",
                        '!' => return Err(fault(col, "unexpected '!': write 'not' to negate, '!=' for not equal")),
                        '&' => return Err(fault(col, "unexpected '&': write 'and'")),
                        '|' => return Err(fault(col, "unexpected '|': write 'or'")),
                        '\'' => return Err(fault(col, "unexpected ': strings are in double quotes, names with odd characters in backticks")),
                        _ if c.is_control() => return Err(fault(col, format!("unexpected control character U+{:04X}", u32::from(c)))),
                        _ => return Err(fault(col, format!("unexpected character '{c}'"))),
                    };
                    i += 1;
                    Tok::Sym(sym)
                }
            }
        };
        out.push(Token {
            tok,
            col,
            end: i + 1,
            text: chars[start..i].iter().collect(),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------------------------
// Parsing

/// Parses rule text (syntax only; [`check`] does names and types).
pub fn parse(source: &str) -> Result<RuleSet, RuleError> {
    if source.len() > MAX_SOURCE {
        return Err(RuleError::whole(format!("the rule set is {} bytes; at most {MAX_SOURCE}", source.len())));
    }
    let mut rules = vec![];
    for (i, raw) in source.split('\n').enumerate() {
        let text = raw.strip_suffix('\r').unwrap_or(raw);
        let line = i + 1;
        let toks = lex(text).map_err(|f| RuleError::at(line, text, f))?;
        if toks.is_empty() {
            continue;
        }
        if rules.len() == MAX_RULES {
            return Err(RuleError::at(line, text, fault(toks[0].col, format!("more than {MAX_RULES} rules"))));
        }
        let eol = toks.last().map_or(1, |t| t.end);
        let mut p = Parser { toks: &toks, pos: 0, nesting: 0, eol };
        let (condition, action) = p.rule().map_err(|f| RuleError::at(line, text, f))?;
        rules.push(Rule {
            line,
            text: text.to_string(),
            condition,
            action,
        });
    }
    Ok(RuleSet { rules })
}

/// Parses and checks in one go.
pub fn compile(source: &str, columns: &BTreeMap<String, ColumnType>) -> Result<RuleSet, RuleError> {
    let set = parse(source)?;
    check(&set, columns)?;
    Ok(set)
}

/// An expression and the depth of its tree.
type Parsed = Result<(Expr, usize), Fault>;

fn make(col: usize, node: Node, depth: usize) -> Parsed {
    if depth > MAX_DEPTH {
        return Err(fault(col, format!("expression nested too deeply (more than {MAX_DEPTH} levels); split the rule or use 'in [...]'")));
    }
    Ok((Expr { at: Pos(col), node }, depth))
}

struct Parser<'t> {
    toks: &'t [Token],
    pos: usize,
    /// How many parentheses, `not`s and unary minuses we are inside: bounds the recursion before any node exists.
    nesting: usize,
    /// The column just after the line's last token.
    eol: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn peek_tok(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.pos + ahead).map(|t| &t.tok)
    }

    fn is_kw_at(&self, ahead: usize, kw: &str) -> bool {
        matches!(self.peek_tok(ahead), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.is_kw_at(0, kw)
    }

    fn is_sym(&self, sym: &str) -> bool {
        matches!(self.peek_tok(0), Some(Tok::Sym(s)) if *s == sym)
    }

    /// Moves past the current token; its column.
    fn bump(&mut self) -> usize {
        let col = self.here();
        self.pos += 1;
        col
    }

    /// The current token's column, or the end of the line.
    fn here(&self) -> usize {
        self.peek().map_or(self.eol, |t| t.col)
    }

    fn after_prev(&self) -> String {
        match self.pos.checked_sub(1).and_then(|p| self.toks.get(p)) {
            Some(t) => format!(" after '{}'", clip(&t.text)),
            None => String::new(),
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(t) => format!(", found '{}'", clip(&t.text)),
            None => String::new(),
        }
    }

    fn expected(&self, what: &str) -> Fault {
        fault(self.here(), format!("expected {what}{}{}", self.after_prev(), self.found()))
    }

    fn enter(&mut self) -> Result<(), Fault> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(fault(self.here(), format!("expression nested too deeply (more than {MAX_DEPTH} levels)")));
        }
        Ok(())
    }

    fn rule(&mut self) -> Result<(Expr, Action), Fault> {
        if self.is_sym("=>") {
            return Err(fault(self.here(), "expected a condition before '=>'"));
        }
        let (condition, _) = self.condition()?;
        match self.peek() {
            Some(t) if t.tok == Tok::Sym("=>") => {
                self.pos += 1;
            }
            None => return Err(fault(self.eol, "expected '=>' and an action after the condition")),
            Some(t) => {
                let is_action = matches!(&t.tok, Tok::Word(w) if ["decision", "flag", "score"].iter().any(|a| w.eq_ignore_ascii_case(a)));
                let msg = if is_action {
                    format!("expected '=>' before the action '{}'", clip(&t.text))
                } else {
                    format!("unexpected '{}' after the condition; expected 'and', 'or' or '=>'", clip(&t.text))
                };
                return Err(fault(t.col, msg));
            }
        }
        let action = self.action()?;
        if let Some(t) = self.peek() {
            return Err(fault(t.col, format!("unexpected '{}' after the action", clip(&t.text))));
        }
        Ok((condition, action))
    }

    fn action(&mut self) -> Result<Action, Fault> {
        const ACTIONS: &str = "decision = 0|1, score = <number> or flag \"label\"";
        let word = match self.peek_tok(0) {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            None => return Err(fault(self.eol, format!("expected an action after '=>': {ACTIONS}"))),
            Some(_) => String::new(),
        };
        let col = self.here();
        match word.as_str() {
            "decision" => {
                self.bump();
                self.assign("decision")?;
                let d = match self.peek_tok(0) {
                    Some(Tok::Num(v)) if *v == 0.0 || *v == 1.0 => *v == 1.0,
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => w.eq_ignore_ascii_case("true"),
                    _ => return Err(fault(self.here(), format!("a decision is 0 or 1{}", self.found()))),
                };
                self.bump();
                Ok(Action::Decision(d))
            }
            "score" => {
                self.bump();
                self.assign("score")?;
                let sign = if self.is_sym("-") {
                    self.bump();
                    -1.0
                } else {
                    1.0
                };
                match self.peek_tok(0) {
                    Some(Tok::Num(v)) => {
                        let v = sign * v;
                        self.bump();
                        Ok(Action::Score(v))
                    }
                    _ => Err(self.expected("a number")),
                }
            }
            "flag" => {
                self.bump();
                let Some(Tok::Str(label)) = self.peek_tok(0) else {
                    return Err(fault(self.here(), format!("expected a quoted label after 'flag', as in flag \"review\"{}", self.found())));
                };
                let label = label.clone();
                if label.trim().is_empty() {
                    return Err(fault(self.here(), "empty flag label"));
                }
                if label.chars().count() > MAX_FLAG {
                    return Err(fault(self.here(), format!("flag label longer than {MAX_FLAG} characters")));
                }
                if label.chars().any(char::is_control) {
                    return Err(fault(self.here(), "control character in a flag label"));
                }
                self.bump();
                Ok(Action::Flag(label))
            }
            _ => Err(fault(
                col,
                format!("unknown action '{}'; expected {ACTIONS}", clip(&self.peek().map_or(String::new(), |t| t.text.clone()))),
            )),
        }
    }

    fn assign(&mut self, what: &str) -> Result<(), Fault> {
        if self.is_sym("=") {
            self.bump();
            Ok(())
        } else if self.is_sym("==") {
            Err(fault(self.here(), format!("an action sets a value with '=' ({what} = …); '==' compares values in a condition")))
        } else {
            Err(self.expected("'='"))
        }
    }

    fn condition(&mut self) -> Parsed {
        self.chain("or", Parser::conjunction)
    }

    fn conjunction(&mut self) -> Parsed {
        self.chain("and", Parser::negation)
    }

    /// `item {kw item}`, flattened into one n-ary node (so a long chain of `and`s is one level deep, not one per term).
    fn chain(&mut self, kw: &str, item: fn(&mut Self) -> Parsed) -> Parsed {
        let (first, mut depth) = item(self)?;
        if !self.is_kw(kw) {
            return Ok((first, depth));
        }
        let at = first.at.0;
        let mut items = vec![];
        let push = |e: Expr, items: &mut Vec<Expr>| match e.node {
            Node::And(v) if kw == "and" => items.extend(v),
            Node::Or(v) if kw == "or" => items.extend(v),
            _ => items.push(e),
        };
        push(first, &mut items);
        while self.is_kw(kw) {
            self.bump();
            let (e, d) = item(self)?;
            depth = depth.max(d);
            push(e, &mut items);
        }
        let node = if kw == "and" { Node::And(items) } else { Node::Or(items) };
        make(at, node, depth + 1)
    }

    fn negation(&mut self) -> Parsed {
        if !self.is_kw("not") {
            return self.predicate();
        }
        self.enter()?;
        let col = self.bump();
        let (e, d) = self.negation()?;
        self.nesting -= 1;
        make(col, Node::Not(Box::new(e)), d + 1)
    }

    fn predicate(&mut self) -> Parsed {
        let (left, dl) = self.sum(1)?;
        let col = self.here();
        if let Some(op) = self.cmp_op() {
            self.bump();
            let (right, dr) = self.sum(1)?;
            if self.cmp_op().is_some() {
                return Err(fault(self.here(), "comparisons do not chain: write 'a < b and b < c'"));
            }
            return make(col, Node::Compare(op, Box::new(left), Box::new(right)), dl.max(dr) + 1);
        }
        if self.is_sym("=") {
            return Err(fault(col, "'=' sets a value in an action; to compare, write '=='"));
        }
        if self.is_kw("in") || (self.is_kw("not") && self.is_kw_at(1, "in")) {
            let negated = self.is_kw("not");
            self.pos += 1 + usize::from(negated);
            let list = self.list()?;
            return make(col, Node::In { value: Box::new(left), list, negated }, dl + 1);
        }
        if self.is_kw("not") {
            return Err(fault(
                col,
                "'not' after a value must be followed by 'in'; to negate a test, put 'not' before it: not (x between 1 and 2)",
            ));
        }
        if self.is_kw("between") {
            self.bump();
            let (low, d1) = self.sum(1)?;
            if !self.is_kw("and") {
                return Err(self.expected("'and' between the bounds of 'between'"));
            }
            self.bump();
            let (high, d2) = self.sum(1)?;
            return make(
                col,
                Node::Between {
                    value: Box::new(left),
                    low: Box::new(low),
                    high: Box::new(high),
                },
                dl.max(d1).max(d2) + 1,
            );
        }
        if self.is_kw("is") {
            self.bump();
            let negated = self.is_kw("not");
            if negated {
                self.bump();
            }
            if !self.is_kw("missing") {
                return Err(self.expected("'missing'"));
            }
            self.bump();
            return make(col, Node::Missing { value: Box::new(left), negated }, dl + 1);
        }
        Ok((left, dl))
    }

    fn cmp_op(&self) -> Option<CmpOp> {
        match self.peek_tok(0) {
            Some(Tok::Sym("<")) => Some(CmpOp::Lt),
            Some(Tok::Sym("<=")) => Some(CmpOp::Le),
            Some(Tok::Sym(">")) => Some(CmpOp::Gt),
            Some(Tok::Sym(">=")) => Some(CmpOp::Ge),
            Some(Tok::Sym("==")) => Some(CmpOp::Eq),
            Some(Tok::Sym("!=")) => Some(CmpOp::Ne),
            _ => None,
        }
    }

    fn list(&mut self) -> Result<Vec<Expr>, Fault> {
        if !self.is_sym("[") {
            return Err(self.expected("a list such as [1, 2]"));
        }
        let open = self.bump();
        let mut items = vec![];
        loop {
            if self.is_sym("]") && !items.is_empty() {
                self.bump();
                return Ok(items);
            }
            if items.len() == MAX_LIST {
                return Err(fault(self.here(), format!("more than {MAX_LIST} items in a list")));
            }
            let col = self.here();
            let node = match self.peek_tok(0) {
                Some(Tok::Num(v)) => Node::Number(*v),
                Some(Tok::Str(s)) => Node::Text(s.clone()),
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => Node::Bool(w.eq_ignore_ascii_case("true")),
                Some(Tok::Sym("-")) if matches!(self.peek_tok(1), Some(Tok::Num(_))) => {
                    self.bump();
                    let Some(Tok::Num(v)) = self.peek_tok(0) else { return Err(self.expected("a number")) };
                    let number = Expr {
                        at: Pos(self.here()),
                        node: Node::Number(*v),
                    };
                    Node::Neg(Box::new(number))
                }
                Some(Tok::Sym("]")) => return Err(fault(col, "empty list")),
                None => return Err(fault(col, format!("unclosed list: expected ']' to close the '[' at column {open}"))),
                Some(_) => return Err(self.expected("a list item (a number, a string, true or false)")),
            };
            self.bump();
            items.push(Expr { at: Pos(col), node });
            if self.is_sym(",") {
                self.bump();
            } else if !self.is_sym("]") {
                return Err(self.expected("',' or ']'"));
            }
        }
    }

    fn arith_op(&self) -> Option<(ArithOp, u8)> {
        match self.peek_tok(0) {
            Some(Tok::Sym("+")) => Some((ArithOp::Add, 1)),
            Some(Tok::Sym("-")) => Some((ArithOp::Sub, 1)),
            Some(Tok::Sym("*")) => Some((ArithOp::Mul, 2)),
            Some(Tok::Sym("/")) => Some((ArithOp::Div, 2)),
            _ => None,
        }
    }

    /// Precedence climbing over the binary arithmetic operators, all left-associative.
    fn sum(&mut self, min_prec: u8) -> Parsed {
        let (mut lhs, mut depth) = self.unary()?;
        while let Some((op, prec)) = self.arith_op().filter(|(_, p)| *p >= min_prec) {
            let col = self.bump();
            let (rhs, dr) = self.sum(prec + 1)?;
            depth = depth.max(dr) + 1;
            lhs = make(col, Node::Arith(op, Box::new(lhs), Box::new(rhs)), depth)?.0;
        }
        Ok((lhs, depth))
    }

    fn unary(&mut self) -> Parsed {
        if !self.is_sym("-") {
            return self.primary();
        }
        self.enter()?;
        let col = self.bump();
        let (e, d) = self.unary()?;
        self.nesting -= 1;
        make(col, Node::Neg(Box::new(e)), d + 1)
    }

    fn primary(&mut self) -> Parsed {
        let col = self.here();
        let node = match self.peek_tok(0) {
            Some(Tok::Num(v)) => Node::Number(*v),
            Some(Tok::Str(s)) => Node::Text(s.clone()),
            Some(Tok::Quoted(name)) => Node::Column(name.clone()),
            Some(Tok::Word(w)) => {
                let lower = w.to_ascii_lowercase();
                match lower.as_str() {
                    "true" | "false" => Node::Bool(lower == "true"),
                    "score" => Node::Score,
                    _ if KEYWORDS.contains(&lower.as_str()) => return Err(self.expected("a value")),
                    _ => Node::Column(w.clone()),
                }
            }
            Some(Tok::Sym("(")) => {
                self.enter()?;
                self.bump();
                let (e, d) = self.condition()?;
                if !self.is_sym(")") {
                    return Err(self.expected(&format!("')' to close the '(' at column {col}")));
                }
                self.bump();
                self.nesting -= 1;
                return Ok((e, d));
            }
            _ => return Err(self.expected("a value")),
        };
        self.bump();
        Ok((Expr { at: Pos(col), node }, 1))
    }
}

// ---------------------------------------------------------------------------------------------------------------------------
// Checking

/// The kind of value an expression yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Num,
    Text,
    Bool,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Num => "a number",
            Kind::Text => "text",
            Kind::Bool => "a condition (true or false)",
        }
    }
}

/// The column types of a batch, for [`check`].
pub fn schema(batch: &Batch) -> BTreeMap<String, ColumnType> {
    batch
        .columns
        .iter()
        .map(|(name, v)| {
            let t = match v {
                Values::Numeric(_) => ColumnType::Numeric,
                Values::Text(_) => ColumnType::Text,
            };
            (name.clone(), t)
        })
        .collect()
}

/// Checks names and types: every column exists (an unknown one is named with the closest known names), comparisons and
/// arithmetic get operands of matching types, conditions are conditions. `score` is the model score, always a number.
pub fn check(set: &RuleSet, columns: &BTreeMap<String, ColumnType>) -> Result<(), RuleError> {
    for rule in &set.rules {
        let checker = Checker { columns };
        let kind = checker.kind(&rule.condition).map_err(|f| RuleError::at(rule.line, &rule.text, f))?;
        if kind != Kind::Bool {
            // Point at the start of the condition: an operator's column would single out one part of it.
            let start = rule.text.chars().position(|c| !c.is_whitespace()).map_or(rule.condition.at.0, |i| i + 1);
            let f = fault(
                start,
                format!(
                    "a rule's condition must be true or false, but '{}' is {}; compare it, as in {}",
                    show(&rule.condition),
                    kind.name(),
                    example(&rule.condition, kind)
                ),
            );
            return Err(RuleError::at(rule.line, &rule.text, f));
        }
    }
    Ok(())
}

struct Checker<'c> {
    columns: &'c BTreeMap<String, ColumnType>,
}

fn show(e: &Expr) -> String {
    clip(&e.to_string())
}

/// A constant number: a literal, a negated one, or true/false as 1/0.
fn const_num(e: &Expr) -> Option<f64> {
    match &e.node {
        Node::Number(v) => Some(*v),
        Node::Bool(b) => Some(f64::from(u8::from(*b))),
        Node::Neg(x) => const_num(x).map(|v| -v),
        _ => None,
    }
}

impl Checker<'_> {
    fn kind(&self, e: &Expr) -> Result<Kind, Fault> {
        let col = e.at.0;
        Ok(match &e.node {
            Node::Number(_) => Kind::Num,
            Node::Bool(_) => Kind::Bool,
            Node::Score => Kind::Num,
            Node::Text(s) => {
                if s.is_empty() {
                    return Err(fault(col, "the empty string stands for a missing value; test it with 'is missing'"));
                }
                Kind::Text
            }
            Node::Column(name) => match self.columns.get(name) {
                Some(ColumnType::Numeric) => Kind::Num,
                Some(ColumnType::Text) => Kind::Text,
                None => return Err(fault(col, unknown_column(name, self.columns))),
            },
            Node::Neg(x) => {
                self.want(x, Kind::Num, "unary '-' needs a number")?;
                Kind::Num
            }
            Node::Arith(op, a, b) => {
                let sym = arith_sym(*op);
                self.want(a, Kind::Num, &format!("'{sym}' needs numbers"))?;
                self.want(b, Kind::Num, &format!("'{sym}' needs numbers"))?;
                Kind::Num
            }
            Node::Compare(op, a, b) => {
                let (ka, kb) = (self.kind(a)?, self.kind(b)?);
                let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
                let sym = cmp_sym(*op);
                match (ka, kb) {
                    (Kind::Num, Kind::Num) => {}
                    (Kind::Text, Kind::Text) if equality => {}
                    (Kind::Text, Kind::Text) => {
                        return Err(fault(
                            col,
                            format!("text cannot be ordered with '{sym}' (as text \"10\" < \"9\"); compare text with ==, != or in [...]"),
                        ));
                    }
                    (Kind::Bool, Kind::Bool | Kind::Num) | (Kind::Num, Kind::Bool) if equality => {}
                    (Kind::Bool, Kind::Bool | Kind::Num) | (Kind::Num, Kind::Bool) => return Err(fault(col, format!("true/false compare only with == or !=, not '{sym}'"))),
                    _ => return Err(fault(col, mismatch(a, ka, b, kb))),
                }
                Kind::Bool
            }
            Node::In { value, list, .. } => {
                let kv = self.kind(value)?;
                if kv == Kind::Bool {
                    return Err(fault(value.at.0, format!("'in' tests a number or text, but '{}' is {}", show(value), kv.name())));
                }
                for item in list {
                    let ki = self.kind(item)?;
                    let fits = ki == kv || (kv == Kind::Num && ki == Kind::Bool);
                    if !fits {
                        return Err(fault(item.at.0, format!("list item {} is {}, but '{}' is {}", show(item), ki.name(), show(value), kv.name())));
                    }
                }
                Kind::Bool
            }
            Node::Between { value, low, high } => {
                for x in [value, low, high] {
                    let k = self.kind(x)?;
                    if k != Kind::Num {
                        let why = if k == Kind::Text { "; text cannot be ordered" } else { "" };
                        return Err(fault(x.at.0, format!("'between' needs numbers, but '{}' is {}{why}", show(x), k.name())));
                    }
                }
                if let (Some(lo), Some(hi)) = (const_num(low), const_num(high))
                    && lo > hi
                {
                    return Err(fault(col, format!("'between {} and {}' matches nothing: put the smaller bound first", fmt_num(lo), fmt_num(hi))));
                }
                Kind::Bool
            }
            Node::Missing { value, .. } => {
                let k = self.kind(value)?;
                if k == Kind::Bool {
                    return Err(fault(col, format!("'{}' is a condition, never missing; test the values it compares", show(value))));
                }
                Kind::Bool
            }
            Node::Not(x) => {
                self.want(x, Kind::Bool, "'not' needs a condition")?;
                Kind::Bool
            }
            Node::And(items) | Node::Or(items) => {
                let word = if matches!(e.node, Node::And(_)) { "'and'" } else { "'or'" };
                for x in items {
                    self.want(x, Kind::Bool, &format!("{word} joins conditions"))?;
                }
                Kind::Bool
            }
        })
    }

    fn want(&self, e: &Expr, want: Kind, why: &str) -> Result<(), Fault> {
        let k = self.kind(e)?;
        if k == want {
            return Ok(());
        }
        let hint = if want == Kind::Bool { format!("; compare it, as in {}", example(e, k)) } else { String::new() };
        Err(fault(e.at.0, format!("{why}, but '{}' is {}{hint}", show(e), k.name())))
    }
}

/// A comparison the user may have meant, for hints.
fn example(e: &Expr, k: Kind) -> String {
    if k == Kind::Text { format!("{} == \"…\"", show(e)) } else { format!("{} > 0", show(e)) }
}

fn mismatch(a: &Expr, ka: Kind, b: &Expr, kb: Kind) -> String {
    let mut msg = format!("type mismatch: '{}' is {} and '{}' is {}", show(a), ka.name(), show(b), kb.name());
    // The usual slip is quoting a number or not quoting a code: say how to write the literal side.
    for (lit, other) in [(a, kb), (b, ka)] {
        match (&lit.node, other) {
            (Node::Text(s), Kind::Num) if s.trim().parse::<f64>().is_ok() => msg.push_str(&format!("; write {} without quotes", clip(s.trim()))),
            (Node::Number(_), Kind::Text) => msg.push_str(&format!("; to match text, quote it: \"{}\"", show(lit))),
            _ => {}
        }
    }
    msg
}

fn unknown_column(name: &str, columns: &BTreeMap<String, ColumnType>) -> String {
    let close = closest(name, columns.keys().map(String::as_str));
    if !close.is_empty() {
        let names: Vec<String> = close.iter().map(|c| format!("'{}'", clip(c))).collect();
        return format!("unknown column '{}'; did you mean {}?", clip(name), names.join(" or "));
    }
    if !columns.is_empty() && columns.len() <= 8 {
        let names: Vec<String> = columns.keys().map(|c| clip(c)).collect();
        return format!("unknown column '{}'; the columns are {}", clip(name), names.join(", "));
    }
    format!("unknown column '{}'", clip(name))
}


// ---------------------------------------------------------------------------------------------------------------------------
// Evaluation

/// What a rule set did to a batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Applied {
    /// Per rule: the rows its condition matched, ascending (whether or not it changed them).
    pub touched: Vec<Vec<usize>>,
    /// Per rule: how many of its touched rows it left alone because an earlier rule had already set the decision (a
    /// `decision` rule), the score (a `score` rule) or the same flag (a `flag` rule).
    pub shadowed: Vec<usize>,
    /// Per rule: how many of its shadowed rows an earlier rule had set to a different decision or score.
    pub conflicts: Vec<usize>,
    /// Per row: the overriding decision, if a rule set one.
    pub decision: Vec<Option<bool>>,
    /// Per row: the overriding score, if a rule set one.
    pub score: Vec<Option<f64>>,
    /// Per row: the flag labels, in rule order, each once.
    pub flags: Vec<Vec<String>>,
}

/// Checks the rules against the batch's columns, then applies them to every row. `score_column` is the numeric column
/// the word `score` stands for; it need only exist when a rule uses `score`.
pub fn apply(set: &RuleSet, batch: &Batch, score_column: &str) -> Result<Applied, RuleError> {
    check(set, &schema(batch))?;
    let n = batch.rows;
    let score = match batch.columns.get(score_column) {
        Some(Values::Numeric(v)) if v.len() == n => Some(v.as_slice()),
        Some(Values::Numeric(v)) => return Err(RuleError::whole(format!("score column '{}' has {} values for {n} rows", clip(score_column), v.len()))),
        Some(Values::Text(_)) => return Err(RuleError::whole(format!("score column '{}' holds text, not numbers", clip(score_column)))),
        None => None,
    };
    let cx = Ctx {
        batch,
        score,
        score_name: score_column,
        rows: n,
    };
    let mut out = Applied {
        decision: vec![None; n],
        score: vec![None; n],
        flags: vec![Vec::new(); n],
        ..Applied::default()
    };
    for rule in &set.rules {
        let at = |f: Fault| RuleError::at(rule.line, &rule.text, f);
        let rows = match eval(&rule.condition, &cx).map_err(at)? {
            Val::Bool(Bools::All(true)) => (0..n).collect(),
            Val::Bool(Bools::All(false)) => vec![],
            Val::Bool(Bools::Each(v)) => v.iter().enumerate().filter(|(_, b)| **b).map(|(i, _)| i).collect(),
            _ => return Err(at(fault(rule.condition.at.0, "the condition is not true or false"))),
        };
        let (mut shadowed, mut conflicts) = (0, 0);
        match &rule.action {
            Action::Decision(d) => (shadowed, conflicts) = first_wins(&mut out.decision, &rows, *d),
            Action::Score(s) => (shadowed, conflicts) = first_wins(&mut out.score, &rows, *s),
            Action::Flag(label) => {
                for &r in &rows {
                    if out.flags[r].contains(label) {
                        shadowed += 1;
                    } else {
                        out.flags[r].push(label.clone());
                    }
                }
            }
        }
        out.touched.push(rows);
        out.shadowed.push(shadowed);
        out.conflicts.push(conflicts);
    }
    Ok(out)
}

/// Sets `value` in the rows' empty slots (the first rule to set a row wins); returns how many rows were
/// already set (shadowed) and, of those, set to another value (conflicts).
fn first_wins<T: Copy + PartialEq>(slots: &mut [Option<T>], rows: &[usize], value: T) -> (usize, usize) {
    let (mut shadowed, mut conflicts) = (0, 0);
    for &r in rows {
        match slots[r] {
            None => slots[r] = Some(value),
            Some(prev) => {
                shadowed += 1;
                conflicts += usize::from(prev != value);
            }
        }
    }
    (shadowed, conflicts)
}

struct Ctx<'a> {
    batch: &'a Batch,
    score: Option<&'a [f64]>,
    score_name: &'a str,
    rows: usize,
}

/// A column of values: one value for every row, borrowed from the batch, or computed.
enum Lane<'a, T> {
    Const(T),
    Slice(&'a [T]),
    Owned(Vec<T>),
}

#[derive(Clone, Copy)]
enum View<'v, T> {
    One(T),
    Many(&'v [T]),
}

impl<T: Copy> Lane<'_, T> {
    fn view(&self) -> View<'_, T> {
        match self {
            Lane::Const(v) => View::One(*v),
            Lane::Slice(s) => View::Many(s),
            Lane::Owned(v) => View::Many(v),
        }
    }
}

/// Text values: a literal or a column (no expression computes text).
enum TextLane<'a> {
    Const(&'a str),
    Slice(&'a [String]),
}

/// Conditions: the same for every row, or one per row.
enum Bools {
    All(bool),
    Each(Vec<bool>),
}

impl From<Lane<'_, bool>> for Bools {
    fn from(l: Lane<'_, bool>) -> Bools {
        match l {
            Lane::Const(b) => Bools::All(b),
            Lane::Slice(s) => Bools::Each(s.to_vec()),
            Lane::Owned(v) => Bools::Each(v),
        }
    }
}

enum Val<'a> {
    Num(Lane<'a, f64>),
    Text(TextLane<'a>),
    Bool(Bools),
}

fn map1<T: Copy, U>(a: View<'_, T>, f: impl Fn(T) -> U) -> Lane<'static, U> {
    match a {
        View::One(x) => Lane::Const(f(x)),
        View::Many(xs) => Lane::Owned(xs.iter().map(|&x| f(x)).collect()),
    }
}

fn zip2<A: Copy, B: Copy, U>(a: View<'_, A>, b: View<'_, B>, f: impl Fn(A, B) -> U) -> Lane<'static, U> {
    match (a, b) {
        (View::One(x), View::One(y)) => Lane::Const(f(x, y)),
        (View::Many(xs), View::One(y)) => Lane::Owned(xs.iter().map(|&x| f(x, y)).collect()),
        (View::One(x), View::Many(ys)) => Lane::Owned(ys.iter().map(|&y| f(x, y)).collect()),
        (View::Many(xs), View::Many(ys)) => Lane::Owned(xs.iter().zip(ys).map(|(&x, &y)| f(x, y)).collect()),
    }
}

fn text_map(a: &TextLane<'_>, f: impl Fn(&str) -> bool) -> Bools {
    match a {
        TextLane::Const(x) => Bools::All(f(x)),
        TextLane::Slice(xs) => Bools::Each(xs.iter().map(|x| f(x)).collect()),
    }
}

fn text_zip(a: &TextLane<'_>, b: &TextLane<'_>, f: impl Fn(&str, &str) -> bool) -> Bools {
    match (a, b) {
        (TextLane::Const(x), TextLane::Const(y)) => Bools::All(f(x, y)),
        (TextLane::Slice(xs), TextLane::Const(y)) => Bools::Each(xs.iter().map(|x| f(x, y)).collect()),
        (TextLane::Const(x), TextLane::Slice(ys)) => Bools::Each(ys.iter().map(|y| f(x, y)).collect()),
        (TextLane::Slice(xs), TextLane::Slice(ys)) => Bools::Each(xs.iter().zip(ys.iter()).map(|(x, y)| f(x, y)).collect()),
    }
}

/// `and` (or `or`) of two conditions, reusing the left one's buffer.
fn combine(acc: Bools, next: Bools, and: bool) -> Bools {
    match (acc, next) {
        // true and x = x, false and x = false; false or x = x, true or x = true.
        (Bools::All(a), other) | (other, Bools::All(a)) => {
            if a == and {
                other
            } else {
                Bools::All(a)
            }
        }
        (Bools::Each(mut a), Bools::Each(b)) => {
            if and {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x &= *y);
            } else {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x |= *y);
            }
            Bools::Each(a)
        }
    }
}

fn bools_to_num(b: Bools) -> Lane<'static, f64> {
    let one = |b: bool| f64::from(u8::from(b));
    match b {
        Bools::All(b) => Lane::Const(one(b)),
        Bools::Each(v) => Lane::Owned(v.into_iter().map(one).collect()),
    }
}

fn num(v: Val<'_>, at: usize) -> Result<Lane<'_, f64>, Fault> {
    match v {
        Val::Num(l) => Ok(l),
        Val::Bool(b) => Ok(bools_to_num(b)),
        Val::Text(_) => Err(fault(at, "expected a number")),
    }
}

fn cond(v: Val<'_>, at: usize) -> Result<Bools, Fault> {
    match v {
        Val::Bool(b) => Ok(b),
        _ => Err(fault(at, "expected a condition")),
    }
}

/// Number membership: a sorted list searched by halves, or a scan for short lists. −0 is 0 and a missing value is in no list.
struct NumSet(Vec<f64>);

impl NumSet {
    fn new(mut v: Vec<f64>) -> NumSet {
        // Adding 0 turns −0 into +0, so total_cmp agrees with ==.
        v.iter_mut().for_each(|x| *x += 0.0);
        v.sort_by(f64::total_cmp);
        v.dedup();
        NumSet(v)
    }

    fn contains(&self, x: f64) -> bool {
        if self.0.len() <= 8 {
            return self.0.contains(&x);
        }
        !x.is_nan() && self.0.binary_search_by(|v| v.total_cmp(&(x + 0.0))).is_ok()
    }
}

/// Evaluates an expression for every row at once.
fn eval<'a>(e: &'a Expr, cx: &Ctx<'a>) -> Result<Val<'a>, Fault> {
    let col = e.at.0;
    Ok(match &e.node {
        Node::Number(v) => Val::Num(Lane::Const(*v)),
        Node::Text(s) => Val::Text(TextLane::Const(s)),
        Node::Bool(b) => Val::Bool(Bools::All(*b)),
        Node::Score => match cx.score {
            Some(s) => Val::Num(Lane::Slice(s)),
            None => return Err(fault(col, format!("the rule uses 'score' but the data has no score column '{}'", clip(cx.score_name)))),
        },
        Node::Column(name) => {
            let values = cx.batch.columns.get(name).ok_or_else(|| fault(col, format!("unknown column '{}'", clip(name))))?;
            let len = match values {
                Values::Numeric(v) => v.len(),
                Values::Text(v) => v.len(),
            };
            if len != cx.rows {
                return Err(fault(col, format!("column '{}' has {len} values for {} rows", clip(name), cx.rows)));
            }
            match values {
                Values::Numeric(v) => Val::Num(Lane::Slice(v)),
                Values::Text(v) => Val::Text(TextLane::Slice(v)),
            }
        }
        Node::Neg(x) => Val::Num(map1(num(eval(x, cx)?, col)?.view(), |v| -v)),
        Node::Arith(op, a, b) => {
            let (a, b) = (num(eval(a, cx)?, col)?, num(eval(b, cx)?, col)?);
            let (a, b) = (a.view(), b.view());
            Val::Num(match op {
                ArithOp::Add => zip2(a, b, |x, y| x + y),
                ArithOp::Sub => zip2(a, b, |x, y| x - y),
                ArithOp::Mul => zip2(a, b, |x, y| x * y),
                // Division by zero is missing, not ±infinity.
                ArithOp::Div => zip2(a, b, |x, y| if y == 0.0 { f64::NAN } else { x / y }),
            })
        }
        Node::Compare(op, a, b) => {
            let (va, vb) = (eval(a, cx)?, eval(b, cx)?);
            if let (Val::Text(x), Val::Text(y)) = (&va, &vb) {
                let eq = *op == CmpOp::Eq;
                // Missing text ("") equals nothing and differs from nothing.
                return Ok(Val::Bool(text_zip(x, y, |x, y| !x.is_empty() && !y.is_empty() && (x == y) == eq)));
            }
            let (a, b) = (num(va, col)?, num(vb, col)?);
            let (a, b) = (a.view(), b.view());
            // IEEE comparisons with NaN are already false, except !=.
            Val::Bool(Bools::from(match op {
                CmpOp::Lt => zip2(a, b, |x, y| x < y),
                CmpOp::Le => zip2(a, b, |x, y| x <= y),
                CmpOp::Gt => zip2(a, b, |x, y| x > y),
                CmpOp::Ge => zip2(a, b, |x, y| x >= y),
                CmpOp::Eq => zip2(a, b, |x, y| x == y),
                CmpOp::Ne => zip2(a, b, |x: f64, y: f64| !x.is_nan() && !y.is_nan() && x != y),
            }))
        }
        Node::In { value, list, negated } => {
            let negated = *negated;
            match eval(value, cx)? {
                Val::Text(t) => {
                    let items: Vec<&str> = list
                        .iter()
                        .map(|i| match &i.node {
                            Node::Text(s) => Ok(s.as_str()),
                            _ => Err(fault(i.at.0, "expected a text item")),
                        })
                        .collect::<Result<_, _>>()?;
                    if items.len() <= 8 {
                        Val::Bool(text_map(&t, |x| !x.is_empty() && items.contains(&x) != negated))
                    } else {
                        let set: HashSet<&str> = items.into_iter().collect();
                        Val::Bool(text_map(&t, |x| !x.is_empty() && set.contains(x) != negated))
                    }
                }
                v => {
                    let items: Vec<f64> = list.iter().map(|i| const_num(i).ok_or_else(|| fault(i.at.0, "expected a number item"))).collect::<Result<_, _>>()?;
                    let set = NumSet::new(items);
                    let lane = num(v, col)?;
                    Val::Bool(map1(lane.view(), |x: f64| !x.is_nan() && set.contains(x) != negated).into())
                }
            }
        }
        Node::Between { value, low, high } => {
            let v = num(eval(value, cx)?, col)?;
            let lo = num(eval(low, cx)?, col)?;
            let hi = num(eval(high, cx)?, col)?;
            let above: Bools = zip2(v.view(), lo.view(), |x, l| x >= l).into();
            let below: Bools = zip2(v.view(), hi.view(), |x, h| x <= h).into();
            Val::Bool(combine(above, below, true))
        }
        Node::Missing { value, negated } => {
            let negated = *negated;
            match eval(value, cx)? {
                Val::Text(t) => Val::Bool(text_map(&t, |x| x.is_empty() != negated)),
                v => Val::Bool(map1(num(v, col)?.view(), |x: f64| x.is_nan() != negated).into()),
            }
        }
        Node::Not(x) => Val::Bool(match cond(eval(x, cx)?, col)? {
            Bools::All(b) => Bools::All(!b),
            Bools::Each(mut v) => {
                v.iter_mut().for_each(|b| *b = !*b);
                Bools::Each(v)
            }
        }),
        Node::And(items) | Node::Or(items) => {
            let and = matches!(e.node, Node::And(_));
            let mut acc = Bools::All(and);
            for x in items {
                // Once decided for every row, the rest cannot change it.
                if matches!(acc, Bools::All(b) if b != and) {
                    break;
                }
                acc = combine(acc, cond(eval(x, cx)?, x.at.0)?, and);
            }
            Val::Bool(acc)
        }
    })
}

// ---------------------------------------------------------------------------------------------------------------------------
// Printing

fn arith_sym(op: ArithOp) -> &'static str {
    match op {
        ArithOp::Add => "+",
        ArithOp::Sub => "-",
        ArithOp::Mul => "*",
        ArithOp::Div => "/",
    }
}

fn cmp_sym(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
    }
}

/// Shortest text that reads back as the same number.
fn fmt_num(v: f64) -> String {
    let s = v.to_string();
    if s.len() > 20 { format!("{v:e}") } else { s }
}

fn fmt_text(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// How tightly a node binds, loosest 1; a child binding looser than its place requires gets parentheses.
fn level(n: &Node) -> u8 {
    match n {
        Node::Or(_) => 1,
        Node::And(_) => 2,
        Node::Not(_) => 3,
        Node::Compare(..) | Node::In { .. } | Node::Between { .. } | Node::Missing { .. } => 4,
        Node::Arith(ArithOp::Add | ArithOp::Sub, ..) => 5,
        Node::Arith(ArithOp::Mul | ArithOp::Div, ..) => 6,
        Node::Neg(_) => 7,
        _ => 8,
    }
}

struct At<'e>(&'e Expr, u8);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if level(&self.0.node) < self.1 { write!(f, "({})", self.0) } else { write!(f, "{}", self.0) }
    }
}

/// Prints the expression normalised: lower-case keywords, single spaces, only the parentheses needed; parsing the text
/// gives the same expression back.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Node::Number(v) => write!(f, "{}", fmt_num(*v)),
            Node::Text(s) => write!(f, "{}", fmt_text(s)),
            Node::Bool(b) => write!(f, "{b}"),
            Node::Score => write!(f, "score"),
            Node::Column(name) => {
                let plain = name.chars().next().is_some_and(is_name_start) && name.chars().all(is_name_char) && !KEYWORDS.iter().any(|k| name.eq_ignore_ascii_case(k));
                if plain { write!(f, "{name}") } else { write!(f, "`{name}`") }
            }
            Node::Neg(x) => write!(f, "-{}", At(x, 7)),
            Node::Arith(op, a, b) => {
                let l = level(&self.node);
                write!(f, "{} {} {}", At(a, l), arith_sym(*op), At(b, l + 1))
            }
            Node::Compare(op, a, b) => write!(f, "{} {} {}", At(a, 5), cmp_sym(*op), At(b, 5)),
            Node::In { value, list, negated } => {
                write!(f, "{} {}in [", At(value, 5), if *negated { "not " } else { "" })?;
                for (i, x) in list.iter().enumerate() {
                    write!(f, "{}{x}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "]")
            }
            Node::Between { value, low, high } => write!(f, "{} between {} and {}", At(value, 5), At(low, 5), At(high, 5)),
            Node::Missing { value, negated } => write!(f, "{} is {}missing", At(value, 5), if *negated { "not " } else { "" }),
            Node::Not(x) => write!(f, "not {}", At(x, 3)),
            Node::And(items) | Node::Or(items) => {
                let (word, min) = if matches!(self.node, Node::And(_)) { (" and ", 3) } else { (" or ", 2) };
                for (i, x) in items.iter().enumerate() {
                    write!(f, "{}{}", if i > 0 { word } else { "" }, At(x, min))?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Decision(d) => write!(f, "decision = {}", u8::from(*d)),
            Action::Flag(label) => write!(f, "flag {}", fmt_text(label)),
            Action::Score(v) => write!(f, "score = {}", fmt_num(*v)),
        }
    }
}

/// The rule normalised, `condition => action`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} => {}", self.condition, self.action)
    }
}

/// The rules normalised, one a line.
impl fmt::Display for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.rules {
            writeln!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> BTreeMap<String, ColumnType> {
        let num = ["age", "capital_gain", "capital_loss", "education_num", "hours_per_week", "weird col-name", "flag"];
        let text = ["sex", "occupation"];
        num.iter()
            .map(|c| (c.to_string(), ColumnType::Numeric))
            .chain(text.iter().map(|c| (c.to_string(), ColumnType::Text)))
            .collect()
    }

    /// The condition of a one-rule set.
    fn cond_of(c: &str) -> Expr {
        parse(&format!("{c} => flag \"x\"")).unwrap().rules.remove(0).condition
    }

    fn parse_err(src: &str) -> RuleError {
        parse(src).unwrap_err()
    }

    fn check_err(src: &str) -> RuleError {
        compile(src, &cols()).unwrap_err()
    }

    fn at(e: &RuleError) -> (usize, usize) {
        (e.line, e.column)
    }

    fn col(name: &str) -> Expr {
        Expr {
            at: Pos(0),
            node: Node::Column(name.into()),
        }
    }

    const NAN: f64 = f64::NAN;

    fn batch() -> Batch {
        let num = |v: &[f64]| Values::Numeric(v.to_vec());
        let text = |v: &[&str]| Values::Text(v.iter().map(|s| s.to_string()).collect());
        let mut columns = BTreeMap::new();
        columns.insert("age".into(), num(&[17.0, 30.0, NAN, 45.0, 18.0, 60.0]));
        columns.insert("capital_gain".into(), num(&[0.0, 0.0, 100.0, 0.0, NAN, 5.0]));
        columns.insert("s".into(), num(&[0.2, 0.97, 0.5, 0.45, 0.6, 0.4]));
        columns.insert("sex".into(), text(&["Male", "Female", "", "Female", "Male", "Female"]));
        columns.insert("occupation".into(), text(&["Sales", "Tech-support", "Sales", "", "Exec", "Sales"]));
        Batch { rows: 6, columns }
    }

    fn rows(src: &str) -> Vec<usize> {
        let set = parse(&format!("{src} => flag \"x\"")).unwrap();
        apply(&set, &batch(), "s").unwrap().touched.remove(0)
    }

    #[test]
    fn the_example_rule_set_parses_and_checks() {
        let src = "# minors are never approved\nage < 18 => decision = 0\nscore > 0.95 and capital_gain == 0 => flag \"check\"\nsex == \"Female\" and occupation in [\"Tech-support\", \"Sales\"] and not (hours_per_week >= 40) => flag \"review hours\"\ncapital_loss is missing => decision = 0\neducation_num >= 13 and score between 0.4 and 0.6 => decision = 1\n";
        let set = compile(src, &cols()).unwrap();
        assert_eq!(set.rules.len(), 5);
        assert_eq!(set.rules[0].line, 2);
        assert_eq!(set.rules[0].action, Action::Decision(false));
        assert_eq!(set.rules[1].action, Action::Flag("check".into()));
        assert_eq!(set.rules[4].action, Action::Decision(true));
        assert_eq!(
            set.rules[2].to_string(),
            "sex == \"Female\" and occupation in [\"Tech-support\", \"Sales\"] and not hours_per_week >= 40 => flag \"review hours\""
        );
        // It serialises (for the API).
        let json = serde_json::to_string(&set).unwrap();
        assert!(json.contains("\"compare\""), "{json}");
    }

    #[test]
    fn precedence_is_not_then_and_then_or_and_arithmetic_as_usual() {
        assert_eq!(cond_of("a > 1 or b > 1 and c > 1"), cond_of("a > 1 or (b > 1 and c > 1)"));
        assert_ne!(cond_of("a > 1 or b > 1 and c > 1"), cond_of("(a > 1 or b > 1) and c > 1"));
        assert_eq!(cond_of("not a > 1 and b > 1"), cond_of("(not (a > 1)) and b > 1"));
        assert_eq!(cond_of("a + b * c > 1"), cond_of("a + (b * c) > 1"));
        assert_eq!(cond_of("a - b - c > 0"), cond_of("(a - b) - c > 0"));
        assert_ne!(cond_of("a - b - c > 0"), cond_of("a - (b - c) > 0"));
        assert_eq!(cond_of("a / b / c > 0"), cond_of("(a / b) / c > 0"));
        assert_eq!(cond_of("-a * b > 0"), cond_of("(-a) * b > 0"));
        assert_eq!(cond_of("a * 2 between 1 + 1 and 3 and b > 0"), cond_of("((a * 2) between (1 + 1) and 3) and (b > 0)"));
        // Chains of and/or are flat, however they were parenthesised.
        let Node::And(items) = cond_of("a > 1 and (b > 1 and c > 1) and d > 1").node else { panic!() };
        assert_eq!(items.len(), 4);
        let Node::Compare(CmpOp::Gt, l, r) = cond_of("a + 1 > 2").node else { panic!() };
        assert!(matches!(l.node, Node::Arith(ArithOp::Add, ..)) && r.node == Node::Number(2.0));
    }

    #[test]
    fn every_operator_parses_to_its_node() {
        for (src, op) in [
            ("a < 1", CmpOp::Lt),
            ("a <= 1", CmpOp::Le),
            ("a > 1", CmpOp::Gt),
            ("a >= 1", CmpOp::Ge),
            ("a == 1", CmpOp::Eq),
            ("a != 1", CmpOp::Ne),
        ] {
            assert!(matches!(cond_of(src).node, Node::Compare(o, ..) if o == op), "{src}");
        }
        for (src, op) in [("a + 1 > 0", ArithOp::Add), ("a - 1 > 0", ArithOp::Sub), ("a * 1 > 0", ArithOp::Mul), ("a / 1 > 0", ArithOp::Div)] {
            let Node::Compare(_, l, _) = cond_of(src).node else { panic!() };
            assert!(matches!(l.node, Node::Arith(o, ..) if o == op), "{src}");
        }
        assert!(matches!(cond_of("a in [1, -2, true]").node, Node::In { negated: false, ref list, .. } if list.len() == 3));
        assert!(matches!(cond_of("a not in [\"x\",]").node, Node::In { negated: true, ref list, .. } if list.len() == 1));
        assert!(matches!(cond_of("a between 1 and 2").node, Node::Between { .. }));
        assert!(matches!(cond_of("a is missing").node, Node::Missing { negated: false, .. }));
        assert!(matches!(cond_of("a is not missing").node, Node::Missing { negated: true, .. }));
        assert!(matches!(cond_of("not a > 1").node, Node::Not(_)));
        assert!(matches!(cond_of("-a > 1").node, Node::Compare(_, ref l, _) if matches!(l.node, Node::Neg(_))));
        assert_eq!(cond_of("true").node, Node::Bool(true));
        assert_eq!(
            cond_of("score > .5").node,
            Node::Compare(CmpOp::Gt, Box::new(Expr { at: Pos(0), node: Node::Score }), Box::new(Expr { at: Pos(0), node: Node::Number(0.5) }))
        );
        let Node::Compare(_, _, r) = cond_of("a > 1e-3").node else { panic!() };
        assert_eq!(r.node, Node::Number(0.001));
        assert_eq!(parse("a > 1 => score = -0.25").unwrap().rules[0].action, Action::Score(-0.25));
        assert_eq!(parse("a > 1 => DECISION = true").unwrap().rules[0].action, Action::Decision(true));
    }

    #[test]
    fn keywords_are_case_insensitive_names_are_not() {
        assert_eq!(cond_of("A > 1 AND b < 2 Or NOT c Is Not Missing"), cond_of("A > 1 and b < 2 or not c is not missing"));
        assert_eq!(
            cond_of("x NOT IN [1] and y BETWEEN 1 AND 2 and TRUE and SCORE > 0"),
            cond_of("x not in [1] and y between 1 and 2 and true and score > 0")
        );
        assert_ne!(cond_of("A > 1"), cond_of("a > 1"));
    }

    #[test]
    fn backticks_name_any_column_and_score_in_backticks_is_a_data_column() {
        let Node::Compare(_, l, _) = cond_of("`weird col-name` > 1").node else { panic!() };
        assert_eq!(l.node, Node::Column("weird col-name".into()));
        let Node::Compare(_, l, _) = cond_of("`score` > 1").node else { panic!() };
        assert_eq!(l.node, Node::Column("score".into()));
        let Node::Compare(_, l, _) = cond_of("`and` > 1").node else { panic!() };
        assert_eq!(l.node, Node::Column("and".into()));
        // Dotted names need no backticks.
        let Node::Compare(_, l, _) = cond_of("a.b_c9 > 1").node else { panic!() };
        assert_eq!(l.node, Node::Column("a.b_c9".into()));
        assert_eq!(
            cond_of("`score` > 1 and `and` > 1 and `a b` > 1 and x > 1").to_string(),
            "`score` > 1 and `and` > 1 and `a b` > 1 and x > 1"
        );
    }

    #[test]
    fn strings_take_quote_and_backslash_escapes() {
        let Node::Compare(_, _, r) = cond_of(r#"sex == "a \"b\" \\ c""#).node else { panic!() };
        assert_eq!(r.node, Node::Text(r#"a "b" \ c"#.into()));
        assert_eq!(cond_of(r#"sex == "a \"b\" \\ c""#).to_string(), r#"sex == "a \"b\" \\ c""#);
        let e = parse_err(r#"sex == "a\nb" => flag "x""#);
        assert_eq!(at(&e), (1, 10));
        assert!(e.message.contains("unknown escape '\\n'"), "{e}");
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_but_not_inside_strings() {
        let set = parse("# header\n\n   \nage < 18 => decision = 0 # why\r\nsex == \"#x\" => flag \"a#b\"\n# end").unwrap();
        assert_eq!(set.rules.len(), 2);
        assert_eq!((set.rules[0].line, set.rules[1].line), (4, 5));
        assert_eq!(set.rules[0].text, "age < 18 => decision = 0 # why");
        assert_eq!(set.rules[1].action, Action::Flag("a#b".into()));
        assert!(parse("").unwrap().rules.is_empty());
    }

    #[test]
    fn syntax_errors_say_where_and_what() {
        let cases: Vec<(&str, (usize, usize), &str)> = vec![
            ("age < 18 and => decision = 0", (1, 14), "expected a value after 'and', found '=>'"),
            ("sex == \"Female => decision = 0", (1, 8), "unterminated string"),
            ("age < 18 decision = 0", (1, 10), "expected '=>' before the action 'decision'"),
            ("age < 18", (1, 9), "expected '=>' and an action"),
            ("age < 18 => reject", (1, 13), "unknown action 'reject'"),
            ("age < 18 =>", (1, 12), "expected an action after '=>'"),
            ("sex in \"Male\" => flag \"x\"", (1, 8), "expected a list such as [1, 2] after 'in'"),
            ("age < 18 => decision = 0 1", (1, 26), "unexpected '1' after the action"),
            ("age < 18 18 => decision = 0", (1, 10), "unexpected '18' after the condition"),
            ("age = 18 => decision = 0", (1, 5), "to compare, write '=='"),
            ("age < 18 => decision == 0", (1, 22), "with '=' (decision = …)"),
            ("age < 18 => decision = 2", (1, 24), "a decision is 0 or 1"),
            ("1 < age < 3 => flag \"x\"", (1, 9), "comparisons do not chain"),
            ("(age < 18 => decision = 0", (1, 11), "expected ')' to close the '(' at column 1"),
            ("=> decision = 0", (1, 1), "expected a condition before '=>'"),
            ("age in [] => flag \"x\"", (1, 9), "empty list"),
            ("age in [1, 2 => flag \"x\"", (1, 14), "expected ',' or ']'"),
            ("age > 1 && sex == \"x\" => flag \"x\"", (1, 9), "write 'and'"),
            ("age > 1 => flag \"\"", (1, 17), "empty flag label"),
            ("age > 1 => flag x", (1, 17), "expected a quoted label"),
            ("age not between 1 and 2 => flag \"x\"", (1, 5), "must be followed by 'in'"),
            ("age is gone => flag \"x\"", (1, 8), "expected 'missing' after 'is'"),
            ("age > 1e => flag \"x\"", (1, 7), "exponent needs digits"),
            ("age > 12abc => flag \"x\"", (1, 7), "malformed number '12a'"),
            ("age > 1e999 => flag \"x\"", (1, 7), "out of range"),
            ("`unclosed > 1 => flag \"x\"", (1, 1), "unterminated name"),
            ("age between 1 => flag \"x\"", (1, 15), "expected 'and' between the bounds"),
            ("age > and => flag \"x\"", (1, 7), "expected a value after '>', found 'and'"),
        ];
        for (src, pos, msg) in cases {
            let e = parse_err(src);
            assert_eq!(at(&e), pos, "{src}: {e}");
            assert!(e.message.contains(msg), "{src}: {e}");
        }
        // The line number counts blank lines and comments.
        assert_eq!(at(&parse_err("# c\nage < 1 => flag \"x\"\n\nage <")), (4, 6));
    }

    #[test]
    fn an_error_displays_the_line_and_a_caret() {
        let e = parse_err("x > 1 => flag \"ok\"\nage < 18 and => decision = 0");
        assert_eq!(
            e.to_string(),
            "line 2, column 14: expected a value after 'and', found '=>'\n  age < 18 and => decision = 0\n               ^"
        );
        // A long line is cut around the error, and long tokens are clipped in the message.
        let long = format!("age > 1 and {} > 1 and => flag \"x\"", "a".repeat(5000));
        let e = parse_err(&long);
        assert!(e.excerpt.chars().count() <= 202 && e.message.chars().count() < 100, "{e}");
        assert_eq!(e.excerpt.chars().nth(e.caret), Some('='), "{e}");
        let e = check_err(&format!("`{}` > 1 => flag \"x\"", "b".repeat(1000)));
        assert!(e.to_string().len() < 500, "{e}");
    }

    #[test]
    fn checking_names_unknown_columns_with_suggestions_and_refuses_type_mismatches() {
        let cases: Vec<(&str, (usize, usize), &str)> = vec![
            ("agee < 18 => decision = 0", (1, 1), "unknown column 'agee'; did you mean 'age'?"),
            ("age > 1 and Sex == \"Male\" => flag \"x\"", (1, 13), "unknown column 'Sex'; did you mean 'sex'?"),
            ("hours > 40 => flag \"x\"", (1, 1), "did you mean 'hours_per_week'?"),
            (
                "age == \"18\" => decision = 0",
                (1, 5),
                "type mismatch: 'age' is a number and '\"18\"' is text; write 18 without quotes",
            ),
            ("sex == 1 => decision = 0", (1, 5), "to match text, quote it: \"1\""),
            ("sex < \"M\" => flag \"x\"", (1, 5), "text cannot be ordered with '<'"),
            ("sex between 1 and 2 => flag \"x\"", (1, 1), "'between' needs numbers"),
            ("sex + 1 > 2 => flag \"x\"", (1, 1), "'+' needs numbers, but 'sex' is text"),
            ("age + 1 => flag \"x\"", (1, 1), "a rule's condition must be true or false, but 'age + 1' is a number"),
            ("  sex => flag \"x\"", (1, 3), "compare it, as in sex == \"…\""),
            ("flag and age > 1 => flag \"x\"", (1, 1), "'and' joins conditions, but 'flag' is a number; compare it, as in flag > 0"),
            ("not age => flag \"x\"", (1, 5), "'not' needs a condition"),
            ("sex == \"\" => flag \"x\"", (1, 8), "test it with 'is missing'"),
            ("age in [1, \"2\"] => flag \"x\"", (1, 12), "list item \"2\" is text, but 'age' is a number"),
            ("sex in [\"a\", 2] => flag \"x\"", (1, 14), "list item 2 is a number"),
            ("(age > 1) in [1] => flag \"x\"", (1, 6), "'in' tests a number or text"),
            ("(age > 1) is missing => flag \"x\"", (1, 11), "never missing"),
            ("age between 5 and 1 => flag \"x\"", (1, 5), "matches nothing"),
            ("(age > 1) < 2 => flag \"x\"", (1, 11), "true/false compare only with == or !="),
        ];
        for (src, pos, msg) in cases {
            let e = check_err(src);
            assert_eq!(at(&e), pos, "{src}: {e}");
            assert!(e.message.contains(msg), "{src}: {e}");
        }
        // And what is fine.
        for ok in [
            "(age > 1) == true",
            "flag == 1",
            "sex != occupation",
            "age between -1 and -1",
            "score + age > 1",
            "`weird col-name` / 2 > 0",
            "age in [1, true]",
        ] {
            assert!(compile(&format!("{ok} => flag \"x\""), &cols()).is_ok(), "{ok}");
        }
    }


    #[test]
    fn hostile_input_is_bounded_without_overflowing_the_stack() {
        let e = parse_err(&format!("{}x{} > 1 => flag \"x\"", "(".repeat(100_000), ")".repeat(100_000)));
        assert!(e.line == 0 && e.message.contains("at most 65536"), "{e}");
        let e = parse_err(&format!("{}x > 1 => flag \"x\"", "(".repeat(60_000)));
        assert_eq!(at(&e), (1, 65));
        assert!(e.message.contains("nested too deeply"), "{e}");
        let e = parse_err(&format!("{}x > 1 => flag \"x\"", "not ".repeat(15_000)));
        assert!(e.message.contains("nested too deeply"), "{e}");
        let e = parse_err(&format!("{}x > 1 => flag \"x\"", "-".repeat(60_000)));
        assert!(e.message.contains("nested too deeply"), "{e}");
        // A left-deep chain builds no recursion while parsing, but its tree is bounded too.
        let e = parse_err(&format!("x{} > 1 => flag \"x\"", " + x".repeat(5_000)));
        assert!(e.message.contains("nested too deeply"), "{e}");
        // 64 levels are fine, and long and/or chains are flat.
        assert!(parse(&format!("{}x > 1{} => flag \"x\"", "(".repeat(63), ")".repeat(63))).is_ok());
        let long_and = format!("{} => flag \"x\"", vec!["age > 1"; 3000].join(" and "));
        assert_eq!(apply(&parse(&long_and).unwrap(), &batch(), "s").unwrap().touched[0], vec![0, 1, 3, 4, 5]);
        // Counts and sizes.
        assert!(parse_err(&"a > 1 => flag \"x\"\n".repeat(501)).message.contains("more than 500 rules"));
        assert!(parse(&"a > 1 => flag \"x\"\n".repeat(500)).is_ok());
        assert!(parse_err(&format!("a == \"{}\" => flag \"x\"", "s".repeat(1025))).message.contains("longer than 1024"));
        assert!(parse_err(&format!("a in [{}] => flag \"x\"", vec!["1"; 1001].join(","))).message.contains("more than 1000 items"));
        assert!(parse(&format!("a in [{}] => flag \"x\"", vec!["1"; 1000].join(","))).is_ok());
        assert!(parse_err(&format!("a > 1 => flag \"{}\"", "f".repeat(101))).message.contains("longer than 100"));
        assert!(parse_err("a > 1 => flag \"tab\there\"").message.contains("control character"));
        assert!(parse_err("a > 1 \u{7} => flag \"x\"").message.contains("control character U+0007"));
    }

    #[test]
    fn a_comparison_with_a_missing_value_is_false_and_its_negation_true() {
        assert_eq!(rows("age > 20"), vec![1, 3, 5]);
        assert_eq!(rows("not (age > 20)"), vec![0, 2, 4]);
        assert_eq!(rows("age != 30"), vec![0, 3, 4, 5]);
        assert_eq!(rows("not (age == 30)"), vec![0, 2, 3, 4, 5]);
        assert_eq!(rows("age is missing"), vec![2]);
        assert_eq!(rows("age is not missing"), vec![0, 1, 3, 4, 5]);
        assert_eq!(rows("sex is missing or occupation is missing"), vec![2, 3]);
        assert_eq!(rows("sex != \"Male\""), vec![1, 3, 5]);
        assert_eq!(rows("sex not in [\"Male\"]"), vec![1, 3, 5]);
        assert_eq!(rows("not (sex in [\"Male\"])"), vec![1, 2, 3, 5]);
        assert_eq!(rows("sex != occupation"), vec![0, 1, 4, 5]);
        assert_eq!(rows("age + capital_gain > 0"), vec![0, 1, 3, 5]);
        assert_eq!(rows("age between 0 and 100"), vec![0, 1, 3, 4, 5]);
    }

    #[test]
    fn between_is_inclusive_and_in_matches_numbers_and_text() {
        assert_eq!(rows("age between 18 and 45"), vec![1, 3, 4]);
        assert_eq!(rows("age between age and age"), vec![0, 1, 3, 4, 5]);
        assert_eq!(rows("score between 0.4 and 0.6"), vec![2, 3, 4, 5]);
        assert_eq!(rows("age in [17, 45]"), vec![0, 3]);
        assert_eq!(rows("age not in [17, 45]"), vec![1, 4, 5]);
        // Long lists take the sorted path; −0 is 0.
        assert_eq!(rows("age in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 60, 17]"), vec![0, 5]);
        assert_eq!(rows("capital_gain in [-0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]"), vec![0, 1, 3]);
        assert_eq!(rows("capital_gain not in [-0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]"), vec![2, 5]);
        assert_eq!(rows("occupation in [\"Sales\", \"Exec\"]"), vec![0, 2, 4, 5]);
        let many: Vec<String> = (0..20).map(|i| format!("\"o{i}\"")).chain(["\"Exec\"".to_string()]).collect();
        assert_eq!(rows(&format!("occupation in [{}]", many.join(", "))), vec![4]);
        assert_eq!(rows(&format!("occupation not in [{}]", many.join(", "))), vec![0, 1, 2, 5]);
    }

    #[test]
    fn arithmetic_division_by_zero_is_missing_and_booleans_compare_as_numbers() {
        assert_eq!(rows("age / 0 is missing"), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(rows("(age - 30) / (age - 30) == 1"), vec![0, 3, 4, 5]);
        assert_eq!(rows("capital_gain / capital_gain is missing"), vec![0, 1, 3, 4]);
        assert_eq!(rows("-age < -40 and age * 2 - 10 / 2 >= 85"), vec![3, 5]);
        assert_eq!(rows("(age > 20) == true"), vec![1, 3, 5]);
        assert_eq!(rows("(age > 20) != (sex == \"Female\")"), Vec::<usize>::new());
        assert_eq!(rows("true"), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(rows("false or 1 > 2"), Vec::<usize>::new());
    }

    #[test]
    fn the_first_matching_decision_wins_and_later_ones_are_counted_as_shadowed() {
        let set = parse("age < 18 => decision = 0\nscore > 0.3 => decision = 1\nage > 40 => decision = 1\nsex == \"Female\" => flag \"f\"\nscore > 0.9 => flag \"high\"\nage > 0 => flag \"f\"\nage > 50 => score = 0.1\nage > 20 => score = 0.1").unwrap();
        let out = apply(&set, &batch(), "s").unwrap();
        assert_eq!(out.touched[0], vec![0]);
        assert_eq!(out.touched[1], vec![1, 2, 3, 4, 5]);
        assert_eq!(out.decision, vec![Some(false), Some(true), Some(true), Some(true), Some(true), Some(true)]);
        // Rule 2 met row 0 after rule 1 had decided it the other way; rule 3's rows were all decided already, alike.
        assert_eq!(out.touched[1].len() + 1, 6);
        assert_eq!((out.shadowed[1], out.conflicts[1]), (0, 0));
        assert_eq!((out.shadowed[2], out.conflicts[2]), (2, 0));
        let flip = parse("age < 18 => decision = 0\nscore > 0.1 => decision = 1").unwrap();
        let o = apply(&flip, &batch(), "s").unwrap();
        assert_eq!((o.shadowed[1], o.conflicts[1]), (1, 1));
        assert_eq!(o.decision[0], Some(false));
        // Flags accumulate, once each.
        assert_eq!(out.flags[1], vec!["f".to_string(), "high".to_string()]);
        assert_eq!(out.flags[0], vec!["f".to_string()]);
        assert_eq!(out.shadowed[5], 3);
        // Score overrides: first wins; an agreeing later rule is shadowed without conflict.
        assert_eq!(out.score, vec![None, Some(0.1), None, Some(0.1), None, Some(0.1)]);
        assert_eq!((out.shadowed[7], out.conflicts[7]), (1, 0));
    }

    #[test]
    fn apply_checks_the_data() {
        let set = parse("agee > 1 => flag \"x\"").unwrap();
        assert!(apply(&set, &batch(), "s").unwrap_err().message.contains("did you mean 'age'"));
        // The score column is needed only when a rule uses it.
        let no_score = parse("age > 1 => flag \"x\"").unwrap();
        assert!(apply(&no_score, &batch(), "nope").is_ok());
        let e = apply(&parse("age > 1 => flag \"x\"\nscore > 1 => flag \"x\"").unwrap(), &batch(), "nope").unwrap_err();
        assert_eq!(at(&e), (2, 1));
        assert!(e.message.contains("no score column 'nope'"), "{e}");
        assert!(apply(&no_score, &batch(), "sex").unwrap_err().message.contains("holds text"));
        let mut short = batch();
        short.columns.insert("age".into(), Values::Numeric(vec![1.0]));
        assert!(apply(&no_score, &short, "s").unwrap_err().message.contains("has 1 values for 6 rows"));
        let empty = Batch {
            rows: 0,
            columns: [("age".to_string(), Values::Numeric(vec![]))].into_iter().collect(),
        };
        let out = apply(&no_score, &empty, "s").unwrap();
        assert_eq!(out.touched, vec![Vec::<usize>::new()]);
    }

    #[test]
    fn printing_round_trips() {
        let sources = [
            "a > 1 or b > 1 and c > 1",
            "(a > 1 or b > 1) and not (c > 1 and d is not missing)",
            "not not a > 1",
            "a - (b - c) > -(d * e) / (f + g)",
            "-(-a) > 0 and - - a > 0",
            "(a > 1) == (b < 2) and (a > 1) != true",
            "x in [1, -2.5, 1e-7, 1e300, \"no\", true] and y not in [\"a \\\" b\"]",
            "a * 2 between b - 1 and (c between 1 and 2) + 1",
            "`odd name` is missing and `score` > score and `And` > 1 and a.b > 0",
            "TRUE AND x Is Not Missing OR y > .5",
            "(((a > 1)))",
        ];
        for s in sources {
            let once = cond_of(s);
            let printed = once.to_string();
            let twice = cond_of(&printed);
            assert_eq!(once, twice, "{s} -> {printed}");
            assert_eq!(printed, twice.to_string());
        }
        assert_eq!(cond_of("(((a > 1)))").to_string(), "a > 1");
        assert_eq!(cond_of("a - (b - c) > 0").to_string(), "a - (b - c) > 0");
        assert_eq!(cond_of("(a - b) - c > 0").to_string(), "a - b - c > 0");
        let set = parse("a > 1 => score = -0.5\nb > 1 => flag \"q\\\"\"\nc > 1 => decision = 1").unwrap();
        let again = parse(&set.to_string()).unwrap();
        for (x, y) in set.rules.iter().zip(&again.rules) {
            assert_eq!((&x.condition, &x.action), (&y.condition, &y.action));
        }
    }

    // ---- A naive row-by-row reference, and random rule sets checked against it. ----

    #[derive(Clone, Debug)]
    enum R {
        N(f64),
        T(String),
        B(bool),
    }

    fn reval(e: &Expr, b: &Batch, score: &[f64], row: usize) -> R {
        let n = |e: &Expr| match reval(e, b, score, row) {
            R::N(v) => v,
            R::B(x) => {
                if x {
                    1.0
                } else {
                    0.0
                }
            }
            R::T(_) => panic!("text where a number was expected"),
        };
        let t = |e: &Expr| match reval(e, b, score, row) {
            R::T(s) => s,
            _ => panic!("not text"),
        };
        let bo = |e: &Expr| match reval(e, b, score, row) {
            R::B(x) => x,
            _ => panic!("not a condition"),
        };
        let is_text = |e: &Expr| matches!(reval(e, b, score, row), R::T(_));
        match &e.node {
            Node::Number(v) => R::N(*v),
            Node::Text(s) => R::T(s.clone()),
            Node::Bool(x) => R::B(*x),
            Node::Score => R::N(score[row]),
            Node::Column(c) => match &b.columns[c] {
                Values::Numeric(v) => R::N(v[row]),
                Values::Text(v) => R::T(v[row].clone()),
            },
            Node::Neg(x) => R::N(-n(x)),
            Node::Arith(op, x, y) => {
                let (x, y) = (n(x), n(y));
                R::N(match op {
                    ArithOp::Add => x + y,
                    ArithOp::Sub => x - y,
                    ArithOp::Mul => x * y,
                    ArithOp::Div => {
                        if y == 0.0 {
                            f64::NAN
                        } else {
                            x / y
                        }
                    }
                })
            }
            Node::Compare(op, x, y) => {
                if is_text(x) {
                    let (x, y) = (t(x), t(y));
                    if x.is_empty() || y.is_empty() {
                        return R::B(false);
                    }
                    return R::B(if *op == CmpOp::Eq { x == y } else { x != y });
                }
                let (x, y) = (n(x), n(y));
                if x.is_nan() || y.is_nan() {
                    return R::B(false);
                }
                R::B(match op {
                    CmpOp::Lt => x < y,
                    CmpOp::Le => x <= y,
                    CmpOp::Gt => x > y,
                    CmpOp::Ge => x >= y,
                    CmpOp::Eq => x == y,
                    CmpOp::Ne => x != y,
                })
            }
            Node::In { value, list, negated } => {
                let found = if is_text(value) {
                    let v = t(value);
                    if v.is_empty() {
                        return R::B(false);
                    }
                    list.iter().any(|i| t(i) == v)
                } else {
                    let v = n(value);
                    if v.is_nan() {
                        return R::B(false);
                    }
                    list.iter().any(|i| n(i) == v)
                };
                R::B(found != *negated)
            }
            Node::Between { value, low, high } => {
                let (v, l, h) = (n(value), n(low), n(high));
                R::B(!v.is_nan() && !l.is_nan() && !h.is_nan() && l <= v && v <= h)
            }
            Node::Missing { value, negated } => {
                let missing = match reval(value, b, score, row) {
                    R::N(v) => v.is_nan(),
                    R::T(s) => s.is_empty(),
                    R::B(_) => panic!("a condition is never missing"),
                };
                R::B(missing != *negated)
            }
            Node::Not(x) => R::B(!bo(x)),
            Node::And(xs) => R::B(xs.iter().all(&bo)),
            Node::Or(xs) => R::B(xs.iter().any(&bo)),
        }
    }

    fn reference(set: &RuleSet, b: &Batch, score: &[f64]) -> Applied {
        let n = b.rows;
        let mut out = Applied {
            decision: vec![None; n],
            score: vec![None; n],
            flags: vec![vec![]; n],
            ..Applied::default()
        };
        for rule in &set.rules {
            let (mut touched, mut shadowed, mut conflicts) = (vec![], 0, 0);
            for row in 0..n {
                let R::B(hit) = reval(&rule.condition, b, score, row) else { panic!("not a condition") };
                if !hit {
                    continue;
                }
                touched.push(row);
                match &rule.action {
                    Action::Decision(d) => match out.decision[row] {
                        None => out.decision[row] = Some(*d),
                        Some(p) => {
                            shadowed += 1;
                            conflicts += usize::from(p != *d);
                        }
                    },
                    Action::Score(s) => match out.score[row] {
                        None => out.score[row] = Some(*s),
                        Some(p) => {
                            shadowed += 1;
                            conflicts += usize::from(p != *s);
                        }
                    },
                    Action::Flag(f) => {
                        if out.flags[row].contains(f) {
                            shadowed += 1;
                        } else {
                            out.flags[row].push(f.clone());
                        }
                    }
                }
            }
            out.touched.push(touched);
            out.shadowed.push(shadowed);
            out.conflicts.push(conflicts);
        }
        out
    }

    /// xorshift64*: enough randomness for test cases, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
            xs[self.below(xs.len())].clone()
        }
    }

    fn ex(node: Node) -> Expr {
        Expr { at: Pos(0), node }
    }

    fn bx(node: Node) -> Box<Expr> {
        Box::new(ex(node))
    }

    fn gen_num(r: &mut Rng, depth: usize) -> Expr {
        match r.below(if depth == 0 { 4 } else { 6 }) {
            0 => ex(Node::Number(r.pick(&[0.0, 1.0, 2.0, 0.5, 3.0]))),
            1 => col("a"),
            2 => col("b"),
            3 => ex(Node::Score),
            4 => ex(Node::Neg(Box::new(gen_num(r, depth - 1)))),
            _ => {
                let op = r.pick(&[ArithOp::Add, ArithOp::Sub, ArithOp::Mul, ArithOp::Div]);
                ex(Node::Arith(op, Box::new(gen_num(r, depth - 1)), Box::new(gen_num(r, depth - 1))))
            }
        }
    }

    fn gen_text(r: &mut Rng) -> Expr {
        if r.below(2) == 0 { col("t") } else { ex(Node::Text(r.pick(&["x", "y", "w"]).into())) }
    }

    fn gen_list_num(r: &mut Rng) -> Vec<Expr> {
        (0..1 + r.below(12))
            .map(|_| match r.below(4) {
                0 => ex(Node::Neg(bx(Node::Number(1.0)))),
                1 => ex(Node::Bool(r.below(2) == 0)),
                _ => ex(Node::Number(r.pick(&[0.0, 0.5, 1.0, 2.0, 3.0]))),
            })
            .collect()
    }

    fn gen_bool(r: &mut Rng, depth: usize) -> Expr {
        let sub = depth.saturating_sub(1);
        match r.below(if depth == 0 { 7 } else { 11 }) {
            0 => {
                let op = r.pick(&[CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge, CmpOp::Eq, CmpOp::Ne]);
                ex(Node::Compare(op, Box::new(gen_num(r, sub)), Box::new(gen_num(r, sub))))
            }
            1 => ex(Node::Compare(r.pick(&[CmpOp::Eq, CmpOp::Ne]), Box::new(gen_text(r)), Box::new(gen_text(r)))),
            2 => ex(Node::In {
                value: Box::new(gen_num(r, sub)),
                list: gen_list_num(r),
                negated: r.below(2) == 0,
            }),
            3 => {
                let list = (0..1 + r.below(12)).map(|i| ex(Node::Text(if i % 3 == 0 { "x".into() } else { format!("v{i}") }))).collect();
                ex(Node::In {
                    value: Box::new(col("t")),
                    list,
                    negated: r.below(2) == 0,
                })
            }
            4 => {
                let (lo, hi) = if r.below(2) == 0 {
                    let (x, y) = (r.below(4) as f64, r.below(4) as f64);
                    (ex(Node::Number(x.min(y))), ex(Node::Number(x.max(y))))
                } else {
                    (gen_num(r, sub), col("b"))
                };
                ex(Node::Between {
                    value: Box::new(gen_num(r, sub)),
                    low: Box::new(lo),
                    high: Box::new(hi),
                })
            }
            5 => {
                let value = if r.below(2) == 0 { col("t") } else { gen_num(r, sub) };
                ex(Node::Missing {
                    value: Box::new(value),
                    negated: r.below(2) == 0,
                })
            }
            6 => ex(Node::Bool(r.below(2) == 0)),
            7 => ex(Node::Not(Box::new(gen_bool(r, sub)))),
            8 => ex(Node::And((0..2 + r.below(3)).map(|_| gen_bool(r, sub)).collect())),
            9 => ex(Node::Or((0..2 + r.below(3)).map(|_| gen_bool(r, sub)).collect())),
            _ => ex(Node::Compare(r.pick(&[CmpOp::Eq, CmpOp::Ne]), Box::new(gen_bool(r, sub)), bx(Node::Bool(r.below(2) == 0)))),
        }
    }

    /// Nested and-in-and (or-in-or) flattened, as the parser does.
    fn flatten(e: &Expr) -> Expr {
        let node = match &e.node {
            Node::And(xs) | Node::Or(xs) => {
                let is_and = matches!(e.node, Node::And(_));
                let mut out = vec![];
                for x in xs.iter().map(flatten) {
                    match x.node {
                        Node::And(v) if is_and => out.extend(v),
                        Node::Or(v) if !is_and => out.extend(v),
                        _ => out.push(x),
                    }
                }
                if is_and { Node::And(out) } else { Node::Or(out) }
            }
            Node::Not(x) => Node::Not(Box::new(flatten(x))),
            Node::Compare(op, a, b) => Node::Compare(*op, Box::new(flatten(a)), Box::new(flatten(b))),
            other => other.clone(),
        };
        ex(node)
    }

    #[test]
    fn vectorised_evaluation_equals_a_row_by_row_reference_on_random_rules() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let rows = 40;
        let nums = [-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, NAN];
        let mut columns = BTreeMap::new();
        columns.insert("a".to_string(), Values::Numeric((0..rows).map(|_| r.pick(&nums)).collect()));
        columns.insert("b".to_string(), Values::Numeric((0..rows).map(|_| r.pick(&nums)).collect()));
        columns.insert("t".to_string(), Values::Text((0..rows).map(|_| r.pick(&["x", "y", "z", ""]).to_string()).collect()));
        columns.insert("s".to_string(), Values::Numeric((0..rows).map(|_| r.pick(&[0.0, 0.25, 0.5, 0.75, 1.0, NAN])).collect()));
        let b = Batch { rows, columns };
        let Values::Numeric(score) = b.columns["s"].clone() else { panic!() };
        let mut hits = 0;
        for case in 0..400 {
            let rules: Vec<String> = (0..1 + r.below(5))
                .map(|_| {
                    let cond = flatten(&gen_bool(&mut r, 3));
                    let action = match r.below(3) {
                        0 => Action::Decision(r.below(2) == 0),
                        1 => Action::Score(r.pick(&[0.0, 0.5, 1.0])),
                        _ => Action::Flag(r.pick(&["p", "q"]).into()),
                    };
                    Rule {
                        line: 0,
                        text: String::new(),
                        condition: cond,
                        action,
                    }
                    .to_string()
                })
                .collect();
            let src = rules.join("\n");
            let set = parse(&src).unwrap_or_else(|e| panic!("case {case}: {e}\n{src}"));
            // Printing and parsing agree with the generated trees.
            assert_eq!(parse(&set.to_string()).unwrap().to_string(), set.to_string());
            let got = apply(&set, &b, "s").unwrap_or_else(|e| panic!("case {case}: {e}\n{src}"));
            let want = reference(&set, &b, &score);
            assert_eq!(got, want, "case {case}:\n{src}");
            hits += got.touched.iter().filter(|t| !t.is_empty() && t.len() < rows).count();
        }
        // The cases are not all trivially empty or full.
        assert!(hits > 200, "{hits}");
    }
}
