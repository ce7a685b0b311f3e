//! The compiled form of an expression: a [`Program`], one flat array of small operations.
//!
//! # Why a flat array
//!
//! Evaluating a manifest runs a thousand different filters one after the other, so each
//! filter's compiled form is usually cold in the cache. A tree of boxed nodes (a `Box` per
//! operand, a `Vec` per identifier chain, an `Arc` per literal) costs one cache miss per
//! pointer followed, one after the other. A program instead keeps
//!
//! - every operation in one array of 16-byte [`Op`]s (four to a cache line), children
//!   referred to by index ([`OpId`]), and the children of one operation (the operands of an
//!   `&&` chain, the steps of an identifier chain, a transform's operands) next to each
//!   other, so that a list is a [`Span`] of the array;
//! - every name and literal string in one text ([`Program::text`]), read through [`Span`]s;
//! - the rarely read parts out of the way ([`Tables`]): constants, resolved transforms and
//!   parsed versions.
//!
//! The operations and the text are held directly by the [`super::Expression`] (see
//! [`Program`]), so a filter stored in a recipe reaches them in one step.
//!
//! The layout is top-down: the root is operation 0, then the globals, then the root's
//! operands, each followed by its own subtree; the operands of an operation are reserved
//! together when it is compiled. A filter's clauses thus sit next to each other, each
//! followed by what it reads. For `normandy.channel in ['release', 'beta'] &&
//! normandy.locale == 'en-US'`:
//!
//! ```text
//! 0 And [2, 3]           1 Key normandy (global 0)
//! 2 MatchText in, 4      3 MatchText ==, 6
//! 4 GlobalMember 0.channel  5 Const ['release', 'beta']
//! 6 GlobalMember 0.locale   7 Const 'en-US'
//! text: normandy · \x07release\x04beta · channel · \x05en-US · locale
//! ```
//!
//! # Specialised operations
//!
//! The clauses Normandy filters are made of get their own operations, which do the common
//! case in a few instructions and fall back to the general comparison for everything else:
//! [`Op::MatchText`] (`path == 'text'`, `path != 'text'`, `path in ['a', 'b']`),
//! [`Op::VersionCmp`] (`path|versionCompare('1.2') >= 0`) and [`Op::StableSampleArray`]
//! (`[a, b]|stableSample(rate)`). They change no result: [`super::compile`] can build programs
//! without them, and the tests compare both.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::value::{Object, Value};
use crate::version::ToolkitVersion;

use super::ast::BinOp;
use super::ops;
use super::transforms::Transform;

/// The index of an operation in [`Program::ops`].
pub(crate) type OpId = u32;

/// The root operation of every program.
pub(crate) const ROOT: OpId = 0;

