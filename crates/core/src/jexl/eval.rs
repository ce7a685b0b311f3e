//! The compiled tree and its evaluator.
//!
//! Evaluation returns `Cow<Value>`: context values and constants are borrowed, so the common
//! filter (`normandy.channel in [...] && ...`) runs without allocating. Recursion depth equals
//! the tree depth, which the parser bounds.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use indexmap::IndexMap;

use crate::context::PrefSnapshot;
use crate::value::{Object, Value};

use super::EvalError;
use super::ast::BinOp;
use super::ops::{self, Member};
use super::transforms::{self, Transform};

/// An identifier with a one-entry inline cache of its index in the last object it was read
/// from. Context objects built the same way share key order, so the guess almost always hits
/// and a lookup costs one string comparison instead of a hash.
#[derive(Debug)]
pub(crate) struct Name {
    pub text: Arc<str>,
    /// `text` in two words when it is at most 16 bytes long (see [`short_words`]), so that the
    /// cached lookup does not read `text`, a separate allocation rarely in cache when many
    /// filters are evaluated in turn.
    words: Option<(u64, u64)>,
    slot: AtomicUsize,
}

impl Name {
    pub(crate) fn new(text: Arc<str>) -> Name {
        Name {
            words: short_words(text.as_bytes()),
            text,
            slot: AtomicUsize::new(0),
        }
    }

    /// Whether `key` is this name.
    #[inline]
    fn is(&self, key: &str) -> bool {
        match self.words {
            Some(words) => {
                key.len() == self.text.len() && short_words(key.as_bytes()) == Some(words)
            }
            None => ops::str_eq(key, &self.text),
        }
    }

    #[inline(always)]
    fn lookup<'v>(&self, map: &'v Object) -> Option<&'v Value> {
        let guess = self.slot.load(AtomicOrdering::Relaxed);
        if let Some((key, value)) = map.get_index(guess)
            && self.is(key)
        {
            return Some(value);
        }
        let (index, _, value) = map.get_full(&*self.text)?;
        self.slot.store(index, AtomicOrdering::Relaxed);
        Some(value)
    }
}

/// Two words that, for texts of the same length up to 16 bytes, are equal exactly when the
/// texts are: overlapping loads from both ends cover every byte. `None` for longer texts.
#[inline]
fn short_words(bytes: &[u8]) -> Option<(u64, u64)> {
    let len = bytes.len();
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u64::from_ne_bytes)
    };
    let half = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|w| w.try_into().ok())
            .map_or(0, |w| u64::from(u32::from_ne_bytes(w)))
    };
    match len {
        8..=16 => Some((word(0), word(len - 8))),
        4..=7 => Some((half(0), half(len - 4))),
        0..=3 => Some((bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b)), 0)),
        _ => None,
    }
}

/// A compiled expression node.
#[derive(Debug)]
pub(crate) enum Node {
    /// A literal, or a subtree folded at compile time.
    Const(Value),
    /// A top-level identifier: a member of `vars`.
    Global(Name),
    /// A relative identifier (`.x`): a member of the current filter element.
    Relative(Name),
    /// `root.step.step…`: an identifier chain (`relative` when it starts with `.root`).
    Path {
        root: Name,
        relative: bool,
        steps: Vec<Name>,
    },
    /// `object.name` on anything but an identifier chain.
    Member(Box<Node>, Name),
    /// `!operand`.
    Not(Box<Node>),
    /// Any binary operator except `&&`/`||`.
    Binary(BinOp, Box<Node>, Box<Node>),
    /// A flattened `a && b && …` chain (every operand is evaluated, as in mozjexl).
    And(Vec<Node>),
    /// A flattened `a || b || …` chain.
    Or(Vec<Node>),
    /// `test ? consequent : alternate`; no consequent for `test ?: alternate`.
    Conditional {
        test: Box<Node>,
        consequent: Option<Box<Node>>,
        alternate: Box<Node>,
    },
    /// `subject[expr]` where `expr` uses relative identifiers: keep matching elements.
    FilterRelative { subject: Box<Node>, expr: Box<Node> },
    /// `subject[expr]` otherwise: a boolean keeps or drops the subject, anything else indexes.
    FilterStatic { subject: Box<Node>, expr: Box<Node> },
    /// `subject|transform(args…)`.
    Transform {
        transform: Transform,
        subject: Box<Node>,
        args: Vec<Node>,
    },
    /// An array literal with at least one non-constant element.
    Array(Vec<Node>),
    /// An object literal with at least one non-constant value.
    Object(Vec<(Arc<str>, Node)>),
    /// An empty sub-expression (`()`, `f()`, `{a:}`): an error when evaluated.
    Missing,
}

