//! Turns the parse tree into a [`Program`] in two steps.
//!
//! 1. The parse tree becomes a tree of [`Node`]s: constant subtrees are folded, `&&`/`||`
//!    chains are flattened, identifier chains are gathered into paths, transforms are resolved
//!    to an enum and literal regular expressions are compiled once.
//! 2. That tree is laid out as a flat program ([`lower`]), where the clauses filters are made
//!    of become specialised operations (see [`super::program`]).

use std::sync::Arc;

use indexmap::IndexMap;

use crate::value::Value;
use crate::version::ToolkitVersion;

use super::ast::{Ast, BinOp, Kind, NodeId};
use super::eval;
use super::lexer::Lit;
use super::program::{NO_OP, Name, Op, OpId, Program, Span, Tables, leading_number};
use super::transforms::{self, Transform};

/// A compiled expression as a tree: the input of [`lower`].
#[derive(Debug)]
pub(crate) enum Node {
    /// A literal, or a subtree folded at compile time.
    Const(Value),
    /// A top-level identifier: a member of `vars`.
    Global(Arc<str>),
    /// A relative identifier (`.x`): a member of the current filter element.
    Relative(Arc<str>),
    /// `root.step.step…`: an identifier chain (`relative` when it starts with `.root`).
    Path {
        root: Arc<str>,
        relative: bool,
        steps: Vec<Arc<str>>,
    },
    /// `object.name` on anything but an identifier chain.
    Member(Box<Node>, Arc<str>),
    /// `!operand`.
    Not(Box<Node>),
    /// Any binary operator except `&&`/`||`.
    Binary(BinOp, Box<Node>, Box<Node>),
    /// A flattened `a && b && …` chain.
    And(Vec<Node>),
    /// A flattened `a || b || …` chain.
    Or(Vec<Node>),
    /// `test ? consequent : alternate`; no consequent for `test ?: alternate`.
    Conditional {
        test: Box<Node>,
        consequent: Option<Box<Node>>,
        alternate: Box<Node>,
    },
    /// `subject[expr]` where `expr` uses relative identifiers.
    FilterRelative { subject: Box<Node>, expr: Box<Node> },
    /// `subject[expr]` otherwise.
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

/// Compiles a parsed tree into a program with the specialised operations.
pub(crate) fn compile(ast: &Ast) -> Program {
    lower(&compile_node(ast, ast.root), Outline::of(ast), true)
}

/// What lowering needs to know before it starts, read from the parse tree in one pass: the
/// top-level identifiers, and the sizes of the program, so that lowering usually allocates
/// each part once (about one operation per parse node plus the globals, and at most every
/// identifier and string literal, with a length byte, as text).
#[derive(Debug)]
pub(crate) struct Outline {
    /// Every top-level identifier of the parse tree, each once. (The parser may leave nodes
    /// out of the final tree; reading an unused global early changes nothing.)
    globals: Vec<Arc<str>>,
    ops: usize,
    text: usize,
}

impl Outline {
    pub(crate) fn of(ast: &Ast) -> Outline {
        let mut globals: Vec<Arc<str>> = Vec::new();
        let mut text = 0;
        for node in &ast.nodes {
            match &node.kind {
                Kind::Identifier {
                    name,
                    from,
                    relative,
                } => {
                    text += name.len();
                    if from.is_none() && !relative && !globals.contains(name) {
                        globals.push(name.clone());
                    }
                }
                Kind::Literal(Lit::Str(literal)) => text += literal.len() + 1,
                _ => {}
            }
        }
        Outline {
            ops: ast.nodes.len() + globals.len(),
            text,
            globals,
        }
    }
}

fn compile_opt(ast: &Ast, id: Option<NodeId>) -> Node {
    id.map_or(Node::Missing, |id| compile_node(ast, id))
}

fn lit_value(lit: &Lit) -> Value {
    match lit {
        Lit::Str(s) => Value::String(s.clone()),
        Lit::Num(n) => Value::Number(*n),
        Lit::Bool(b) => Value::Bool(*b),
    }
}

fn as_const(node: &Node) -> Option<&Value> {
    match node {
        Node::Const(v) => Some(v),
        _ => None,
    }
}

fn compile_node(ast: &Ast, id: NodeId) -> Node {
    let Some(node) = ast.nodes.get(id) else {
        return Node::Missing;
    };
    match &node.kind {
        Kind::Literal(lit) => Node::Const(lit_value(lit)),
        Kind::Identifier {
            name,
            from: Some(from),
            ..
        } => {
            let name = name.clone();
            // `a.b.c` becomes one path node, walked in a loop.
            match compile_node(ast, *from) {
                Node::Global(root) => Node::Path {
                    root,
                    relative: false,
                    steps: vec![name],
                },
                Node::Relative(root) => Node::Path {
                    root,
                    relative: true,
                    steps: vec![name],
                },
                Node::Path {
                    root,
                    relative,
                    mut steps,
                } => {
                    steps.push(name);
                    Node::Path {
                        root,
                        relative,
                        steps,
                    }
                }
                base => Node::Member(Box::new(base), name),
            }
        }
        Kind::Identifier {
            name,
            from: None,
            relative,
        } => {
            let name = name.clone();
            if *relative {
                Node::Relative(name)
            } else {
                Node::Global(name)
            }
        }
        Kind::Unary { right } => {
            let operand = compile_opt(ast, *right);
            match as_const(&operand) {
                Some(v) => Node::Const(Value::Bool(!v.is_truthy())),
                None => Node::Not(Box::new(operand)),
            }
        }
        Kind::Binary {
            op: op @ (BinOp::And | BinOp::Or),
            ..
        } => compile_chain(ast, id, *op),
        Kind::Binary { op, left, right } => {
            let l = compile_node(ast, *left);
            let r = compile_opt(ast, *right);
            match (as_const(&l), as_const(&r)) {
                (Some(a), Some(b)) => Node::Const(eval::binary(*op, a, b)),
                _ => Node::Binary(*op, Box::new(l), Box::new(r)),
            }
        }
        Kind::Conditional {
            test,
            consequent,
            alternate,
        } => {
            let test = compile_opt(ast, *test);
            if let Some(t) = as_const(&test) {
                return if t.is_truthy() {
                    match consequent {
                        Some(c) => compile_node(ast, *c),
                        None => test,
                    }
                } else {
                    compile_opt(ast, *alternate)
                };
            }
            Node::Conditional {
                test: Box::new(test),
                consequent: consequent.map(|c| Box::new(compile_node(ast, c))),
                alternate: Box::new(compile_opt(ast, *alternate)),
            }
        }
        Kind::Filter {
            subject,
            expr,
            relative,
        } => {
            let subject = Box::new(compile_node(ast, *subject));
            let expr = Box::new(compile_opt(ast, *expr));
            if *relative {
                Node::FilterRelative { subject, expr }
            } else {
                Node::FilterStatic { subject, expr }
            }
        }
        Kind::Transform {
            name,
            subject,
            args,
        } => {
            let subject = compile_node(ast, *subject);
            let args: Vec<Node> = args.iter().map(|a| compile_opt(ast, *a)).collect();
            let transform = transforms::resolve(name, &args);
            if matches!(transform, Transform::Date)
                && let Some(v) = as_const(&subject)
                && args.iter().all(|a| as_const(a).is_some())
            {
                return Node::Const(transforms::date(v));
            }
            Node::Transform {
                transform,
                subject: Box::new(subject),
                args,
            }
        }
        Kind::Array(items) => {
            let items: Vec<Node> = items.iter().map(|&i| compile_node(ast, i)).collect();
            if items.iter().all(|i| as_const(i).is_some()) {
                Node::Const(Value::array(
                    items.iter().filter_map(as_const).cloned().collect(),
                ))
            } else {
                Node::Array(items)
            }
        }
        Kind::Object(entries) => {
            // `{__proto__: x}` sets the prototype in JavaScript rather than adding a key.
            let entries: Vec<(Arc<str>, Node)> = entries
                .iter()
                .filter(|(key, _)| &**key != "__proto__")
                .map(|(key, value)| (key.clone(), compile_opt(ast, *value)))
                .collect();
            if entries.iter().all(|(_, v)| as_const(v).is_some()) {
                let map: IndexMap<Arc<str>, Value> = entries
                    .iter()
                    .filter_map(|(k, v)| as_const(v).map(|v| (k.clone(), v.clone())))
                    .collect();
                Node::Const(Value::object(map))
            } else {
                Node::Object(entries)
            }
        }
    }
}

/// Flattens a left-leaning chain of the same `&&`/`||` operator without recursing along it.
fn compile_chain(ast: &Ast, id: NodeId, op: BinOp) -> Node {
    let mut rights = Vec::new();
    let mut cursor = id;
    loop {
        match ast.nodes.get(cursor).map(|n| &n.kind) {
            Some(Kind::Binary {
                op: inner,
                left,
                right,
            }) if *inner == op => {
                rights.push(*right);
                cursor = *left;
            }
            _ => break,
        }
    }
    let mut operands = Vec::with_capacity(rights.len() + 1);
    operands.push(compile_node(ast, cursor));
    operands.extend(rights.into_iter().rev().map(|r| compile_opt(ast, r)));
    if operands.iter().all(|o| as_const(o).is_some()) {
        let and = op == BinOp::And;
        let mut acc: Option<&Value> = None;
        for value in operands.iter().filter_map(as_const) {
            acc = Some(match acc {
                Some(prev) if prev.is_truthy() != and => prev,
                _ => value,
            });
        }
        return Node::Const(acc.cloned().unwrap_or(Value::Undefined));
    }
    if op == BinOp::And {
        Node::And(operands)
    } else {
        Node::Or(operands)
    }
}

/// Compiles a parsed tree into a program without the specialised operations, so that tests
/// can check that specialising changes no result.
#[cfg(test)]
pub(crate) fn compile_general(ast: &Ast) -> Program {
    lower(&compile_node(ast, ast.root), Outline::of(ast), false)
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

/// Lays out `root` as a program (see [`super::program`] for the layout); `specialise`
/// turns the common clause shapes into their specialised operations.
pub(crate) fn lower(root: &Node, outline: Outline, specialise: bool) -> Program {
    let mut lowering = Lowering {
        ops: Vec::with_capacity(outline.ops),
        globals: outline.globals,
        global_span: Span::EMPTY,
        text: String::with_capacity(outline.text),
        values: Vec::new(),
        transforms: Vec::new(),
        versions: Vec::new(),
        specialise,
    };
    // The root, then the globals, so that starting an evaluation reads one cache line.
    let at = lowering.reserve(1).start;
    lowering.global_span = lowering.reserve(lowering.globals.len());
    let globals = std::mem::take(&mut lowering.globals);
    for (at, name) in lowering.global_span.ids().zip(&globals) {
        let op = Op::Key(lowering.name(name));
        lowering.put(at, op);
    }
    lowering.globals = globals;
    lowering.lower(root, at);
    Program {
        ops: Arc::from(lowering.ops),
        text: Arc::from(lowering.text),
        globals: lowering.global_span,
        boolean: match root {
            Node::And(items) | Node::Or(items) => items.iter().all(is_boolean),
            other => is_boolean(other),
        },
        tables: Arc::new(Tables {
            values: lowering.values.into_boxed_slice(),
            transforms: lowering.transforms.into_boxed_slice(),
            versions: lowering.versions.into_boxed_slice(),
        }),
    }
}

/// A program being laid out. Operations are placed top-down: a slot is reserved for every
/// operand of an operation before any operand is compiled, so operand lists are contiguous.
struct Lowering {
    ops: Vec<Op>,
    /// Every top-level identifier of the program ([`Outline::globals`]).
    globals: Vec<Arc<str>>,
    global_span: Span,
    text: String,
    values: Vec<Value>,
    transforms: Vec<Transform>,
    versions: Vec<Arc<ToolkitVersion>>,
    specialise: bool,
}

impl Lowering {
    /// Reserves `len` consecutive operation slots, to be filled by [`Lowering::put`].
    fn reserve(&mut self, len: usize) -> Span {
        let start = self.ops.len();
        self.ops.extend((0..len).map(|_| Op::Missing));
        Span::new(start, len)
    }

    fn put(&mut self, at: OpId, op: Op) {
        if let Some(slot) = self.ops.get_mut(at as usize) {
            *slot = op;
        }
    }

    /// Compiles `node` into a new slot.
    fn child(&mut self, node: &Node) -> OpId {
        let at = self.reserve(1).start;
        self.lower(node, at);
        at
    }

    /// Compiles `nodes` into consecutive slots.
    fn list<'n>(&mut self, nodes: impl Iterator<Item = &'n Node> + Clone) -> Span {
        let span = self.reserve(nodes.clone().count());
        for (at, node) in span.ids().zip(nodes) {
            self.lower(node, at);
        }
        span
    }

    /// `text`, added to the program's text.
    fn text(&mut self, text: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(text);
        Span::new(start, text.len())
    }

    fn name(&mut self, text: &str) -> Name {
        Name::new(self.text(text))
    }

    /// The index of global `name` ([`Outline`] has found every one).
    fn global(&self, name: &str) -> u32 {
        let index = self.globals.iter().position(|g| &**g == name);
        index
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(u32::MAX)
    }

    /// Consecutive [`Op::Key`]s for `names`.
    fn steps<'n>(&mut self, names: impl Iterator<Item = &'n Arc<str>> + Clone) -> Span {
        let span = self.reserve(names.clone().count());
        for (at, name) in span.ids().zip(names) {
            let op = Op::Key(self.name(name));
            self.put(at, op);
        }
        span
    }