/// A run of consecutive entries: operations, bytes of the text, or constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    pub(crate) const EMPTY: Span = Span { start: 0, len: 0 };

    /// The span of `len` entries from `start`; spans past `u32::MAX` read as empty, which no
    /// expression within [`super::MAX_SOURCE_LEN`] comes near.
    pub(crate) fn new(start: usize, len: usize) -> Span {
        match (u32::try_from(start), u32::try_from(len)) {
            (Ok(start), Ok(len)) => Span { start, len },
            _ => Span::EMPTY,
        }
    }

    /// The operation ids of a span of operations.
    pub(crate) fn ids(self) -> std::ops::Range<OpId> {
        self.start..self.start.saturating_add(self.len)
    }

    fn range(self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

/// A property name with a one-entry inline cache of its index in the last object it was
/// read from. Context objects built the same way share key order, so the guess almost always
/// hits and a lookup costs one string comparison instead of a hash.
#[derive(Debug)]
pub(crate) struct Name {
    /// The name, in [`Program::text`].
    pub text: Span,
    slot: AtomicU32,
}

impl Name {
    pub(crate) fn new(text: Span) -> Name {
        Name {
            text,
            slot: AtomicU32::new(0),
        }
    }
}

/// One operation. Operands are other operations of the same program.
///
/// Sixteen bytes, four to a cache line: operands that evaluation reads only off the fast
/// path sit in the slot after another operand instead of in the operation (the name of a
/// [`Op::Member`], the constant of a [`Op::MatchText`]).
#[derive(Debug)]
pub(crate) enum Op {
    /// A literal, or a subtree folded at compile time: `values[index]`.
    Const(u32),
    /// A top-level identifier: a member of `vars`, global `index` ([`Program::globals`]).
    Global(u32),
    /// A relative identifier (`.x`): a member of the current filter element.
    Relative(Name),
    /// `global.name`: the usual identifier chain of a filter (`normandy.channel`).
    GlobalMember { global: u16, name: Name },
    /// `global.step.step…`: a longer identifier chain; `steps` are [`Op::Key`]s.
    GlobalPath { global: u32, steps: Span },
    /// `.root.step.step…`: an identifier chain from a relative identifier; `steps` are
    /// [`Op::Key`]s, the first being the root.
    RelativePath { steps: Span },
    /// A name its parent reads: a step of an identifier chain, a global, or the name of a
    /// [`Op::Member`].
    Key(Name),
    /// `from.name` where `from` is not an identifier chain; the name is the [`Op::Key`]
    /// after `from`.
    Member { from: OpId },
    /// `!operand`.
    Not(OpId),
    /// Any binary operator except `&&`/`||`.
    Binary { op: BinOp, left: OpId, right: OpId },
    /// A flattened `a && b && …` chain (every operand is evaluated, as in mozjexl);
    /// `boolean` when every operand gives a boolean, so the chain's value is its truthiness.
    And { items: Span, boolean: bool },
    /// A flattened `a || b || …` chain.
    Or { items: Span, boolean: bool },
    /// `test ? consequent : alternate`; [`NO_OP`] as consequent for `test ?: alternate`.
    Conditional {
        test: OpId,
        consequent: OpId,
        alternate: OpId,
    },
    /// `subject[expr]` where `expr` uses relative identifiers: keep matching elements.
    FilterRelative { subject: OpId, expr: OpId },
    /// `subject[expr]` otherwise: a boolean keeps or drops the subject, anything else indexes.
    FilterStatic { subject: OpId, expr: OpId },
    /// `subject|transform(args…)`, with `transforms[transform]`; `operands` are the subject
    /// and then the arguments.
    Transform { transform: u32, operands: Span },
    /// An array literal with at least one non-constant element.
    Array(Span),
    /// An object literal with at least one non-constant value: the keys are string
    /// constants in `values` from `keys`, one per operation of `values`.
    Object { keys: u32, values: Span },
    /// An empty sub-expression (`()`, `f()`, `{a:}`): an error when evaluated.
    Missing,
    /// `subject == 'a'`, `subject != 'a'` or `subject in ['a', 'b', …]` with `op` that
    /// operator. `texts` is the strings in [`Program::text`], each preceded by its length as
    /// one ASCII character (so only strings shorter than 128 bytes are specialised). The
    /// [`Op::Const`] after `subject` is the right-hand constant, for a subject that is not a
    /// string.
    MatchText {
        op: BinOp,
        subject: OpId,
        texts: Span,
    },
    /// `subject|versionCompare(version) op number`, with `versions[version]`, for an
    /// integer `number` (filters compare with 0). `first` is the version's first part when
    /// that part is a plain number ([`leading_number`]), else `u32::MAX`: a subject whose
    /// first part is another plain number is ordered by it alone.
    VersionCmp {
        op: BinOp,
        number: i16,
        subject: OpId,
        version: u32,
        first: u32,
    },
    /// `[items…]|stableSample(rate)` with at most four items: hashed without building the
    /// array. `valid_rate` when `rate` is a constant with a valid sampling key, so that
    /// nothing about the rate can fail.
    StableSampleArray {
        items: Span,
        rate: OpId,
        valid_rate: bool,
    },
}

// Four operations per cache line; a larger variant would cost every program.
const _: () = assert!(std::mem::size_of::<Op>() <= 16);

/// The operation id that stands for "none" (the missing consequent of `a ?: b`).
pub(crate) const NO_OP: OpId = OpId::MAX;

/// Every operation and literal of an expression (see the module documentation).
///
/// A program is held by value in its [`super::Expression`], so that the two parts every
/// evaluation reads, the operations and the text, are one pointer away from the expression
/// (a filter stored in a recipe) rather than two. Cloning costs three reference counts.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub ops: Arc<[Op]>,
    /// Names and literal strings, back to back.
    pub text: Arc<str>,
    /// The top-level identifiers the program reads, each once, as [`Op::Key`]s right after
    /// the root; evaluation looks the first [`super::eval::RESOLVED_GLOBALS`] up before it
    /// starts (see `Env`).
    pub globals: Span,
    /// Whether the root always evaluates to a boolean (or fails), so that its value is its
    /// truthiness: filters are `&&` chains of comparisons.
    pub boolean: bool,
    /// What the specialised clauses read only when their shortcut does not apply.
    pub tables: Arc<Tables>,
    /// [`Program::reads_recipe_beyond_id`], worked out once by [`Program::with_recipe_use`].
    pub recipe_beyond_id: bool,
}

