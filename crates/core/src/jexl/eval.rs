//! The evaluator of compiled [`Program`]s (see [`super::program`] for their layout).
//!
//! Evaluation returns `Cow<Value>`: context values and constants are borrowed, so the common
//! filter (`normandy.channel in [...] && ...`) runs without allocating. Recursion depth equals
//! the tree depth, which the parser bounds.

use std::borrow::Cow;

use indexmap::IndexMap;

use crate::context::PrefSnapshot;
use crate::sampling;
use crate::value::Value;

use super::EvalError;
use super::ast::BinOp;
use super::ops::{self, Member};
use super::program::{NO_OP, Name, Op, OpId, Program, Span, leading_number};
use super::transforms::{self, Transform};

/// How many of a program's globals are looked up once when an evaluation starts (Normandy
/// filters read `normandy` and sometimes `env`); further ones are looked up when read.
pub(crate) const RESOLVED_GLOBALS: usize = 4;

/// What an evaluation can see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Env<'a> {
    pub program: &'a Program,
    pub vars: &'a Value,
    /// The current filter element (the top-level `vars` outside filters).
    pub rel: &'a Value,
    pub prefs: &'a PrefSnapshot,
    /// The program's first globals as [`get_fast`] reads them from `vars`: every clause of a
    /// filter starts with `normandy.`, so that lookup is done once per evaluation, not per
    /// clause. Reading a global cannot fail or change anything, so reading it early is safe.
    globals: [Option<&'a Value>; RESOLVED_GLOBALS],
}

impl<'a> Env<'a> {
    /// The environment of an evaluation of `program` over `vars`.
    #[inline(always)]
    pub(crate) fn new(program: &'a Program, vars: &'a Value, prefs: &'a PrefSnapshot) -> Env<'a> {
        let mut globals = [None; RESOLVED_GLOBALS];
        for (slot, global) in globals.iter_mut().zip(program.ops_in(program.globals)) {
            if let Op::Key(name) = global {
                *slot = get_fast(program, vars, name);
            }
        }
        Env {
            program,
            vars,
            rel: vars,
            prefs,
            globals,
        }
    }

    /// Global `index` when [`get_fast`] has it; `None` leaves it to [`read`].
    #[inline(always)]
    fn global(&self, index: u32) -> Option<&'a Value> {
        match self.globals.get(index as usize) {
            Some(resolved) => *resolved,
            None => get_fast(self.program, self.vars, self.program.global(index)?),
        }
    }

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
fn read<'v>(program: &Program, ctx: &'v Value, name: &Name) -> Cow<'v, Value> {
    match ctx {
        Value::Object(map) => program.lookup(name, map).map_or(UNDEFINED, Cow::Borrowed),
        Value::Undefined | Value::Null => UNDEFINED,
        other => member_cow(ops::get_member(other, program.text(name.text))),
    }
}

/// Global `index` in full.
fn read_global<'a>(env: &Env<'a>, index: u32) -> Cow<'a, Value> {
    match env.program.global(index) {
        Some(name) => read(env.program, env.vars, name),
        None => UNDEFINED,
    }
}

/// mozjexl's `Identifier` with `from`: `undefined` stays `undefined`, an array is replaced by
/// its first element, and reading from `null`/`undefined` after that throws.
fn traverse<'v>(
    program: &Program,
    ctx: &'v Value,
    name: &Name,
) -> Result<Cow<'v, Value>, EvalError> {
    let target = match ctx {
        Value::Undefined => return Ok(UNDEFINED),
        Value::Array(items) => items.first().ok_or_else(|| {
            error(format!(
                "cannot read property '{}' of undefined (empty array)",
                program.text(name.text)
            ))
        })?,
        other => other,
    };
    match target {
        Value::Undefined | Value::Null => Err(error(format!(
            "cannot read property '{}' of {}",
            program.text(name.text),
            ops::to_js_string(target)
        ))),
        other => Ok(read(program, other, name)),
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

/// `undefined`, for reads that find nothing.
static UNDEFINED_VALUE: Value = Value::Undefined;

/// `ctx[name]` when `ctx` is an object (or nothing, for the top level); `None` leaves the
/// read to [`read`].
#[inline(always)]
fn get_fast<'a>(program: &Program, ctx: &'a Value, name: &Name) -> Option<&'a Value> {
    match ctx {
        Value::Object(map) => Some(program.lookup(name, map).unwrap_or(&UNDEFINED_VALUE)),
        Value::Undefined | Value::Null => Some(&UNDEFINED_VALUE),
        _ => None,
    }
}

