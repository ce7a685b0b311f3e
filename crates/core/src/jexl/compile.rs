//! Turns the parse tree into a [`Program`] in one walk, without an intermediate tree.
//!
//! Compiling folds constant subtrees, flattens `&&`/`||` chains, gathers identifier chains
//! into paths, resolves transforms to an enum (compiling literal regular expressions and
//! parsing literal versions once), and lays the result out as a flat program where the
//! clauses filters are made of become specialised operations (see [`super::program`]).
//!
//! Folding is decided first, for the whole tree ([`Compiler::fold`], remembered per parse
//! node), because the layout depends on it: a constant operand becomes one [`Op::Const`], and
//! whether a clause can be specialised depends on which of its operands are constants. The
//! layout is then written top-down from the parse tree. A filter of a manifest is compiled
//! once per client run, so this walk allocates little: the fold table, one scratch list, and
//! the parts of the program itself.

use std::sync::Arc;

use indexmap::IndexMap;

use crate::value::Value;
use crate::version::ToolkitVersion;

use super::ast::{Ast, BinOp, Kind, NodeId};
use super::eval;
use super::lexer::Lit;
use super::program::{NO_OP, Name, Op, OpId, Program, Span, Tables, leading_number};
use super::transforms::{self, Transform};

/// Compiles a parsed tree into a program with the specialised operations.
pub(crate) fn compile(ast: &Ast) -> Program {
    Compiler::new(ast, true).program()
}

/// Compiles a parsed tree into a program without the specialised operations, so that tests
/// can check that specialising changes no result.
#[cfg(test)]
pub(crate) fn compile_general(ast: &Ast) -> Program {
    Compiler::new(ast, false).program()
}

/// What lowering needs to know before it starts, read from the parse tree in one pass: the
/// top-level identifiers, and the sizes of the program, so that lowering usually allocates
/// each part once (about one operation per parse node plus the globals, and at most every
/// identifier and string literal, with a length byte, as text).
#[derive(Debug)]
struct Outline {
    /// Every top-level identifier of the parse tree, each once. (The parser may leave nodes
    /// out of the final tree; reading an unused global early changes nothing.)
    globals: Vec<Arc<str>>,
    ops: usize,
    text: usize,
}

impl Outline {
    fn of(ast: &Ast) -> Outline {
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

fn lit_value(lit: &Lit) -> Value {
    match lit {
        Lit::Str(s) => Value::String(s.clone()),
        Lit::Num(n) => Value::Number(*n),
        Lit::Bool(b) => Value::Bool(*b),
    }
}

/// What a parse node compiles to, as far as folding is concerned.
#[derive(Debug, Clone)]
enum Fold {
    /// Not worked out yet.
    Pending,
    /// Not a constant.
    Open,
    /// The constant the subtree folds to.
    Const(Value),
}

/// What takes a parse node's place in the program: a constant, the node itself (or another
/// node a constant-test conditional stands for), or nothing (`()`, an empty argument).
#[derive(Debug, Clone, Copy)]
enum Target {
    Const(NodeId),
    Node(NodeId),
    Missing,
}

/// One compilation: the fold table, and the program being laid out. Operations are placed
/// top-down: a slot is reserved for every operand of an operation before any operand is
/// compiled, so operand lists are contiguous.
struct Compiler<'a> {
    ast: &'a Ast,
    folds: Vec<Fold>,
    /// Parse nodes of the lists being laid out (chain operands, path steps), used as a stack:
    /// each list is pushed, read from its start, and truncated when done.
    scratch: Vec<NodeId>,
    specialise: bool,
    ops: Vec<Op>,
    /// Every top-level identifier of the program ([`Outline::globals`]).
    globals: Vec<Arc<str>>,
    global_span: Span,
    text: String,
    values: Vec<Value>,
    transforms: Vec<Transform>,
    versions: Vec<Arc<ToolkitVersion>>,
}

impl<'a> Compiler<'a> {
    fn new(ast: &'a Ast, specialise: bool) -> Compiler<'a> {
        let outline = Outline::of(ast);
        Compiler {
            ast,
            folds: vec![Fold::Pending; ast.nodes.len()],
            scratch: Vec::new(),
            specialise,
            ops: Vec::with_capacity(outline.ops),
            globals: outline.globals,
            global_span: Span::EMPTY,
            text: String::with_capacity(outline.text),
            values: Vec::new(),
            transforms: Vec::new(),
            versions: Vec::new(),
        }
    }

    fn program(mut self) -> Program {
        let root = self.target(Some(self.ast.root));
        // The root, then the globals, so that starting an evaluation reads one cache line.
        let at = self.reserve(1).start;
        self.global_span = self.reserve(self.globals.len());
        let globals = std::mem::take(&mut self.globals);
        for (at, name) in self.global_span.ids().zip(&globals) {
            let op = Op::Key(self.name(name));
            self.put(at, op);
        }
        self.globals = globals;
        self.lower(root, at);
        let boolean = match root {
            Target::Node(id) => match self.chain_op(id) {
                Some(op) => {
                    let operands = self.chain_targets(id, op);
                    operands.iter().all(|operand| self.is_boolean(*operand))
                }
                None => self.is_boolean(root),
            },
            other => self.is_boolean(other),
        };
        Program {
            ops: Arc::from(self.ops),
            text: Arc::from(self.text),
            globals: self.global_span,
            boolean,
            tables: Arc::new(Tables {
                values: self.values.into_boxed_slice(),
                transforms: self.transforms.into_boxed_slice(),
                versions: self.versions.into_boxed_slice(),
            }),
            recipe_beyond_id: false,
        }
        .with_recipe_use()
    }

    fn kind(&self, id: NodeId) -> Option<&'a Kind> {
        self.ast.nodes.get(id).map(|node| &node.kind)
    }