    fn value(&mut self, value: Value) -> u32 {
        self.values.push(value);
        u32::try_from(self.values.len() - 1).unwrap_or(u32::MAX)
    }

    fn lower(&mut self, node: &Node, at: OpId) {
        let op = match node {
            Node::Const(v) => Op::Const(self.value(v.clone())),
            Node::Global(name) => Op::Global(self.global(name)),
            Node::Relative(name) => Op::Relative(self.name(name)),
            Node::Path {
                root,
                relative: false,
                steps,
            } => {
                let global = self.global(root);
                match (u16::try_from(global), steps.as_slice()) {
                    (Ok(global), [name]) => Op::GlobalMember {
                        global,
                        name: self.name(name),
                    },
                    _ => Op::GlobalPath {
                        global,
                        steps: self.steps(steps.iter()),
                    },
                }
            }
            Node::Path {
                root,
                relative: true,
                steps,
            } => Op::RelativePath {
                steps: self.steps(std::iter::once(root).chain(steps)),
            },
            Node::Member(from, name) => {
                let slots = self.reserve(2);
                self.lower(from, slots.start);
                let key = Op::Key(self.name(name));
                self.put(slots.start.saturating_add(1), key);
                Op::Member { from: slots.start }
            }
            Node::Not(operand) => Op::Not(self.child(operand)),
            Node::Binary(op, left, right) => match self.specialised_comparison(*op, left, right) {
                Some(op) => op,
                None => Op::Binary {
                    op: *op,
                    left: self.child(left),
                    right: self.child(right),
                },
            },
            Node::And(items) => Op::And {
                boolean: items.iter().all(is_boolean),
                items: self.list(items.iter()),
            },
            Node::Or(items) => Op::Or {
                boolean: items.iter().all(is_boolean),
                items: self.list(items.iter()),
            },
            Node::Conditional {
                test,
                consequent,
                alternate,
            } => Op::Conditional {
                test: self.child(test),
                consequent: consequent.as_deref().map_or(NO_OP, |c| self.child(c)),
                alternate: self.child(alternate),
            },
            Node::FilterRelative { subject, expr } => Op::FilterRelative {
                subject: self.child(subject),
                expr: self.child(expr),
            },
            Node::FilterStatic { subject, expr } => Op::FilterStatic {
                subject: self.child(subject),
                expr: self.child(expr),
            },
            Node::Transform {
                transform,
                subject,
                args,
            } => match (transform, &**subject, args.as_slice()) {
                (Transform::StableSample, Node::Array(items), [rate])
                    if self.specialise && items.len() <= 4 =>
                {
                    Op::StableSampleArray {
                        items: self.list(items.iter()),
                        rate: self.child(rate),
                        valid_rate: matches!(rate, Node::Const(rate)
                            if crate::sampling::fraction_key(super::ops::to_number(rate)).is_ok()),
                    }
                }
                _ => {
                    self.transforms.push(transform.clone());
                    Op::Transform {
                        transform: u32::try_from(self.transforms.len() - 1).unwrap_or(u32::MAX),
                        operands: self.list(std::iter::once(&**subject).chain(args)),
                    }
                }
            },
            Node::Array(items) => Op::Array(self.list(items.iter())),
            Node::Object(entries) => {
                let start = self.values.len();
                for (key, _) in entries {
                    self.values.push(Value::String(key.clone()));
                }
                Op::Object {
                    keys: u32::try_from(start).unwrap_or(u32::MAX),
                    values: self.list(entries.iter().map(|(_, value)| value)),
                }
            }
            Node::Missing => Op::Missing,
        };
        self.put(at, op);
    }