/// One `.name` step of an identifier chain when it cannot fail; `None` leaves it to
/// [`traverse`].
#[inline(always)]
fn step_fast<'a>(program: &Program, ctx: &'a Value, name: &Name) -> Option<&'a Value> {
    let target = match ctx {
        Value::Undefined => return Some(&UNDEFINED_VALUE),
        Value::Array(items) => items.first()?,
        other => other,
    };
    match target {
        Value::Object(map) => Some(program.lookup(name, map).unwrap_or(&UNDEFINED_VALUE)),
        _ => None,
    }
}

/// The value of a constant or an identifier (chain) when reading it involves no conversion
/// and cannot fail, borrowed; `None` for every other operation and case, which [`eval`]
/// handles. This is the path of nearly every operand of a filter.
#[inline(always)]
fn read_fast<'a>(id: OpId, env: &Env<'a>) -> Option<&'a Value> {
    let program = env.program;
    match program.op(id) {
        Op::Const(index) => Some(program.value(*index)),
        Op::Global(index) => env.global(*index),
        Op::Relative(name) => get_fast(program, env.relative_context(), name),
        Op::GlobalMember { global, name } => {
            step_fast(program, env.global(u32::from(*global))?, name)
        }
        Op::GlobalPath { global, steps } => {
            keys_fast(program, env.global(*global)?, program.ops_in(*steps))
        }
        Op::RelativePath { steps } => {
            let (Op::Key(root), rest) = program.ops_in(*steps).split_first()? else {
                return None;
            };
            let root = get_fast(program, env.relative_context(), root)?;
            keys_fast(program, root, rest)
        }
        _ => None,
    }
}

/// The [`Op::Key`]s `keys` from `current`, when none of them can fail.
#[inline(always)]
fn keys_fast<'a>(program: &Program, mut current: &'a Value, keys: &[Op]) -> Option<&'a Value> {
    for step in keys {
        let Op::Key(name) = step else {
            return None;
        };
        current = step_fast(program, current, name)?;
    }
    Some(current)
}

/// The [`Op::Key`]s `keys` from `current`, in full.
fn keys<'a>(program: &Program, mut current: Cow<'a, Value>, keys: &[Op]) -> Eval<'a> {
    for step in keys {
        if let Op::Key(name) = step {
            current = project(current, |ctx| traverse(program, ctx, name))?;
        }
    }
    Ok(current)
}

/// The text XPConnect passes for a version: `null`/`undefined` are empty; `None` for
/// anything the fast path leaves to [`eval`].
#[inline]
fn fast_version(value: Fast<'_>) -> Option<&str> {
    match value {
        Fast::Ref(Value::String(s)) => Some(s),
        Fast::Ref(Value::Undefined | Value::Null) => Some(""),
        _ => None,
    }
}

/// [`read_fast`], plus `versionCompare` on such operands, which gives a number.
fn fast<'a>(id: OpId, env: &Env<'a>) -> Fast<'a> {
    let program = env.program;
    match program.op(id) {
        Op::Transform {
            transform,
            operands,
        } if operands.len == 2 => {
            let Some(Transform::VersionCompare(parsed)) = program.transform(*transform) else {
                return Fast::Slow;
            };
            let (subject, arg) = (operands.start, operands.start.saturating_add(1));
            let Some(a) = fast_version(fast(subject, env)) else {
                return Fast::Slow;
            };
            if let Some(parsed) = parsed {
                return Fast::Num(transforms::version_compare_parsed(a, parsed));
            }
            match fast_version(fast(arg, env)) {
                Some(b) => Fast::Num(transforms::version_compare(a, b)),
                None => Fast::Slow,
            }
        }
        _ => read_fast(id, env).map_or(Fast::Slow, Fast::Ref),
    }
}