    /// The constant node `id` folds to, if it does. Each node is worked out once.
    fn fold(&mut self, id: NodeId) -> Option<&Value> {
        if matches!(self.folds.get(id), Some(Fold::Pending)) {
            let fold = match self.fold_node(id) {
                Some(value) => Fold::Const(value),
                None => Fold::Open,
            };
            if let Some(slot) = self.folds.get_mut(id) {
                *slot = fold;
            }
        }
        match self.folds.get(id) {
            Some(Fold::Const(value)) => Some(value),
            _ => None,
        }
    }

    fn fold_opt(&mut self, id: Option<NodeId>) -> Option<Value> {
        id.and_then(|id| self.fold(id).cloned())
    }

    fn is_const(&mut self, id: Option<NodeId>) -> bool {
        id.is_some_and(|id| self.fold(id).is_some())
    }

    /// Folds node `id` from its children (see [`Compiler::fold`]).
    fn fold_node(&mut self, id: NodeId) -> Option<Value> {
        match self.kind(id)? {
            Kind::Literal(lit) => Some(lit_value(lit)),
            Kind::Identifier { .. } | Kind::Filter { .. } => None,
            Kind::Unary { right } => {
                let operand = self.fold_opt(*right)?;
                Some(Value::Bool(!operand.is_truthy()))
            }
            Kind::Binary {
                op: op @ (BinOp::And | BinOp::Or),
                ..
            } => self.fold_chain(id, *op),
            Kind::Binary { op, left, right } => {
                let left = self.fold(*left).cloned();
                let right = self.fold_opt(*right);
                Some(eval::binary(*op, &left?, &right?))
            }
            Kind::Conditional {
                test,
                consequent,
                alternate,
            } => {
                let test = self.fold_opt(*test)?;
                if test.is_truthy() {
                    match consequent {
                        Some(consequent) => self.fold(*consequent).cloned(),
                        None => Some(test),
                    }
                } else {
                    self.fold_opt(*alternate)
                }
            }
            Kind::Transform {
                name,
                subject,
                args,
            } => {
                // Only `date` of constants is worked out when compiling.
                if &**name != "date" {
                    return None;
                }
                let subject = self.fold(*subject).cloned();
                let mut all = true;
                for arg in args {
                    all &= self.is_const(*arg);
                }
                match subject {
                    Some(subject) if all => Some(transforms::date(&subject)),
                    _ => None,
                }
            }
            Kind::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                let mut all = true;
                for item in items {
                    match self.fold(*item) {
                        Some(value) => values.push(value.clone()),
                        None => all = false,
                    }
                }
                all.then(|| Value::array(values))
            }
            Kind::Object(entries) => {
                // `{__proto__: x}` sets the prototype in JavaScript rather than adding a key.
                let mut map: IndexMap<Arc<str>, Value> = IndexMap::default();
                let mut all = true;
                for (key, value) in entries.iter().filter(|(key, _)| &**key != "__proto__") {
                    match self.fold_opt(*value) {
                        Some(value) => {
                            map.insert(key.clone(), value);
                        }
                        None => all = false,
                    }
                }
                all.then(|| Value::object(map))
            }
        }
    }