/// What an evaluation can see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Env<'a> {
    pub vars: &'a Value,
    /// The current filter element (the top-level `vars` outside filters).
    pub rel: &'a Value,
    pub prefs: &'a PrefSnapshot,
}

impl<'a> Env<'a> {
    /// `relativeContext || context`: a falsy filter element reads from the top level.
    fn relative_context(&self) -> &'a Value {
        if self.rel.is_truthy() {
            self.rel
        } else {
            self.vars
        }
    }
}

type Eval<'a> = Result<Cow<'a, Value>, EvalError>;

pub(crate) fn error(message: impl Into<String>) -> EvalError {
    EvalError {
        message: message.into(),
    }
}

const UNDEFINED: Cow<'static, Value> = Cow::Owned(Value::Undefined);

fn member_cow<'a>(member: Member<'a>) -> Cow<'a, Value> {
    match member {
        Member::Ref(v) => Cow::Borrowed(v),
        Member::Owned(v) => Cow::Owned(v),
    }
}

/// `ctx[name]` for a context that is not null or undefined (objects use the inline cache).
fn read<'a>(ctx: &'a Value, name: &Name) -> Cow<'a, Value> {
    match ctx {
        Value::Object(map) => name.lookup(map).map_or(UNDEFINED, Cow::Borrowed),
        Value::Undefined | Value::Null => UNDEFINED,
        other => member_cow(ops::get_member(other, &name.text)),
    }
}

/// mozjexl's `Identifier` with `from`: `undefined` stays `undefined`, an array is replaced by
/// its first element, and reading from `null`/`undefined` after that throws.
fn traverse<'a>(ctx: &'a Value, name: &Name) -> Eval<'a> {
    let target = match ctx {
        Value::Undefined => return Ok(UNDEFINED),
        Value::Array(items) => items.first().ok_or_else(|| {
            error(format!(
                "cannot read property '{}' of undefined (empty array)",
                name.text
            ))
        })?,
        other => other,
    };
    match target {
        Value::Undefined | Value::Null => Err(error(format!(
            "cannot read property '{}' of {}",
            name.text,
            ops::to_js_string(target)
        ))),
        other => Ok(read(other, name)),
    }
}

/// Applies `f` to a borrowed-or-owned value, keeping borrows when possible.
fn project<'a>(value: Cow<'a, Value>, f: impl for<'x> FnOnce(&'x Value) -> Eval<'x>) -> Eval<'a> {
    match value {
        Cow::Borrowed(v) => f(v),
        Cow::Owned(v) => f(&v).map(|r| Cow::Owned(r.into_owned())),
    }
}

/// A value produced without allocation, small enough to return in registers. The fast path
/// covers constants, identifier chains through objects and arrays, and `versionCompare`;
/// everything else (including every error) is left to [`eval`].
#[derive(Debug, Clone, Copy)]
enum Fast<'a> {
    Ref(&'a Value),
    Num(f64),
    Undefined,
    Slow,
}

impl Fast<'_> {
    /// The value when it is a number.
    #[inline]
    fn number(self) -> Option<f64> {
        match self {
            Fast::Num(n) | Fast::Ref(&Value::Number(n)) => Some(n),
            _ => None,
        }
    }
}

/// [`compare`] on two numbers (`versionCompare(…) >= 0`): IEEE comparisons, which is what
/// JavaScript's `==` and `<` give for numbers, NaN included.
#[inline]
fn compare_numbers(op: BinOp, a: f64, b: f64) -> bool {
    match op {
        BinOp::Eq => a == b,
        BinOp::Ne => a != b,
        BinOp::Lt => a < b,
        BinOp::Gt => a > b,
        BinOp::Le => a <= b,
        BinOp::Ge => a >= b,
        _ => compare(op, &Value::Number(a), &Value::Number(b)),
    }
}