/// Evaluates operation `id` (the whole program for [`super::program::ROOT`]).
pub(crate) fn eval<'a>(id: OpId, env: &Env<'a>) -> Eval<'a> {
    let program = env.program;
    let op = program.op(id);
    if matches!(
        op,
        Op::Global(_)
            | Op::Relative(_)
            | Op::GlobalMember { .. }
            | Op::GlobalPath { .. }
            | Op::RelativePath { .. }
    ) && let Some(value) = read_fast(id, env)
    {
        return Ok(Cow::Borrowed(value));
    }
    match op {
        Op::Const(index) => Ok(Cow::Borrowed(program.value(*index))),
        Op::Global(index) => Ok(read_global(env, *index)),
        Op::Relative(name) => Ok(read(program, env.relative_context(), name)),
        Op::GlobalMember { global, name } => project(read_global(env, u32::from(*global)), |ctx| {
            traverse(program, ctx, name)
        }),
        Op::GlobalPath { global, steps } => {
            keys(program, read_global(env, *global), program.ops_in(*steps))
        }
        Op::RelativePath { steps } => match program.ops_in(*steps).split_first() {
            Some((Op::Key(root), rest)) => {
                keys(program, read(program, env.relative_context(), root), rest)
            }
            _ => Err(error("cannot evaluate an empty identifier chain")),
        },
        Op::Member { from } => {
            let Op::Key(name) = program.op(from.saturating_add(1)) else {
                return Err(error("cannot evaluate a member without a name"));
            };
            project(eval(*from, env)?, |ctx| traverse(program, ctx, name))
        }
        // Boolean-valued operations take the allocation-free path of `truthy`.
        Op::Not(_)
        | Op::MatchText { .. }
        | Op::VersionCmp { .. }
        | Op::StableSampleArray { .. }
        | Op::And { boolean: true, .. }
        | Op::Or { boolean: true, .. } => Ok(Cow::Owned(Value::Bool(truthy(id, env)?))),
        Op::Binary { op, .. } if op.is_comparison() => {
            Ok(Cow::Owned(Value::Bool(truthy(id, env)?)))
        }
        Op::Binary { op, left, right } => {
            let l = eval(*left, env)?;
            let r = eval(*right, env)?;
            Ok(Cow::Owned(binary(*op, &l, &r)))
        }
        Op::And { items, .. } => fold_chain(*items, env, true),
        Op::Or { items, .. } => fold_chain(*items, env, false),
        Op::Conditional {
            test,
            consequent,
            alternate,
        } => {
            let t = eval(*test, env)?;
            if t.is_truthy() {
                match *consequent {
                    NO_OP => Ok(t),
                    c => eval(c, env),
                }
            } else {
                eval(*alternate, env)
            }
        }
        Op::FilterRelative { subject, expr } => {
            let subject = eval(*subject, env)?;
            let items: &[Value] = match &*subject {
                Value::Undefined => return Ok(UNDEFINED),
                Value::Array(items) => items,
                other => std::slice::from_ref(other),
            };
            let mut kept = Vec::new();
            for item in items {
                let inner = Env { rel: item, ..*env };
                if truthy(*expr, &inner)? {
                    kept.push(item.clone());
                }
            }
            Ok(Cow::Owned(Value::array(kept)))
        }
        Op::FilterStatic { subject, expr } => {
            let subject = eval(*subject, env)?;
            let key = eval(*expr, env)?;
            if let Value::Bool(keep) = *key {
                return Ok(if keep { subject } else { UNDEFINED });
            }
            project(subject, |s| index(s, &key))
        }
        Op::Transform {
            transform,
            operands,
        } => {
            let transform = match program.transform(*transform) {
                Some(Transform::Unknown(name)) => {
                    return Err(error(format!("Transform '{name}' is not defined.")));
                }
                Some(transform) => transform,
                None => return Err(error("cannot evaluate an unresolved transform")),
            };
            let mut operands = operands.ids();
            let subject = match operands.next() {
                Some(subject) => eval(subject, env)?,
                None => UNDEFINED,
            };
            let args = operands;
            let mut small: [Cow<'a, Value>; 4] = Default::default();
            let mut large = Vec::new();
            let count = args.len();
            let values: &[Cow<'a, Value>] = if count <= small.len() {
                for (slot, arg) in small.iter_mut().zip(args) {
                    *slot = eval(arg, env)?;
                }
                small.get(..count).unwrap_or(&[])
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
        Op::Array(items) => {
            let mut out = Vec::with_capacity(items.len as usize);
            for item in items.ids() {
                out.push(eval(item, env)?.into_owned());
            }
            Ok(Cow::Owned(Value::array(out)))
        }
        Op::Object { keys, values } => {
            let keys = Span {
                start: *keys,
                len: values.len,
            };
            let mut out = IndexMap::with_capacity(keys.len as usize);
            for (key, value) in program.values_in(keys).iter().zip(values.ids()) {
                let value = eval(value, env)?.into_owned();
                if let Value::String(key) = key {
                    out.insert(key.clone(), value);
                }
            }
            Ok(Cow::Owned(Value::object(out)))
        }
        Op::Missing | Op::Key(_) => Err(error("cannot evaluate an empty sub-expression")),
    }
}

/// The value of operand `id`: borrowed from [`read_fast`] when it has it, else evaluated
/// into `$slow`, which must outlive the reference.
macro_rules! operand {
    ($id:expr, $env:expr, $slow:ident) => {
        match read_fast($id, $env) {
            Some(value) => value,
            None => {
                $slow = eval($id, $env)?;
                &*$slow
            }
        }
    };
}

/// `!!eval(id)`, without building intermediate values where the answer is a boolean anyway.
pub(crate) fn truthy<'a>(id: OpId, env: &Env<'a>) -> Result<bool, EvalError> {
    match env.program.op(id) {
        Op::And { items, .. } => chain(*items, env, true),
        Op::Or { items, .. } => chain(*items, env, false),
        op => clause(op, id, env),
    }
}

/// The truthiness of an `&&` (`and`) or `||` chain. Every operand is evaluated, as mozjexl
/// evaluates both sides; once the answer is known the rest only needs checking for errors.
#[inline(always)]
fn chain<'a>(items: Span, env: &Env<'a>, and: bool) -> Result<bool, EvalError> {
    let mut ids = items.ids();
    for item in ids.by_ref() {
        if clause(env.program.op(item), item, env)? != and {
            ids.try_for_each(|rest| check(rest, env))?;
            return Ok(!and);
        }
    }
    Ok(and)
}