/// The rarely read parts of a [`Program`].
#[derive(Debug, Default)]
pub(crate) struct Tables {
    /// Constants.
    pub values: Box<[Value]>,
    /// Transforms, resolved when compiling.
    pub transforms: Box<[Transform]>,
    /// The literal arguments of [`Op::VersionCmp`], parsed when compiling.
    pub versions: Box<[Arc<ToolkitVersion>]>,
}

/// What an out-of-range index reads (never produced by the compiler).
static MISSING: Op = Op::Missing;

impl Program {
    /// Operation `id`.
    #[inline]
    pub(crate) fn op(&self, id: OpId) -> &Op {
        self.ops.get(id as usize).unwrap_or(&MISSING)
    }

    /// The operations of `span`.
    #[inline]
    pub(crate) fn ops_in(&self, span: Span) -> &[Op] {
        self.ops.get(span.range()).unwrap_or_default()
    }

    /// The text of `span`.
    #[inline]
    pub(crate) fn text(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or_default()
    }

    /// The text of `span` as bytes (no character-boundary checks, for comparisons).
    #[inline]
    pub(crate) fn text_bytes(&self, span: Span) -> &[u8] {
        self.text.as_bytes().get(span.range()).unwrap_or_default()
    }

    /// The name of global `index`, if there is one.
    pub(crate) fn global(&self, index: u32) -> Option<&Name> {
        match self.ops_in(self.globals).get(index as usize) {
            Some(Op::Key(name)) => Some(name),
            _ => None,
        }
    }

    /// Whether `s` is one of the length-prefixed strings of `texts` (see [`Op::MatchText`]).
    #[inline(always)]
    pub(crate) fn texts_contain(&self, texts: Span, s: &[u8]) -> bool {
        let mut run = self.text_bytes(texts);
        while let Some((&len, rest)) = run.split_first() {
            let (text, after) = rest
                .split_at_checked(usize::from(len))
                .unwrap_or((rest, &[]));
            if ops::bytes_eq(s, text) {
                return true;
            }
            run = after;
        }
        false
    }

    /// Constant `index`.
    #[inline]
    pub(crate) fn value(&self, index: u32) -> &Value {
        self.tables
            .values
            .get(index as usize)
            .unwrap_or(&Value::Undefined)
    }

    /// The constants of `span`.
    pub(crate) fn values_in(&self, span: Span) -> &[Value] {
        self.tables.values.get(span.range()).unwrap_or_default()
    }

    /// Transform `index`, if there is one.
    pub(crate) fn transform(&self, index: u32) -> Option<&Transform> {
        self.tables.transforms.get(index as usize)
    }

    /// Parsed version `index`, if there is one.
    pub(crate) fn version(&self, index: u32) -> Option<&ToolkitVersion> {
        self.tables
            .versions
            .get(index as usize)
            .map(|version| &**version)
    }

    /// Whether evaluating the program can read anything of the Normandy filter environment's
    /// `recipe` (`{id, arguments}`) besides `recipe.id`. The environment is bound to the
    /// globals `normandy` and `env`; it is only reachable through them, or through a relative
    /// identifier of the same name read at the top level. So the program reads no more than
    /// `recipe.id` when every use of those names is an identifier chain whose first step is
    /// not `recipe`, or is `recipe.id`. Anything else (the environment as a value, `recipe`
    /// itself, `recipe.arguments`, a relative chain from `normandy`) answers `true`.
    /// The program with [`Program::recipe_beyond_id`] worked out.
    pub(crate) fn with_recipe_use(mut self) -> Program {
        self.recipe_beyond_id = self.reads_recipe_beyond_id();
        self
    }

    pub(crate) fn reads_recipe_beyond_id(&self) -> bool {
        let is_environment = |name: &Name| matches!(self.text(name.text), "normandy" | "env");
        let global_is_environment = |index: u32| self.global(index).is_some_and(&is_environment);
        let key_text = |op: &Op| match op {
            Op::Key(name) => Some(self.text(name.text)),
            _ => None,
        };
        self.ops.iter().any(|op| match op {
            Op::Global(index) => global_is_environment(*index),
            Op::GlobalMember { global, name } => {
                global_is_environment(u32::from(*global)) && self.text(name.text) == "recipe"
            }
            Op::GlobalPath { global, steps } => {
                let mut names = self.ops_in(*steps).iter().map(key_text);
                global_is_environment(*global)
                    && names.next() == Some(Some("recipe"))
                    && names.next() != Some(Some("id"))
            }
            Op::Relative(name) => is_environment(name),
            Op::RelativePath { steps } => self
                .ops_in(*steps)
                .first()
                .and_then(key_text)
                .is_some_and(|root| matches!(root, "normandy" | "env")),
            _ => false,
        })
    }