/// `ctx[name]` when `ctx` is an object (or nothing, for the top level).
#[inline]
fn get_fast<'a>(ctx: &'a Value, name: &Name) -> Fast<'a> {
    match ctx {
        Value::Object(map) => name.lookup(map).map_or(Fast::Undefined, Fast::Ref),
        Value::Undefined | Value::Null => Fast::Undefined,
        _ => Fast::Slow,
    }
}

/// One `.name` step of an identifier chain (see [`traverse`]).
#[inline]
fn step_fast<'a>(ctx: &'a Value, name: &Name) -> Fast<'a> {
    let target = match ctx {
        Value::Undefined => return Fast::Undefined,
        Value::Array(items) => match items.first() {
            Some(first) => first,
            None => return Fast::Slow,
        },
        other => other,
    };
    match target {
        Value::Object(map) => name.lookup(map).map_or(Fast::Undefined, Fast::Ref),
        _ => Fast::Slow,
    }
}

fn fast<'a>(node: &'a Node, env: &Env<'a>) -> Fast<'a> {
    match node {
        Node::Const(v) => Fast::Ref(v),
        Node::Global(name) => get_fast(env.vars, name),
        Node::Relative(name) => get_fast(env.relative_context(), name),
        Node::Path {
            root,
            relative,
            steps,
        } => {
            let base = if *relative {
                env.relative_context()
            } else {
                env.vars
            };
            let mut current = match get_fast(base, root) {
                Fast::Ref(v) => v,
                other => return other,
            };
            for step in steps {
                current = match step_fast(current, step) {
                    Fast::Ref(v) => v,
                    other => return other,
                };
            }
            Fast::Ref(current)
        }
        Node::Transform {
            transform: Transform::VersionCompare(parsed),
            subject,
            args,
        } if args.len() == 1 => {
            let version = |f: Fast<'a>| match f {
                Fast::Ref(Value::String(s)) => Some(&**s),
                Fast::Ref(Value::Undefined | Value::Null) | Fast::Undefined => Some(""),
                _ => None,
            };
            let Some(a) = version(fast(subject, env)) else {
                return Fast::Slow;
            };
            if let Some(parsed) = parsed {
                return Fast::Num(transforms::version_compare_parsed(a, parsed));
            }
            match args.first().and_then(|arg| version(fast(arg, env))) {
                Some(b) => Fast::Num(transforms::version_compare(a, b)),
                None => Fast::Slow,
            }
        }
        _ => Fast::Slow,
    }
}