/// The truthiness of `op` (operation `id`): the clauses filters are made of, evaluated in
/// place, and everything else through [`truthy_general`].
#[inline(always)]
fn clause<'a>(op: &'a Op, id: OpId, env: &Env<'a>) -> Result<bool, EvalError> {
    let program = env.program;
    match op {
        Op::MatchText { op, subject, texts } => {
            let slow;
            let value: &Value = operand!(*subject, env, slow);
            if let Value::String(s) = value {
                // Strings are loosely equal exactly when they are equal.
                let found = program.texts_contain(*texts, s.as_bytes());
                return Ok(found != (*op == BinOp::Ne));
            }
            // The constant is the operation after the subject.
            let constant = match program.op(subject.saturating_add(1)) {
                Op::Const(index) => program.value(*index),
                _ => &UNDEFINED_VALUE,
            };
            Ok(compare(*op, value, constant))
        }
        Op::VersionCmp {
            op,
            subject,
            version,
            first,
            number,
        } => {
            let slow;
            let value: &Value = operand!(*subject, env, slow);
            let ordering = match value {
                Value::String(s)
                    if let Some(leading) = leading_number(s.as_bytes())
                        && leading != *first
                        && *first != u32::MAX =>
                {
                    transforms::ordering_number(leading.cmp(first))
                }
                _ => {
                    let Some(version) = program.version(*version) else {
                        return Err(error("cannot evaluate an unresolved version"));
                    };
                    transforms::version_compare_parsed(&transforms::version_text(value), version)
                }
            };
            Ok(compare_numbers(*op, ordering, f64::from(*number)))
        }
        _ => truthy_general(op, id, env),
    }
}

/// [`truthy`] for everything but the specialised clauses.
#[inline(never)]
fn truthy_general<'a>(op: &'a Op, id: OpId, env: &Env<'a>) -> Result<bool, EvalError> {
    let program = env.program;
    match op {
        Op::Const(index) => Ok(program.value(*index).is_truthy()),
        Op::Not(operand) => Ok(!truthy(*operand, env)?),
        Op::And { .. } | Op::Or { .. } => truthy(id, env),
        Op::Binary { op, left, right } if op.is_comparison() => {
            // Operands on the fast path stay in registers; the rest are evaluated in full.
            let lf = fast(*left, env);
            let rf = fast(*right, env);
            if let (Some(a), Some(b)) = (lf.number(), rf.number()) {
                return Ok(compare_numbers(*op, a, b));
            }
            let (ln, rn, l_slow, r_slow);
            let l: &Value = match lf {
                Fast::Ref(v) => v,
                Fast::Num(n) => {
                    ln = Value::Number(n);
                    &ln
                }
                Fast::Slow => {
                    l_slow = eval(*left, env)?;
                    &l_slow
                }
            };
            let r: &Value = match rf {
                Fast::Ref(v) => v,
                Fast::Num(n) => {
                    rn = Value::Number(n);
                    &rn
                }
                Fast::Slow => {
                    r_slow = eval(*right, env)?;
                    &r_slow
                }
            };
            Ok(compare(*op, l, r))
        }
        Op::StableSampleArray { items, rate, .. } => {
            let operands = SampleOperands::eval(*items, *rate, env)?;
            Ok(operands.sample())
        }
        Op::Conditional {
            test,
            consequent,
            alternate,
        } if *consequent != NO_OP => {
            if truthy(*test, env)? {
                truthy(*consequent, env)
            } else {
                truthy(*alternate, env)
            }
        }
        _ => match fast(id, env) {
            Fast::Ref(v) => Ok(v.is_truthy()),
            Fast::Num(n) => Ok(!(n == 0.0 || n.is_nan())),
            Fast::Slow => Ok(eval(id, env)?.is_truthy()),
        },
    }
}