    /// `map[name]`, trying the index where the name was found last time first.
    #[inline(always)]
    pub(crate) fn lookup<'v>(&self, name: &Name, map: &'v Object) -> Option<&'v Value> {
        let guess = name.slot.load(Ordering::Relaxed) as usize;
        if let Some((key, value)) = map.get_index(guess)
            && ops::bytes_eq(key.as_bytes(), self.text_bytes(name.text))
        {
            return Some(value);
        }
        self.lookup_by_hash(name, map)
    }

    /// [`Program::lookup`] when the guess misses: hash, and remember where the name was.
    #[cold]
    #[inline(never)]
    fn lookup_by_hash<'v>(&self, name: &Name, map: &'v Object) -> Option<&'v Value> {
        let (index, _, value) = map.get_full(self.text(name.text))?;
        // An index past `u32::MAX` is not cached; the next lookup hashes again.
        if let Ok(index) = u32::try_from(index) {
            name.slot.store(index, Ordering::Relaxed);
        }
        Some(value)
    }
}

/// The first part of a toolkit version when it is a plain number: one to nine digits
/// followed by a `.` or the end of the text. Such a part compares as that number with the
/// other fields of the part empty, so two such first parts that differ decide a comparison.
/// (Longer digit runs and every other part shape are left to the full comparison.)
#[inline]
pub(crate) fn leading_number(text: &[u8]) -> Option<u32> {
    let mut number = 0u32;
    let mut digits = 0;
    while let Some(&byte) = text.get(digits)
        && byte.is_ascii_digit()
        && digits < 9
    {
        number = number * 10 + u32::from(byte - b'0');
        digits += 1;
    }
    match text.get(digits) {
        _ if digits == 0 => None,
        None | Some(b'.') => Some(number),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Name, Program, Span, leading_number};
    use crate::value::{Object, Value};
    use crate::version::{ToolkitVersion, compare_toolkit};

    fn program(text: &str) -> Program {
        Program {
            ops: Arc::new([]),
            globals: Span::EMPTY,
            boolean: false,
            text: text.into(),
            tables: Arc::default(),
            recipe_beyond_id: false,
        }
    }

    #[test]
    fn lookups_find_exactly_the_name_whatever_the_cached_slot() {
        for len in 0..24 {
            let text = "n".repeat(len);
            let program = program(&text);
            let name = Name::new(Span::new(0, len));
            // Keys that differ from the name in length or in one byte come first, so that
            // both a stale guess and the hashed lookup are exercised.
            let mut object = Object::new();
            object.insert(Arc::from(format!("{text}n")), Value::Number(-1.0));
            object.insert(Arc::from(format!("\0{text}")), Value::Number(-2.0));
            for at in 0..len {
                let mut key = text.clone().into_bytes();
                key[at] = b'm';
                let key = String::from_utf8(key).unwrap();
                object.insert(Arc::from(key), Value::Number(at as f64));
            }
            object.insert(Arc::from(text.as_str()), Value::Bool(true));
            for _ in 0..2 {
                assert!(
                    matches!(program.lookup(&name, &object), Some(Value::Bool(true))),
                    "{len}"
                );
            }
            object.shift_remove(text.as_str());
            assert!(program.lookup(&name, &object).is_none(), "{len}");
        }
    }

    #[test]
    fn differing_leading_numbers_decide_version_comparisons() {
        let samples = [
            "",
            "0",
            "1",
            "9",
            "10",
            "99",
            "100",
            "128",
            "128.0",
            "128.0.1",
            "128.",
            "128.!",
            "100.*",
            "100.1a",
            "1.0a",
            "1a",
            "01",
            "0100.5",
            "999999999",
            "999999999.1",
            "1000000000",
            "4294967296.1",
            "12345678901",
            "1.",
            ".1",
            "a",
            "1+",
            "1.0+",
            "128\0",
            "2.-1",
            "-1",
            " 1",
            "1 ",
        ];
        for a in samples {
            for b in samples {
                let expected = compare_toolkit(a, b);
                assert_eq!(
                    ToolkitVersion::parse(b).compare_text(a),
                    expected,
                    "{a:?} {b:?}"
                );
                if let (Some(x), Some(y)) =
                    (leading_number(a.as_bytes()), leading_number(b.as_bytes()))
                    && x != y
                {
                    assert_eq!(x.cmp(&y), expected, "{a:?} {b:?}");
                }
            }
        }
        assert_eq!(leading_number(b"128.0.1"), Some(128));
        assert_eq!(leading_number(b"100.!"), Some(100));
        assert_eq!(leading_number(b"1000000000"), None);
        assert_eq!(leading_number(b"1a"), None);
    }
}