    /// Folds a chain of `op` (`&&` or `||`) whose operands are all constants, as JavaScript
    /// evaluates it.
    fn fold_chain(&mut self, id: NodeId, op: BinOp) -> Option<Value> {
        let start = self.push_chain(id, op);
        let mut operands = Vec::new();
        let mut all = true;
        for i in start..self.scratch.len() {
            let item = self.scratch.get(i).copied();
            match item.and_then(|item| self.fold(item)) {
                Some(value) => operands.push(value.clone()),
                None => all = false,
            }
        }
        // A missing right operand is not a constant.
        all &= self.chain_complete(id, op);
        self.scratch.truncate(start);
        if !all {
            return None;
        }
        let and = op == BinOp::And;
        let mut acc: Option<&Value> = None;
        for value in &operands {
            acc = Some(match acc {
                Some(prev) if prev.is_truthy() != and => prev,
                _ => value,
            });
        }
        Some(acc.cloned().unwrap_or(Value::Undefined))
    }

    /// Whether every link of the chain of `op` at `id` has its right operand.
    fn chain_complete(&self, id: NodeId, op: BinOp) -> bool {
        let mut cursor = id;
        loop {
            match self.kind(cursor) {
                Some(Kind::Binary {
                    op: inner,
                    left,
                    right,
                }) if *inner == op => {
                    if right.is_none() {
                        return false;
                    }
                    cursor = *left;
                }
                _ => return true,
            }
        }
    }

    /// The operator of the `&&`/`||` chain at `id`, if `id` is one.
    fn chain_op(&self, id: NodeId) -> Option<BinOp> {
        match self.kind(id)? {
            Kind::Binary {
                op: op @ (BinOp::And | BinOp::Or),
                ..
            } => Some(*op),
            _ => None,
        }
    }

    /// Pushes the operands of the left-leaning chain of `op` at `id` on the scratch list, in
    /// order (a missing right operand is left out: see [`Compiler::chain_complete`]), without
    /// recursing along the chain. Returns where they start.
    fn push_chain(&mut self, id: NodeId, op: BinOp) -> usize {
        let start = self.scratch.len();
        let mut cursor = id;
        loop {
            match self.kind(cursor) {
                Some(Kind::Binary {
                    op: inner,
                    left,
                    right,
                }) if *inner == op => {
                    if let Some(right) = right {
                        self.scratch.push(*right);
                    }
                    cursor = *left;
                }
                _ => break,
            }
        }
        self.scratch.push(cursor);
        if let Some(pushed) = self.scratch.get_mut(start..) {
            pushed.reverse();
        }
        start
    }