/// Evaluates `node`.
pub(crate) fn eval<'a>(node: &'a Node, env: &Env<'a>) -> Eval<'a> {
    if matches!(
        node,
        Node::Const(_) | Node::Global(_) | Node::Relative(_) | Node::Path { .. }
    ) {
        match fast(node, env) {
            Fast::Ref(v) => return Ok(Cow::Borrowed(v)),
            Fast::Num(n) => return Ok(Cow::Owned(Value::Number(n))),
            Fast::Undefined => return Ok(UNDEFINED),
            Fast::Slow => {}
        }
    }
    match node {
        Node::Const(v) => Ok(Cow::Borrowed(v)),
        Node::Global(name) => Ok(read(env.vars, name)),
        Node::Relative(name) => Ok(read(env.relative_context(), name)),
        Node::Path {
            root,
            relative,
            steps,
        } => {
            let base = if *relative {
                env.relative_context()
            } else {
                env.vars
            };
            let mut current = read(base, root);
            for step in steps {
                current = project(current, |ctx| traverse(ctx, step))?;
            }
            Ok(current)
        }
        Node::Member(from, name) => project(eval(from, env)?, |ctx| traverse(ctx, name)),
        Node::Not(operand) => Ok(Cow::Owned(Value::Bool(!truthy(operand, env)?))),
        // Boolean-valued nodes take the allocation-free path of `truthy`.
        Node::Binary(op, _, _) if op.is_comparison() => {
            Ok(Cow::Owned(Value::Bool(truthy(node, env)?)))
        }
        Node::And(items) | Node::Or(items) if items.iter().all(is_boolean) => {
            Ok(Cow::Owned(Value::Bool(truthy(node, env)?)))
        }
        Node::Binary(op, left, right) => {
            let l = eval(left, env)?;
            let r = eval(right, env)?;
            Ok(Cow::Owned(binary(*op, &l, &r)))
        }
        Node::And(items) => fold_chain(items, env, true),
        Node::Or(items) => fold_chain(items, env, false),
        Node::Conditional {
            test,
            consequent,
            alternate,
        } => {
            let t = eval(test, env)?;
            if t.is_truthy() {
                match consequent {
                    Some(c) => eval(c, env),
                    None => Ok(t),
                }
            } else {
                eval(alternate, env)
            }
        }
        Node::FilterRelative { subject, expr } => {
            let subject = eval(subject, env)?;
            let items: &[Value] = match &*subject {
                Value::Undefined => return Ok(UNDEFINED),
                Value::Array(items) => items,
                other => std::slice::from_ref(other),
            };
            let mut kept = Vec::new();
            for item in items {
                let inner = Env {
                    vars: env.vars,
                    rel: item,
                    prefs: env.prefs,
                };
                if truthy(expr, &inner)? {
                    kept.push(item.clone());
                }
            }
            Ok(Cow::Owned(Value::array(kept)))
        }
        Node::FilterStatic { subject, expr } => {
            let subject = eval(subject, env)?;
            let key = eval(expr, env)?;
            if let Value::Bool(keep) = *key {
                return Ok(if keep { subject } else { UNDEFINED });
            }
            project(subject, |s| index(s, &key))
        }
        Node::Transform {
            transform,
            subject,
            args,
        } => {
            if let Transform::Unknown(name) = transform {
                return Err(error(format!("Transform '{name}' is not defined.")));
            }
            if let (Transform::StableSample, Node::Array(items), [rate]) =
                (transform, &**subject, args.as_slice())
                && items.len() <= 4
            {
                return stable_sample_array(items, rate, env);
            }
            let subject = eval(subject, env)?;
            let mut small: [Cow<'a, Value>; 4] = Default::default();
            let mut large = Vec::new();
            let values: &[Cow<'a, Value>] = if args.len() <= small.len() {
                for (slot, arg) in small.iter_mut().zip(args) {
                    *slot = eval(arg, env)?;
                }
                small.get(..args.len()).unwrap_or(&[])
            } else {
                for arg in args {
                    large.push(eval(arg, env)?);
                }
                &large
            };
            Ok(Cow::Owned(transforms::apply(
                transform, &subject, values, env.prefs,
            )?))
        }
        Node::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(eval(item, env)?.into_owned());
            }
            Ok(Cow::Owned(Value::array(out)))
        }
        Node::Object(entries) => {
            let mut out = IndexMap::with_capacity(entries.len());
            for (key, value) in entries {
                out.insert(key.clone(), eval(value, env)?.into_owned());
            }
            Ok(Cow::Owned(Value::object(out)))
        }
        Node::Missing => Err(error("cannot evaluate an empty sub-expression")),
    }
}

/// `[a, b, …]|stableSample(rate)` for up to four elements, hashing them without building the
/// array. Operands are evaluated in the same order, with the same errors, as the general path.
fn stable_sample_array<'a>(items: &'a [Node], rate: &'a Node, env: &Env<'a>) -> Eval<'a> {
    let mut values: [Cow<'a, Value>; 4] = Default::default();
    for (slot, item) in values.iter_mut().zip(items) {
        *slot = eval(item, env)?;
    }
    let rate = ops::to_number(&*eval(rate, env)?);
    // `fraction_key`, not `fraction_to_key`: a NaN rate must give Firefox's text key, as in
    // the general path.
    let key =
        crate::sampling::fraction_key(rate).map_err(|e| error(format!("stableSample: {e}")))?;
    let refs = values.each_ref().map(|v| &**v);
    let hash =
        crate::sampling::truncated_hash_of_array(refs.get(..items.len()).unwrap_or_default());
    Ok(Cow::Owned(Value::Bool(
        crate::sampling::SampleKey::of_hash(hash) < key,
    )))
}

