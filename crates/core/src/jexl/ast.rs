//! The parse tree, stored in an arena with parent links.
//!
//! mozjexl's parser is a state machine that edits a tree through a cursor and `_parent`
//! pointers (operator precedence is resolved by climbing parents). The arena mirrors that
//! design so the port can follow it step by step, quirks included.

use std::sync::Arc;

use super::lexer::Lit;

/// Index of a node in the arena.
pub(crate) type NodeId = usize;

/// Binary operators, including Normandy's `intersect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
    In,
    Intersect,
}

impl BinOp {
    /// Operators whose result is always a boolean.
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le | BinOp::In
        )
    }

    /// mozjexl's precedence table (`grammar.js`; `intersect` is registered by Normandy at 40).
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinOp::And | BinOp::Or => 10,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le | BinOp::In => 20,
            BinOp::Add | BinOp::Sub => 30,
            BinOp::Mul | BinOp::Div | BinOp::FloorDiv | BinOp::Intersect => 40,
            BinOp::Mod | BinOp::Pow => 50,
        }
    }
}

/// A node. `None` children are JavaScript `null`/`undefined` subtrees (from `()` or empty
/// arguments), which mozjexl accepts when parsing and fails on when evaluating.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Literal(Lit),
    Identifier {
        name: Arc<str>,
        from: Option<NodeId>,
        relative: bool,
    },
    Unary {
        right: Option<NodeId>,
    },
    Binary {
        op: BinOp,
        left: NodeId,
        right: Option<NodeId>,
    },
    Conditional {
        test: Option<NodeId>,
        consequent: Option<NodeId>,
        alternate: Option<NodeId>,
    },
    Filter {
        subject: NodeId,
        expr: Option<NodeId>,
        relative: bool,
    },
    Transform {
        name: Arc<str>,
        subject: NodeId,
        args: Vec<Option<NodeId>>,
    },
    Array(Vec<NodeId>),
    Object(Vec<(Arc<str>, Option<NodeId>)>),
}

/// An arena node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub parent: Option<NodeId>,
    /// Byte offset of the token that created the node.
    pub offset: usize,
}

/// A parsed expression: the arena and its root.
#[derive(Debug, Clone)]
pub(crate) struct Ast {
    pub nodes: Vec<Node>,
    pub root: NodeId,
}

impl Ast {
    /// Calls `f` on every present child of a node.
    fn for_each_child(&self, id: NodeId, mut f: impl FnMut(NodeId)) {
        let Some(node) = self.nodes.get(id) else {
            return;
        };
        match &node.kind {
            Kind::Literal(_) => {}
            Kind::Identifier { from, .. } => from.iter().copied().for_each(f),
            Kind::Unary { right } => right.iter().copied().for_each(f),
            Kind::Binary { left, right, .. } => {
                f(*left);
                right.iter().copied().for_each(f);
            }
            Kind::Conditional {
                test,
                consequent,
                alternate,
            } => [*test, *consequent, *alternate]
                .into_iter()
                .flatten()
                .for_each(f),
            Kind::Filter { subject, expr, .. } => {
                f(*subject);
                expr.iter().copied().for_each(f);
            }
            Kind::Transform { subject, args, .. } => {
                f(*subject);
                args.iter().flatten().copied().for_each(f);
            }
            Kind::Array(items) => items.iter().copied().for_each(f),
            Kind::Object(entries) => entries.iter().filter_map(|(_, v)| *v).for_each(f),
        }
    }

    /// A left operand that continues a chain of the same `&&`/`||` operator; the compiler
    /// flattens such chains, so they do not add nesting depth.
    pub(crate) fn chain_left(&self, id: NodeId) -> Option<NodeId> {
        let Kind::Binary { op, left, .. } = &self.nodes.get(id)?.kind else {
            return None;
        };
        if !matches!(op, BinOp::And | BinOp::Or) {
            return None;
        }
        match &self.nodes.get(*left)?.kind {
            Kind::Binary { op: inner, .. } if inner == op => Some(*left),
            _ => None,
        }
    }

    /// The nesting depth of the tree, computed without recursion; `&&`/`||` chains count once.
    ///
    /// The depth is one more than the heaviest path from the root down to a node, where every
    /// step weighs one except the step from a chain link to the rest of its chain. Walking
    /// down with the weight so far visits each node once and needs no per-node table.
    pub(crate) fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack: Vec<(NodeId, usize)> = Vec::with_capacity(16);
        stack.push((self.root, 1));
        while let Some((id, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            let chain = self.chain_left(id);
            self.for_each_child(id, |child| {
                let step = usize::from(Some(child) != chain);
                stack.push((child, depth + step));
            });
        }
        deepest
    }
}