    /// The operands of the chain of `op` at `id`, in order, missing right operands included.
    fn chain_targets(&mut self, id: NodeId, op: BinOp) -> Vec<Target> {
        let mut rights = Vec::new();
        let mut cursor = id;
        loop {
            match self.kind(cursor) {
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
        let mut targets = Vec::with_capacity(rights.len() + 1);
        targets.push(self.target(Some(cursor)));
        for right in rights.into_iter().rev() {
            targets.push(self.target(right));
        }
        targets
    }

    /// What takes the place of node `id` (see [`Target`]).
    fn target(&mut self, id: Option<NodeId>) -> Target {
        let Some(mut id) = id else {
            return Target::Missing;
        };
        loop {
            if self.fold(id).is_some() {
                return Target::Const(id);
            }
            // A conditional whose test is a constant compiles to the branch it takes.
            match self.kind(id) {
                Some(Kind::Conditional {
                    test: Some(test),
                    consequent,
                    alternate,
                }) => {
                    let Some(truthy) = self.fold(*test).map(Value::is_truthy) else {
                        return Target::Node(id);
                    };
                    let next = if truthy { *consequent } else { *alternate };
                    match next {
                        Some(next) => id = next,
                        // A truthy test without consequent gives the test: a constant, so
                        // the conditional folded above.
                        None => return Target::Missing,
                    }
                }
                Some(_) => return Target::Node(id),
                None => return Target::Missing,
            }
        }
    }

    /// The folded constant of a [`Target::Const`].
    fn const_of(&self, target: Target) -> Option<&Value> {
        match target {
            Target::Const(id) => match self.folds.get(id) {
                Some(Fold::Const(value)) => Some(value),
                _ => None,
            },
            _ => None,
        }
    }

    /// The identifier chain ending at the identifier `id`, when it starts at a plain or
    /// relative identifier: pushes the names' nodes on the scratch list, root first, and
    /// returns where they start. `None` (and nothing pushed) when some link reads a member
    /// of something else.
    fn push_path(&mut self, id: NodeId) -> Option<usize> {
        let start = self.scratch.len();
        let mut cursor = id;
        loop {
            self.scratch.push(cursor);
            match self.kind(cursor) {
                Some(Kind::Identifier { from: None, .. }) => break,
                Some(Kind::Identifier {
                    from: Some(from), ..
                }) => match self.target(Some(*from)) {
                    Target::Node(next)
                        if matches!(self.kind(next), Some(Kind::Identifier { .. })) =>
                    {
                        cursor = next;
                    }
                    _ => {
                        self.scratch.truncate(start);
                        return None;
                    }
                },
                _ => {
                    self.scratch.truncate(start);
                    return None;
                }
            }
        }
        if let Some(pushed) = self.scratch.get_mut(start..) {
            pushed.reverse();
        }
        Some(start)
    }

    /// The name of identifier node `id`.
    fn ident(&self, id: NodeId) -> Option<&'a Arc<str>> {
        match self.kind(id)? {
            Kind::Identifier { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The transform `name` resolves to with the arguments `args`.
    fn resolve(&mut self, name: &Arc<str>, args: &[Option<NodeId>]) -> Transform {
        for arg in args.iter().flatten() {
            self.fold(*arg);
        }
        let consts: Vec<Option<&Value>> = args
            .iter()
            .map(|arg| match arg.and_then(|arg| self.folds.get(arg)) {
                Some(Fold::Const(value)) => Some(value),
                _ => None,
            })
            .collect();
        transforms::resolve(name, &consts)
    }

    /// Whether `target` always evaluates to a boolean (or fails), so that its value is its
    /// truthiness. Conservative: nested chains answer `false`.
    fn is_boolean(&self, target: Target) -> bool {
        match target {
            Target::Const(_) => matches!(self.const_of(target), Some(Value::Bool(_))),
            Target::Missing => false,
            Target::Node(id) => match self.kind(id) {
                Some(Kind::Unary { .. }) => true,
                Some(Kind::Binary { op, .. }) => {
                    !matches!(op, BinOp::And | BinOp::Or) && op.is_comparison()
                }
                // These transforms resolve by name alone (see `transforms::resolve`).
                Some(Kind::Transform { name, .. }) => matches!(
                    &**name,
                    "stableSample" | "bucketSample" | "preferenceIsUserSet" | "preferenceExists"
                ),
                _ => false,
            },
        }
    }

    /// Reserves `len` consecutive operation slots, to be filled by [`Compiler::put`].
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

    /// Compiles `target` into a new slot.
    fn child(&mut self, target: Target) -> OpId {
        let at = self.reserve(1).start;
        self.lower(target, at);
        at
    }

    /// Compiles `targets` into consecutive slots.
    fn list(&mut self, targets: &[Target]) -> Span {
        let span = self.reserve(targets.len());
        for (at, target) in span.ids().zip(targets) {
            self.lower(*target, at);
        }
        span
    }

    /// Compiles the nodes `scratch[start..]` into consecutive slots, and drops them from the
    /// scratch list.
    fn list_scratch(&mut self, start: usize) -> Span {
        let span = self.reserve(self.scratch.len().saturating_sub(start));
        for (at, i) in span.ids().zip(start..) {
            let item = self.scratch.get(i).copied();
            let target = self.target(item);
            self.lower(target, at);
        }
        self.scratch.truncate(start);
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

    /// Consecutive [`Op::Key`]s for the identifiers `scratch[start..]`, which are dropped
    /// from the scratch list.
    fn steps(&mut self, start: usize) -> Span {
        let span = self.reserve(self.scratch.len().saturating_sub(start));
        for (at, i) in span.ids().zip(start..) {
            let name = self.scratch.get(i).and_then(|&id| self.ident(id));
            let op = Op::Key(self.name(name.map_or("", |name| &**name)));
            self.put(at, op);
        }
        self.scratch.truncate(start);
        span
    }

    fn value(&mut self, value: Value) -> u32 {
        self.values.push(value);
        u32::try_from(self.values.len() - 1).unwrap_or(u32::MAX)
    }

    fn lower(&mut self, target: Target, at: OpId) {
        let op = match target {
            Target::Missing => Op::Missing,
            Target::Const(_) => {
                let value = self.const_of(target).cloned().unwrap_or(Value::Undefined);
                Op::Const(self.value(value))
            }
            Target::Node(id) => self.lower_node(id),
        };
        self.put(at, op);
    }

    /// The operation of a node that is not a constant.
    fn lower_node(&mut self, id: NodeId) -> Op {
        let Some(kind) = self.kind(id) else {
            return Op::Missing;
        };
        match kind {
            // Literals are constants; reached only through a broken tree.
            Kind::Literal(_) => Op::Missing,
            Kind::Identifier {
                name,
                from: None,
                relative,
            } => {
                if *relative {
                    Op::Relative(self.name(name))
                } else {
                    Op::Global(self.global(name))
                }
            }
            Kind::Identifier {
                name,
                from: Some(from),
                ..
            } => match self.push_path(id) {
                Some(start) => self.lower_path(start),
                None => {
                    // `from.name` where `from` is not an identifier chain.
                    let from = self.target(Some(*from));
                    let slots = self.reserve(2);
                    self.lower(from, slots.start);
                    let key = Op::Key(self.name(name));
                    self.put(slots.start.saturating_add(1), key);
                    Op::Member { from: slots.start }
                }
            },
            Kind::Unary { right } => {
                let operand = self.target(*right);
                Op::Not(self.child(operand))
            }
            Kind::Binary {
                op: op @ (BinOp::And | BinOp::Or),
                ..
            } => {
                let targets = self.chain_targets(id, *op);
                let mut boolean = true;
                for target in &targets {
                    boolean &= self.is_boolean(*target);
                }
                let items = self.list(&targets);
                if *op == BinOp::And {
                    Op::And { items, boolean }
                } else {
                    Op::Or { items, boolean }
                }
            }
            Kind::Binary { op, left, right } => {
                let (left, right) = (self.target(Some(*left)), self.target(*right));
                match self.specialised_comparison(*op, left, right) {
                    Some(op) => op,
                    None => Op::Binary {
                        op: *op,
                        left: self.child(left),
                        right: self.child(right),
                    },
                }
            }
            Kind::Conditional {
                test,
                consequent,
                alternate,
            } => {
                let test = self.target(*test);
                let test = self.child(test);
                let consequent = match consequent {
                    Some(consequent) => {
                        let consequent = self.target(Some(*consequent));
                        self.child(consequent)
                    }
                    None => NO_OP,
                };
                let alternate = self.target(*alternate);
                Op::Conditional {
                    test,
                    consequent,
                    alternate: self.child(alternate),
                }
            }
            Kind::Filter {
                subject,
                expr,
                relative,
            } => {
                let subject = self.target(Some(*subject));
                let subject = self.child(subject);
                let expr = self.target(*expr);
                let expr = self.child(expr);
                if *relative {
                    Op::FilterRelative { subject, expr }
                } else {
                    Op::FilterStatic { subject, expr }
                }
            }
            Kind::Transform {
                name,
                subject,
                args,
            } => self.lower_transform(name, *subject, args),
            Kind::Array(items) => {
                let start = self.scratch.len();
                self.scratch.extend_from_slice(items);
                Op::Array(self.list_scratch(start))
            }
            Kind::Object(entries) => {
                let start = self.values.len();
                let mut targets = Vec::with_capacity(entries.len());
                for (key, value) in entries.iter().filter(|(key, _)| &**key != "__proto__") {
                    self.values.push(Value::String(key.clone()));
                    targets.push(self.target(*value));
                }
                Op::Object {
                    keys: u32::try_from(start).unwrap_or(u32::MAX),
                    values: self.list(&targets),
                }
            }
        }
    }

    /// The path whose identifiers are `scratch[start..]` (root first).
    fn lower_path(&mut self, start: usize) -> Op {
        let root = self.scratch.get(start).copied();
        let relative = matches!(
            root.and_then(|root| self.kind(root)),
            Some(Kind::Identifier { relative: true, .. })
        );
        if relative {
            return Op::RelativePath {
                steps: self.steps(start),
            };
        }
        let global = self.global(root.and_then(|root| self.ident(root)).map_or("", |n| n));
        let single = self.scratch.len() == start + 2;
        let op = match (u16::try_from(global), single) {
            (Ok(global), true) => {
                let step = self.scratch.get(start + 1).and_then(|&id| self.ident(id));
                Op::GlobalMember {
                    global,
                    name: self.name(step.map_or("", |n| n)),
                }
            }
            _ => Op::GlobalPath {
                global,
                steps: self.steps(start + 1),
            },
        };
        self.scratch.truncate(start);
        op
    }

    fn lower_transform(&mut self, name: &Arc<str>, subject: NodeId, args: &[Option<NodeId>]) -> Op {
        let transform = self.resolve(name, args);
        let subject = self.target(Some(subject));
        if self.specialise
            && matches!(transform, Transform::StableSample)
            && let [rate] = args
            && let Target::Node(array) = subject
            && let Some(Kind::Array(items)) = self.kind(array)
            && items.len() <= 4
        {
            let rate = self.target(*rate);
            let valid_rate = matches!(self.const_of(rate), Some(rate)
                if crate::sampling::fraction_key(super::ops::to_number(rate)).is_ok());
            let start = self.scratch.len();
            self.scratch.extend_from_slice(items);
            return Op::StableSampleArray {
                items: self.list_scratch(start),
                rate: self.child(rate),
                valid_rate,
            };
        }
        self.transforms.push(transform);
        let mut operands = Vec::with_capacity(args.len() + 1);
        operands.push(subject);
        for arg in args {
            operands.push(self.target(*arg));
        }
        Op::Transform {
            transform: u32::try_from(self.transforms.len() - 1).unwrap_or(u32::MAX),
            operands: self.list(&operands),
        }
    }

    /// [`Op::MatchText`] for `subject op constant`, whose strings are `texts`; `None` when a
    /// string is too long for its length to fit the one-character prefix.
    fn match_text(&mut self, op: BinOp, subject: Target, constant: &Value) -> Option<Op> {
        let texts: &[Value] = match constant {
            Value::Array(items) => items,
            single => std::slice::from_ref(single),
        };
        let text_of = |value: &Value| match value {
            Value::String(text) => Some(text.clone()),
            _ => None,
        };
        if texts
            .iter()
            .any(|text| text_of(text).is_none_or(|text| text.len() > 127))
        {
            return None;
        }
        let start = self.text.len();
        for text in texts.iter().filter_map(text_of) {
            let len = u8::try_from(text.len()).unwrap_or_default();
            self.text.push(char::from(len));
            self.text.push_str(&text);
        }
        // Measured before the subject's names follow in the text: they are not strings of
        // the list.
        let texts = Span::new(start, self.text.len() - start);
        // The subject, and after it the constant that only a non-string subject needs.
        let slots = self.reserve(2);
        self.lower(subject, slots.start);
        let constant = Op::Const(self.value(constant.clone()));
        self.put(slots.start.saturating_add(1), constant);
        Some(Op::MatchText {
            op,
            subject: slots.start,
            texts,
        })
    }

    /// The specialised operation for `left op right`, when the shape has one:
    /// - `x == 'text'`, `x != 'text'` and `x in ['a', 'b', …]` (string literals only) become
    ///   [`Op::MatchText`];
    /// - `x|versionCompare('literal') op number` becomes [`Op::VersionCmp`].
    fn specialised_comparison(&mut self, op: BinOp, left: Target, right: Target) -> Option<Op> {
        if !self.specialise || !op.is_comparison() {
            return None;
        }
        let constant = self.const_of(right)?.clone();
        match (op, &constant) {
            (BinOp::Eq | BinOp::Ne, Value::String(_)) => {
                return self.match_text(op, left, &constant);
            }
            (BinOp::In, Value::Array(items))
                if items.iter().all(|item| matches!(item, Value::String(_))) =>
            {
                return self.match_text(op, left, &constant);
            }
            _ => {}
        }
        let Value::Number(number) = constant else {
            return None;
        };
        let Target::Node(left) = left else {
            return None;
        };
        let Some(Kind::Transform {
            name,
            subject,
            args,
        }) = self.kind(left)
        else {
            return None;
        };
        let [Some(literal)] = args.as_slice() else {
            return None;
        };
        if &**name != "versionCompare" {
            return None;
        }
        let literal = self.fold(*literal)?.clone();
        // An integer, as filters write (`>= 0`); `-0` is `0` to every comparison.
        let integer = i16::try_from(number as i64)
            .ok()
            .filter(|n| f64::from(*n) == number)?;
        let Transform::VersionCompare(Some(version)) = self.resolve(name, args) else {
            return None;
        };
        let first = leading_number(transforms::version_text(&literal).as_bytes());
        self.versions.push(version);
        let subject = self.target(Some(*subject));
        Some(Op::VersionCmp {
            op,
            number: integer,
            version: u32::try_from(self.versions.len() - 1).unwrap_or(u32::MAX),
            first: first.unwrap_or(u32::MAX),
            subject: self.child(subject),
        })
    }
}