    /// [`Op::MatchText`] for `subject op constant`, whose strings are `texts`; `None` when a
    /// string is too long for its length to fit the one-character prefix.
    fn match_text<'t>(
        &mut self,
        op: BinOp,
        subject: &Node,
        constant: &Value,
        texts: impl Iterator<Item = &'t str> + Clone,
    ) -> Option<Op> {
        if texts.clone().any(|text| text.len() > 127) {
            return None;
        }
        let start = self.text.len();
        for text in texts {
            let len = u8::try_from(text.len()).unwrap_or_default();
            self.text.push(char::from(len));
            self.text.push_str(text);
        }
        // The subject, and after it the constant that only a non-string subject needs.
        let slots = self.reserve(2);
        self.lower(subject, slots.start);
        let constant = Op::Const(self.value(constant.clone()));
        self.put(slots.start.saturating_add(1), constant);
        Some(Op::MatchText {
            op,
            subject: slots.start,
            texts: Span::new(start, self.text.len() - start),
        })
    }

    /// The specialised operation for `left op right`, when the shape has one:
    /// - `x == 'text'`, `x != 'text'` and `x in ['a', 'b', …]` (string literals only) become
    ///   [`Op::MatchText`];
    /// - `x|versionCompare('literal') op number` becomes [`Op::VersionCmp`].
    fn specialised_comparison(&mut self, op: BinOp, left: &Node, right: &Node) -> Option<Op> {
        if !self.specialise || !op.is_comparison() {
            return None;
        }
        match (op, left, right) {
            (BinOp::Eq | BinOp::Ne, _, Node::Const(constant @ Value::String(text))) => {
                self.match_text(op, left, constant, std::iter::once(&**text))
            }
            (BinOp::In, _, Node::Const(constant @ Value::Array(items)))
                if items.iter().all(|item| matches!(item, Value::String(_))) =>
            {
                let texts = items.iter().map(|item| match item {
                    Value::String(text) => &**text,
                    _ => "",
                });
                self.match_text(op, left, constant, texts)
            }
            (
                _,
                Node::Transform {
                    transform: Transform::VersionCompare(Some(version)),
                    subject,
                    args,
                },
                Node::Const(Value::Number(number)),
            ) => {
                let [Node::Const(literal)] = args.as_slice() else {
                    return None;
                };
                // An integer, as filters write (`>= 0`); `-0` is `0` to every comparison.
                let integer = i16::try_from(*number as i64)
                    .ok()
                    .filter(|n| f64::from(*n) == *number)?;
                let first = leading_number(transforms::version_text(literal).as_bytes());
                self.versions.push(Arc::clone(version));
                Some(Op::VersionCmp {
                    op,
                    number: integer,
                    version: u32::try_from(self.versions.len() - 1).unwrap_or(u32::MAX),
                    first: first.unwrap_or(u32::MAX),
                    subject: self.child(subject),
                })
            }
            _ => None,
        }
    }
}