/// Whether `node` always evaluates to a boolean (or fails), so that its value is its
/// truthiness. Conservative: nested chains answer `false`.
fn is_boolean(node: &Node) -> bool {
    match node {
        Node::Const(v) => matches!(v, Value::Bool(_)),
        Node::Not(_) => true,
        Node::Binary(op, _, _) => op.is_comparison(),
        Node::Transform { transform, .. } => matches!(
            transform,
            Transform::StableSample
                | Transform::BucketSample
                | Transform::PreferenceIsUserSet
                | Transform::PreferenceExists
        ),
        _ => false,
    }
}

/// `!!eval(node)`, without building intermediate values where the answer is a boolean anyway.
pub(crate) fn truthy<'a>(node: &'a Node, env: &Env<'a>) -> Result<bool, EvalError> {
    match node {
        Node::Const(v) => Ok(v.is_truthy()),
        Node::Not(operand) => Ok(!truthy(operand, env)?),
        // Every operand is evaluated (mozjexl evaluates both sides), so no short-circuit.
        Node::And(items) => {
            let mut all = true;
            for item in items {
                all &= truthy(item, env)?;
            }
            Ok(all)
        }
        Node::Or(items) => {
            let mut any = false;
            for item in items {
                any |= truthy(item, env)?;
            }
            Ok(any)
        }
        Node::Binary(op, left, right) if op.is_comparison() => {
            // Operands on the fast path stay in registers; the rest are evaluated in full.
            let lf = fast(left, env);
            let rf = match &**right {
                Node::Const(v) => Fast::Ref(v),
                other => fast(other, env),
            };
            if let (Some(a), Some(b)) = (lf.number(), rf.number()) {
                return Ok(compare_numbers(*op, a, b));
            }
            let (mut ln, mut rn) = (Value::Undefined, Value::Undefined);
            let (l_slow, r_slow);
            let l: &Value = match lf {
                Fast::Ref(v) => v,
                Fast::Num(n) => {
                    ln = Value::Number(n);
                    &ln
                }
                Fast::Undefined => &ln,
                Fast::Slow => {
                    l_slow = eval(left, env)?;
                    &l_slow
                }
            };
            let r: &Value = match rf {
                Fast::Ref(v) => v,
                Fast::Num(n) => {
                    rn = Value::Number(n);
                    &rn
                }
                Fast::Undefined => &rn,
                Fast::Slow => {
                    r_slow = eval(right, env)?;
                    &r_slow
                }
            };
            Ok(compare(*op, l, r))
        }
        Node::Conditional {
            test,
            consequent: Some(consequent),
            alternate,
        } => {
            if truthy(test, env)? {
                truthy(consequent, env)
            } else {
                truthy(alternate, env)
            }
        }
        other => match fast(other, env) {
            Fast::Ref(v) => Ok(v.is_truthy()),
            Fast::Num(n) => Ok(!(n == 0.0 || n.is_nan())),
            Fast::Undefined => Ok(false),
            Fast::Slow => Ok(eval(other, env)?.is_truthy()),
        },
    }
}

/// A comparison operator (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`) on evaluated operands.
fn compare(op: BinOp, l: &Value, r: &Value) -> bool {
    use BinOp as B;
    match op {
        B::Eq => ops::loose_eq(l, r),
        B::Ne => !ops::loose_eq(l, r),
        B::Lt => ops::less_than(l, r) == Some(true),
        B::Gt => ops::less_than(r, l) == Some(true),
        B::Le => ops::less_than(r, l) == Some(false),
        B::Ge => ops::less_than(l, r) == Some(false),
        B::In => match r {
            Value::String(haystack) => match l {
                Value::String(needle) => haystack.contains(&**needle),
                other => haystack.contains(&*ops::to_str(other)),
            },
            Value::Array(items) => items.iter().any(|item| ops::loose_eq(item, l)),
            _ => false,
        },
        _ => binary(op, l, r).is_truthy(),
    }
}

