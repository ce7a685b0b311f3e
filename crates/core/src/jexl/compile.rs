//! Turns the parse tree into the evaluation tree: identifiers get inline caches, constant
//! subtrees are folded, `&&`/`||` chains are flattened, transforms are resolved to an enum
//! and literal regular expressions are compiled once.

use std::sync::Arc;

use indexmap::IndexMap;

use crate::value::Value;

use super::ast::{Ast, BinOp, Kind, NodeId};
use super::eval::{self, Name, Node};
use super::lexer::Lit;
use super::transforms::{self, Transform};

/// Compiles a parsed tree. Recursion depth is the tree depth, which the parser has bounded.
pub(crate) fn compile(ast: &Ast) -> Node {
    compile_node(ast, ast.root)
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
            let name = Name::new(name.clone());
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
            let name = Name::new(name.clone());
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