/// Evaluates `id` for its errors only. A `&&` chain that is already false (or an `||` chain
/// already true) still evaluates its other operands, because mozjexl does and one may throw,
/// but their values no longer matter: comparisons are not made and sampling skips its hash,
/// since neither can fail once the operands are read.
fn check<'a>(id: OpId, env: &Env<'a>) -> Result<(), EvalError> {
    match env.program.op(id) {
        Op::MatchText { subject, .. } | Op::VersionCmp { subject, .. }
            if reads_without_error(*subject, env) =>
        {
            Ok(())
        }
        Op::StableSampleArray {
            items,
            rate,
            valid_rate,
        } => {
            for item in items.ids() {
                if !reads_without_error(item, env) {
                    eval(item, env)?;
                }
            }
            if !valid_rate {
                SampleOperands::key(*rate, env)?;
            }
            Ok(())
        }
        Op::Not(operand) => check(*operand, env),
        Op::And { items, .. } | Op::Or { items, .. } => {
            items.ids().try_for_each(|item| check(item, env))
        }
        _ => truthy(id, env).map(drop),
    }
}

/// Whether evaluating operand `id` certainly succeeds, found without reading it where
/// possible: reading a global never fails, nor does reading a member of an object or of
/// `undefined`, so only the containers along an identifier chain are read (for
/// `normandy.recipe.id`, `normandy.recipe` and not the recipe's `id`).
fn reads_without_error<'a>(id: OpId, env: &Env<'a>) -> bool {
    let program = env.program;
    let readable =
        |container: Option<&Value>| matches!(container, Some(Value::Object(_) | Value::Undefined));
    match program.op(id) {
        Op::Const(_) | Op::Global(_) => true,
        Op::GlobalMember { global, .. } => readable(env.global(u32::from(*global))),
        Op::GlobalPath { global, steps } => {
            let Some((_, containers)) = program.ops_in(*steps).split_last() else {
                return false;
            };
            let mut current = env.global(*global);
            for step in containers {
                current = match (current, step) {
                    (Some(value), Op::Key(name)) => step_fast(program, value, name),
                    _ => None,
                };
            }
            readable(current)
        }
        _ => read_fast(id, env).is_some(),
    }
}

/// The evaluated operands of `[a, b, …]|stableSample(rate)` (at most four items), in the
/// order, and with the errors, of the general path.
struct SampleOperands<'a> {
    values: [Cow<'a, Value>; 4],
    len: usize,
    key: sampling::SampleKey,
}

impl<'a> SampleOperands<'a> {
    fn eval(items: Span, rate: OpId, env: &Env<'a>) -> Result<SampleOperands<'a>, EvalError> {
        let mut values: [Cow<'a, Value>; 4] = Default::default();
        for (slot, item) in values.iter_mut().zip(items.ids()) {
            *slot = match read_fast(item, env) {
                Some(value) => Cow::Borrowed(value),
                None => eval(item, env)?,
            };
        }
        Ok(SampleOperands {
            values,
            len: items.len as usize,
            key: SampleOperands::key(rate, env)?,
        })
    }

    /// The sampling key of `rate`.
    fn key(rate: OpId, env: &Env<'a>) -> Result<sampling::SampleKey, EvalError> {
        let slow;
        let rate = ops::to_number(operand!(rate, env, slow));
        // `fraction_key`, not `fraction_to_key`: a NaN rate must give Firefox's text key, as
        // in the general path.
        sampling::fraction_key(rate).map_err(|e| error(format!("stableSample: {e}")))
    }

    /// Whether the array of the items samples in.
    fn sample(&self) -> bool {
        let refs = self.values.each_ref().map(|v| &**v);
        let hash = sampling::truncated_hash_of_array(refs.get(..self.len).unwrap_or_default());
        sampling::SampleKey::of_hash(hash) < self.key
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
fn fold_chain<'a>(items: Span, env: &Env<'a>, and: bool) -> Eval<'a> {
    let mut acc: Option<Cow<'a, Value>> = None;
    for item in items.ids() {
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
    use super::{BinOp, Value, compare, compare_numbers};

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
}