/// `a && b && …` / `a || b || …`, left-associative, every operand evaluated.
fn fold_chain<'a>(items: &'a [Node], env: &Env<'a>, and: bool) -> Eval<'a> {
    let mut acc: Option<Cow<'a, Value>> = None;
    for item in items {
        let value = eval(item, env)?;
        acc = Some(match acc {
            None => value,
            Some(prev) => {
                if prev.is_truthy() == and {
                    value
                } else {
                    prev
                }
            }
        });
    }
    Ok(acc.unwrap_or(UNDEFINED))
}

/// `subject[key]` for a static filter whose expression is not a boolean.
fn index<'a>(subject: &'a Value, key: &Value) -> Eval<'a> {
    match subject {
        Value::Undefined => Ok(UNDEFINED),
        Value::Null => Err(error(format!(
            "cannot read property '{}' of null",
            ops::to_js_string(key)
        ))),
        Value::Array(items) => {
            if let Value::Number(n) = key
                && *n >= 0.0
                && n.fract() == 0.0
                && *n < items.len() as f64
            {
                return Ok(items.get(*n as usize).map_or(UNDEFINED, Cow::Borrowed));
            }
            Ok(member_cow(ops::get_member(subject, &ops::to_str(key))))
        }
        other => Ok(member_cow(ops::get_member(other, &ops::to_str(key)))),
    }
}

/// A binary operator other than `&&`/`||` on evaluated operands.
pub(crate) fn binary(op: BinOp, l: &Value, r: &Value) -> Value {
    use BinOp as B;
    match op {
        B::Add => ops::add(l, r),
        B::Sub => Value::Number(ops::to_number(l) - ops::to_number(r)),
        B::Mul => Value::Number(ops::to_number(l) * ops::to_number(r)),
        B::Div => Value::Number(ops::to_number(l) / ops::to_number(r)),
        B::FloorDiv => Value::Number((ops::to_number(l) / ops::to_number(r)).floor()),
        B::Mod => Value::Number(ops::to_number(l) % ops::to_number(r)),
        B::Pow => Value::Number(ops::js_pow(ops::to_number(l), ops::to_number(r))),
        B::Eq | B::Ne | B::Lt | B::Gt | B::Le | B::Ge | B::In => Value::Bool(compare(op, l, r)),
        B::And => {
            if l.is_truthy() {
                r.clone()
            } else {
                l.clone()
            }
        }
        B::Or => {
            if l.is_truthy() {
                l.clone()
            } else {
                r.clone()
            }
        }
        B::Intersect => match (l, r) {
            (Value::Array(a), Value::Array(b)) => Value::array(
                a.iter()
                    .filter(|x| b.iter().any(|y| ops::same_value_zero(x, y)))
                    .cloned()
                    .collect(),
            ),
            _ => Value::Undefined,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{BinOp, Name, Value, compare, compare_numbers};

    #[test]
    fn number_comparisons_match_the_general_comparison() {
        let numbers = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let ops = [
            BinOp::Eq,
            BinOp::Ne,
            BinOp::Lt,
            BinOp::Gt,
            BinOp::Le,
            BinOp::Ge,
            BinOp::In,
        ];
        for op in ops {
            for a in numbers {
                for b in numbers {
                    let general = compare(op, &Value::Number(a), &Value::Number(b));
                    assert_eq!(compare_numbers(op, a, b), general, "{op:?} {a} {b}");
                }
            }
        }
    }

    #[test]
    fn names_match_keys_exactly_at_every_length() {
        for len in 0..24 {
            let text = "n".repeat(len);
            let name = Name::new(Arc::from(text.as_str()));
            assert!(name.is(&text), "{len}");
            assert!(!name.is(&format!("{text}n")), "{len}");
            assert!(!name.is(&format!("\0{text}")), "{len}");
            for at in 0..len {
                for other in [b'm', 0u8] {
                    let mut key = text.clone().into_bytes();
                    key[at] = other;
                    let key = String::from_utf8(key).unwrap();
                    assert!(!name.is(&key), "{len} {at}");
                }
            }
        }
    }
}
