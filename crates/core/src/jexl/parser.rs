//! Parser: a port of mozjexl 1.1.6's state-machine parser (`parser/Parser.js`, `states.js`,
//! `handlers.js`), without recursion.
//!
//! mozjexl builds the tree by moving a cursor: operands are placed at the cursor, binary
//! operators climb `_parent` links by precedence, and every bracketed part (`(…)`, `[…]`,
//! arguments, array elements, object values, both ternary branches) is handed to a fresh
//! sub-parser until a token in its stop map ends it. Here each sub-parser is a [`Frame`] on
//! an explicit stack, so nesting depth is checked before it can grow, and the port keeps
//! mozjexl's edge cases: `(a` is `a`, `[(), 1]` is `[1]`, `a ?: b` is an "elvis", a `.x`
//! after `!` or at an operand position is relative, a transform cannot be followed by `?`.

use std::sync::{Arc, LazyLock};

use super::ParseError;
use super::ast::{Ast, BinOp, Kind, Node, NodeId};
use super::lexer::{Lit, TokKind, TokValue, Token, unquote};

/// Parser states (`states.js`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ExpectOperand,
    ExpectBinOp,
    ExpectTransform,
    ExpectObjKey,
    ExpectKeyValSep,
    PostTransform,
    PostTransformArgs,
    Identifier,
    Traverse,
    Filter,
    SubExpression,
    ArgVal,
    ObjVal,
    ArrayVal,
    TernaryMid,
    TernaryEnd,
}

impl State {
    fn completable(self) -> bool {
        matches!(
            self,
            State::ExpectBinOp
                | State::PostTransform
                | State::PostTransformArgs
                | State::Identifier
                | State::TernaryEnd
        )
    }

    /// States that hand every token to a sub-parser.
    fn is_sub(self) -> bool {
        matches!(
            self,
            State::Filter
                | State::SubExpression
                | State::ArgVal
                | State::ObjVal
                | State::ArrayVal
                | State::TernaryMid
                | State::TernaryEnd
        )
    }

    /// The stop map a sub-parser started in this state gets (`endStates`), `None` when the
    /// sub-parser inherits its parent's stop map (ternary alternate).
    fn end_states(self) -> Option<StopMap> {
        match self {
            State::Filter => Some(StopMap::Filter),
            State::SubExpression => Some(StopMap::SubExpression),
            State::ArgVal => Some(StopMap::ArgVal),
            State::ObjVal => Some(StopMap::ObjVal),
            State::ArrayVal => Some(StopMap::ArrayVal),
            State::TernaryMid => Some(StopMap::TernaryMid),
            _ => None,
        }
    }
}

/// Tokens that end a sub-parser, and the state the parent moves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopMap {
    Empty,
    Filter,
    SubExpression,
    ArgVal,
    ObjVal,
    ArrayVal,
    TernaryMid,
}

impl StopMap {
    fn lookup(self, kind: TokKind) -> Option<State> {
        match (self, kind) {
            (StopMap::Filter, TokKind::CloseBracket) => Some(State::Identifier),
            (StopMap::SubExpression, TokKind::CloseParen) => Some(State::ExpectBinOp),
            (StopMap::ArgVal, TokKind::Comma) => Some(State::ArgVal),
            (StopMap::ArgVal, TokKind::CloseParen) => Some(State::PostTransformArgs),
            (StopMap::ObjVal, TokKind::Comma) => Some(State::ExpectObjKey),
            (StopMap::ObjVal, TokKind::CloseCurl) => Some(State::ExpectBinOp),
            (StopMap::ArrayVal, TokKind::Comma) => Some(State::ArrayVal),
            (StopMap::ArrayVal, TokKind::CloseBracket) => Some(State::ExpectBinOp),
            (StopMap::TernaryMid, TokKind::Colon) => Some(State::TernaryEnd),
            _ => None,
        }
    }
}

/// What a token does in a state: an optional handler and an optional next state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    None,
    Literal,
    Identifier,
    UnaryOp,
    BinaryOp,
    Dot,
    ObjStart,
    ArrayStart,
    ObjKey,
    Transform,
    TernaryStart,
}

fn transition(state: State, kind: TokKind) -> Option<(Handler, Option<State>)> {
    use TokKind as T;
    let entry = match (state, kind) {
        (State::ExpectOperand, T::Literal) => (Handler::Literal, Some(State::ExpectBinOp)),
        (State::ExpectOperand, T::Identifier) => (Handler::Identifier, Some(State::Identifier)),
        (State::ExpectOperand, T::UnaryOp) => (Handler::UnaryOp, None),
        (State::ExpectOperand, T::OpenParen) => (Handler::None, Some(State::SubExpression)),
        (State::ExpectOperand, T::OpenCurl) => (Handler::ObjStart, Some(State::ExpectObjKey)),
        (State::ExpectOperand, T::Dot) => (Handler::Dot, Some(State::Traverse)),
        (State::ExpectOperand, T::OpenBracket) => (Handler::ArrayStart, Some(State::ArrayVal)),

        (State::ExpectBinOp, T::BinaryOp) => (Handler::BinaryOp, Some(State::ExpectOperand)),
        (State::ExpectBinOp, T::Pipe) => (Handler::None, Some(State::ExpectTransform)),
        (State::ExpectBinOp, T::Dot) => (Handler::Dot, Some(State::Traverse)),
        (State::ExpectBinOp, T::Question) => (Handler::TernaryStart, Some(State::TernaryMid)),

        (State::ExpectTransform, T::Identifier) => (Handler::Transform, Some(State::PostTransform)),

        (State::ExpectObjKey, T::Identifier) => (Handler::ObjKey, Some(State::ExpectKeyValSep)),
        (State::ExpectObjKey, T::CloseCurl) => (Handler::None, Some(State::ExpectBinOp)),

        (State::ExpectKeyValSep, T::Colon) => (Handler::None, Some(State::ObjVal)),

        (State::PostTransform, T::OpenParen) => (Handler::None, Some(State::ArgVal)),
        (State::PostTransform | State::PostTransformArgs | State::Identifier, T::BinaryOp) => {
            (Handler::BinaryOp, Some(State::ExpectOperand))
        }
        (State::PostTransform | State::PostTransformArgs | State::Identifier, T::Dot) => {
            (Handler::Dot, Some(State::Traverse))
        }
        (State::PostTransform | State::PostTransformArgs | State::Identifier, T::OpenBracket) => {
            (Handler::None, Some(State::Filter))
        }
        (State::PostTransform | State::PostTransformArgs | State::Identifier, T::Pipe) => {
            (Handler::None, Some(State::ExpectTransform))
        }
        (State::Identifier, T::Question) => (Handler::TernaryStart, Some(State::TernaryMid)),

        (State::Traverse, T::Identifier) => (Handler::Identifier, Some(State::Identifier)),
        _ => return None,
    };
    Some(entry)
}

/// One mozjexl `Parser` instance.
#[derive(Debug, Clone)]
struct Frame {
    state: State,
    tree: Option<NodeId>,
    cursor: Option<NodeId>,
    /// A relative identifier (`.x` at an operand position) occurred directly in this frame.
    relative: bool,
    stop: StopMap,
    parent_stop: bool,
    obj_key: Option<Arc<str>>,
    encapsulate: bool,
    next_relative: bool,
}

impl Frame {
    fn new(stop: StopMap) -> Frame {
        Frame {
            state: State::ExpectOperand,
            tree: None,
            cursor: None,
            relative: false,
            stop,
            parent_stop: false,
            obj_key: None,
            encapsulate: false,
            next_relative: false,
        }
    }
}

/// Limits enforced while parsing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Maximum number of nested sub-parsers (brackets, parentheses, branches).
    pub max_nesting: usize,
}

struct Parser<'s> {
    src: &'s str,
    nodes: Vec<Node>,
    frames: Vec<Frame>,
    limits: Limits,
    /// The first [`MAX_SHARED_NAMES`] distinct identifier names made so far that are not
    /// [`COMMON_NAMES`]: a filter names the same few identifiers again and again, so they
    /// share one allocation.
    names: Vec<Arc<str>>,
}

/// How many distinct names [`Parser::names`] keeps (a linear search stays cheap).
const MAX_SHARED_NAMES: usize = 16;

/// The names Normandy filters use most: the filter context (`normandy`, `env` and their
/// members) and the transforms. Every expression shares one allocation for each, so a
/// manifest of a thousand filters does not allocate `normandy` a thousand times.
const COMMON_NAMES: [&str; 44] = [
    // Roughly by how often filters use them, so the usual ones are found first.
    "normandy",
    "channel",
    "version",
    "versionCompare",
    "locale",
    "userId",
    "recipe",
    "id",
    "stableSample",
    "country",
    "env",
    "preferenceValue",
    "bucketSample",
    "preferenceExists",
    "preferenceIsUserSet",
    "isFirstRun",
    "telemetry",
    "addons",
    "isActive",
    "request_time",
    "date",
    "os",
    "isWindows",
    "isMac",
    "isLinux",
    "windowsVersion",
    "windowsBuildNumber",
    "main",
    "environment",
    "profile",
    "creationDate",
    "experiments",
    "studies",
    "rollouts",
    "distribution",
    "appinfo",
    "randomizationId",
    "arguments",
    "slug",
    "keys",
    "values",
    "length",
    "mapToProperty",
    "regExpMatch",
];

/// [`COMMON_NAMES`], allocated once on first use.
static SHARED_COMMON_NAMES: LazyLock<Vec<Arc<str>>> =
    LazyLock::new(|| COMMON_NAMES.iter().map(|name| Arc::from(*name)).collect());

/// The shared allocation of `text` when it is one of [`COMMON_NAMES`].
fn common_name(text: &str) -> Option<Arc<str>> {
    let first = text.as_bytes().first();
    let idx = COMMON_NAMES.iter().position(|name| {
        name.len() == text.len() && name.as_bytes().first() == first && *name == text
    })?;
    SHARED_COMMON_NAMES.get(idx).cloned()
}

fn error(offset: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        offset,
        message: message.into(),
    }
}

/// Parses tokens into an arena tree. `Ok(None)` is the empty expression.
pub(crate) fn parse(
    src: &str,
    tokens: &[Token],
    limits: Limits,
) -> Result<Option<Ast>, ParseError> {
    let mut parser = Parser {
        src,
        nodes: Vec::with_capacity(tokens.len()),
        frames: {
            let mut frames = Vec::with_capacity(8);
            frames.push(Frame::new(StopMap::Empty));
            frames
        },
        limits,
        names: Vec::new(),
    };
    for token in tokens {
        parser.add_token(token)?;
    }
    let root = parser.complete()?;
    Ok(root.map(|root| Ast {
        nodes: parser.nodes,
        root,
    }))
}

impl Parser<'_> {
    fn describe(&self, token: &Token) -> String {
        let text: String = self
            .src
            .get(token.offset..)
            .unwrap_or("")
            .chars()
            .take(24)
            .collect();
        format!("unexpected token at `{text}`")
    }

    /// The name of an identifier token, shared with earlier identifiers of the same name.
    fn ident_name(&mut self, token: &Token) -> Result<Arc<str>, ParseError> {
        let TokValue::Ident { end } = token.value else {
            return Err(error(
                token.offset,
                "internal parser error: identifier without name",
            ));
        };
        let text = self.src.get(token.offset..end).unwrap_or("");
        // Length and first byte tell most names apart without a call to `memcmp`.
        let first = text.as_bytes().first();
        let known = self.names.iter().find(|name| {
            name.len() == text.len() && name.as_bytes().first() == first && ***name == *text
        });
        if let Some(name) = known {
            return Ok(name.clone());
        }
        if let Some(name) = common_name(text) {
            return Ok(name);
        }
        let name: Arc<str> = Arc::from(text);
        if self.names.len() < MAX_SHARED_NAMES {
            self.names.push(name.clone());
        }
        Ok(name)
    }

    fn add_node(&mut self, kind: Kind, offset: usize) -> NodeId {
        self.nodes.push(Node {
            kind,
            parent: None,
            offset,
        });
        self.nodes.len() - 1
    }

    fn frame(&mut self) -> Result<&mut Frame, ParseError> {
        self.frames
            .last_mut()
            .ok_or_else(|| error(self.src.len(), "internal parser error: no frame"))
    }

    fn add_token(&mut self, token: &Token) -> Result<(), ParseError> {
        // Descend into (or open) the sub-parser that receives this token.
        loop {
            let state = self.frame()?.state;
            if !state.is_sub() {
                break;
            }
            if self.frames.len() >= self.limits.max_nesting {
                return Err(error(
                    token.offset,
                    format!(
                        "expression is nested too deeply (more than {} levels)",
                        self.limits.max_nesting
                    ),
                ));
            }
            let frame = self.frame()?;
            let stop = match state.end_states() {
                Some(stop) => stop,
                None => {
                    frame.parent_stop = true;
                    frame.stop
                }
            };
            self.frames.push(Frame::new(stop));
        }
        let state = self.frame()?.state;
        if let Some((handler, next)) = transition(state, token.kind) {
            self.handle(handler, token)?;
            if let Some(next) = next {
                self.frame()?.state = next;
            }
            return Ok(());
        }
        let stop = self.frame()?.stop;
        match stop.lookup(token.kind) {
            Some(stop_state) => self.stop_sub(stop_state, token.offset),
            None => Err(error(token.offset, self.describe(token))),
        }
    }

    /// The innermost frame met a token of its stop map: close it and let the parents react
    /// (a ternary alternate passes the stop on to its own parent).
    fn stop_sub(&mut self, stop_state: State, offset: usize) -> Result<(), ParseError> {
        loop {
            self.end_sub(offset, true)?;
            let frame = self.frame()?;
            if !frame.parent_stop {
                frame.state = stop_state;
                return Ok(());
            }
        }
    }

    /// Completes the innermost frame and hands its tree to its parent's sub-handler.
    ///
    /// `check` is mozjexl's completeness test of the frame. At the end of input every frame
    /// is tested *before* any is closed (an unclosed `(` at the start is fine because nothing
    /// had been placed at its cursor yet), so the caller tests them up front instead.
    fn end_sub(&mut self, offset: usize, check: bool) -> Result<(), ParseError> {
        if self.frames.len() < 2 {
            return Err(error(
                offset,
                "internal parser error: no sub-expression to end",
            ));
        }
        let child = self
            .frames
            .pop()
            .ok_or_else(|| error(offset, "internal parser error: no frame"))?;
        if check && child.cursor.is_some() && !child.state.completable() {
            return Err(error(offset, "unexpected end of sub-expression"));
        }
        let result = if child.cursor.is_some() {
            child.tree
        } else {
            None
        };
        self.sub_handler(result, child.relative, offset)
    }

    /// `Parser.complete()` at the end of input.
    fn complete(&mut self) -> Result<Option<NodeId>, ParseError> {
        let end = self.src.len();
        if self
            .frames
            .iter()
            .any(|f| f.cursor.is_some() && !f.state.completable())
        {
            return Err(error(end, "unexpected end of expression"));
        }
        while self.frames.len() > 1 {
            self.end_sub(end, false)?;
        }
        let frame = self.frame()?;
        Ok(if frame.cursor.is_some() {
            frame.tree
        } else {
            None
        })
    }

    fn set_right(&mut self, target: NodeId, node: NodeId) {
        if let Some(t) = self.nodes.get_mut(target) {
            match &mut t.kind {
                Kind::Binary { right, .. } | Kind::Unary { right } => *right = Some(node),
                // mozjexl would add a meaningless `right` property; the state machine never
                // places an operand after anything else.
                _ => {}
            }
        }
    }

    fn set_parent(&mut self, node: NodeId, parent: Option<NodeId>) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.parent = parent;
        }
    }

    fn parent_of(&self, node: NodeId) -> Option<NodeId> {
        self.nodes.get(node).and_then(|n| n.parent)
    }

    /// `_placeAtCursor`; `None` is a JavaScript `null` subtree.
    fn place_at_cursor(&mut self, node: Option<NodeId>, offset: usize) -> Result<(), ParseError> {
        let cursor = self.frame()?.cursor;
        match (cursor, node) {
            (None, _) => self.frame()?.tree = node,
            (Some(c), Some(n)) => {
                self.set_right(c, n);
                self.set_parent(n, Some(c));
            }
            (Some(_), None) => {
                return Err(error(offset, "empty sub-expression used as an operand"));
            }
        }
        self.frame()?.cursor = node;
        Ok(())
    }

    /// `_placeBeforeCursor`.
    fn place_before_cursor(&mut self, node: NodeId, offset: usize) -> Result<(), ParseError> {
        let cursor = self
            .frame()?
            .cursor
            .ok_or_else(|| error(offset, "empty sub-expression used as an operand"))?;
        let parent = self.parent_of(cursor);
        self.frame()?.cursor = parent;
        self.place_at_cursor(Some(node), offset)
    }

    fn operator_precedence(&self, node: NodeId) -> Option<u8> {
        match self.nodes.get(node).map(|n| &n.kind) {
            Some(Kind::Binary { op, .. }) => Some(op.precedence()),
            Some(Kind::Unary { .. }) => Some(u8::MAX),
            _ => None,
        }
    }

    fn handle(&mut self, handler: Handler, token: &Token) -> Result<(), ParseError> {
        let offset = token.offset;
        match handler {
            Handler::None => {}
            Handler::Literal => {
                let lit = match token.value {
                    TokValue::Num(n) => Lit::Num(n),
                    TokValue::Bool(b) => Lit::Bool(b),
                    TokValue::Str { end } => {
                        Lit::Str(unquote(self.src.get(offset..end).unwrap_or("")))
                    }
                    _ => {
                        return Err(error(
                            offset,
                            "internal parser error: literal without value",
                        ));
                    }
                };
                let id = self.add_node(Kind::Literal(lit), offset);
                self.place_at_cursor(Some(id), offset)?;
            }
            Handler::Identifier => {
                let name = self.ident_name(token)?;
                let frame = self.frame()?;
                let (encapsulate, relative, cursor) =
                    (frame.encapsulate, frame.next_relative, frame.cursor);
                if encapsulate {
                    let id = self.add_node(
                        Kind::Identifier {
                            name,
                            from: cursor,
                            relative: false,
                        },
                        offset,
                    );
                    self.place_before_cursor(id, offset)?;
                    self.frame()?.encapsulate = false;
                } else {
                    // `_nextIdentRelative` is never reset in mozjexl: once a frame has seen a
                    // relative `.x`, later plain identifiers in it are relative too.
                    let id = self.add_node(
                        Kind::Identifier {
                            name,
                            from: None,
                            relative,
                        },
                        offset,
                    );
                    self.place_at_cursor(Some(id), offset)?;
                }
            }
            Handler::UnaryOp => {
                let id = self.add_node(Kind::Unary { right: None }, offset);
                self.place_at_cursor(Some(id), offset)?;
            }
            Handler::BinaryOp => {
                let TokValue::Op(op) = token.value else {
                    return Err(error(
                        offset,
                        "internal parser error: operator without value",
                    ));
                };
                self.binary_op(op, offset)?;
            }
            Handler::Dot => {
                let cursor = self.frame()?.cursor;
                let encapsulate = match cursor.and_then(|c| self.nodes.get(c)).map(|n| &n.kind) {
                    None => false,
                    Some(Kind::Binary { right, .. }) => right.is_some(),
                    Some(Kind::Unary { .. }) => false,
                    Some(_) => true,
                };
                let frame = self.frame()?;
                frame.encapsulate = encapsulate;
                frame.next_relative = cursor.is_none() || !encapsulate;
                if frame.next_relative {
                    frame.relative = true;
                }
            }
            Handler::ObjStart => {
                let id = self.add_node(Kind::Object(Vec::new()), offset);
                self.place_at_cursor(Some(id), offset)?;
            }
            Handler::ArrayStart => {
                let id = self.add_node(Kind::Array(Vec::new()), offset);
                self.place_at_cursor(Some(id), offset)?;
            }
            Handler::ObjKey => {
                let name = self.ident_name(token)?;
                self.frame()?.obj_key = Some(name);
            }
            Handler::Transform => {
                let name = self.ident_name(token)?;
                let subject = self
                    .frame()?
                    .cursor
                    .ok_or_else(|| error(offset, "a transform needs a subject"))?;
                let id = self.add_node(
                    Kind::Transform {
                        name,
                        subject,
                        args: Vec::new(),
                    },
                    offset,
                );
                self.place_before_cursor(id, offset)?;
            }
            Handler::TernaryStart => {
                let test = self.frame()?.tree;
                let id = self.add_node(
                    Kind::Conditional {
                        test,
                        consequent: None,
                        alternate: None,
                    },
                    offset,
                );
                let frame = self.frame()?;
                frame.tree = Some(id);
                frame.cursor = Some(id);
            }
        }
        Ok(())
    }

    /// mozjexl's `binaryOp` handler: climb while the parent operator binds at least as tightly.
    fn binary_op(&mut self, op: BinOp, offset: usize) -> Result<(), ParseError> {
        let mut cursor = self
            .frame()?
            .cursor
            .ok_or_else(|| error(offset, "empty sub-expression used as an operand"))?;
        let precedence = op.precedence();
        let mut parent = self.parent_of(cursor);
        while let Some(p) = parent {
            match self.operator_precedence(p) {
                Some(pp) if pp >= precedence => {
                    cursor = p;
                    parent = self.parent_of(p);
                }
                _ => break,
            }
        }
        let id = self.add_node(
            Kind::Binary {
                op,
                left: cursor,
                right: None,
            },
            offset,
        );
        self.set_parent(cursor, Some(id));
        self.frame()?.cursor = parent;
        self.place_at_cursor(Some(id), offset)
    }

    /// The `subHandler` of the state the current frame is in.
    fn sub_handler(
        &mut self,
        result: Option<NodeId>,
        sub_relative: bool,
        offset: usize,
    ) -> Result<(), ParseError> {
        let frame = self.frame()?;
        let (state, cursor) = (frame.state, frame.cursor);
        let missing = || error(offset, "internal parser error: no node at cursor");
        match state {
            State::Filter => {
                let subject = cursor.ok_or_else(missing)?;
                let id = self.add_node(
                    Kind::Filter {
                        subject,
                        expr: result,
                        relative: sub_relative,
                    },
                    offset,
                );
                self.place_before_cursor(id, offset)
            }
            State::SubExpression => self.place_at_cursor(result, offset),
            State::ArgVal => {
                if let Some(Kind::Transform { args, .. }) = self
                    .nodes
                    .get_mut(cursor.ok_or_else(missing)?)
                    .map(|n| &mut n.kind)
                {
                    args.push(result);
                }
                Ok(())
            }
            State::ObjVal => {
                let key = self
                    .frame()?
                    .obj_key
                    .clone()
                    .unwrap_or_else(|| Arc::from(""));
                if let Some(Kind::Object(entries)) = self
                    .nodes
                    .get_mut(cursor.ok_or_else(missing)?)
                    .map(|n| &mut n.kind)
                {
                    // A JavaScript property assignment: a repeated key keeps its position.
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = result,
                        None => entries.push((key, result)),
                    }
                }
                Ok(())
            }
            State::ArrayVal => {
                if let (Some(item), Some(Kind::Array(items))) = (
                    result,
                    self.nodes
                        .get_mut(cursor.ok_or_else(missing)?)
                        .map(|n| &mut n.kind),
                ) {
                    items.push(item);
                }
                Ok(())
            }
            State::TernaryMid | State::TernaryEnd => {
                if let Some(Kind::Conditional {
                    consequent,
                    alternate,
                    ..
                }) = self
                    .nodes
                    .get_mut(cursor.ok_or_else(missing)?)
                    .map(|n| &mut n.kind)
                {
                    if state == State::TernaryMid {
                        *consequent = result;
                    } else {
                        *alternate = result;
                    }
                }
                Ok(())
            }
            _ => Err(error(
                offset,
                "internal parser error: not in a sub-expression",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jexl::lexer::tokenize;

    fn names(src: &str) -> Vec<Arc<str>> {
        let tokens = tokenize(src).expect("tokens");
        let ast = parse(src, &tokens, Limits { max_nesting: 128 })
            .expect("parses")
            .expect("not empty");
        ast.nodes
            .iter()
            .filter_map(|node| match &node.kind {
                Kind::Identifier { name, .. } | Kind::Transform { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn repeated_names_share_one_allocation() {
        let found = names("foo.bar == 1 && foo.bar|baz && foo.qux");
        let texts: Vec<&str> = found.iter().map(|n| &**n).collect();
        assert_eq!(texts, ["foo", "bar", "foo", "bar", "baz", "foo", "qux"]);
        assert!(Arc::ptr_eq(&found[0], &found[2]) && Arc::ptr_eq(&found[0], &found[5]));
        assert!(Arc::ptr_eq(&found[1], &found[3]));
    }

    #[test]
    fn common_names_are_shared_between_expressions() {
        let first = names("normandy.channel == 'a' && x|versionCompare('1') > 0");
        let second = names("normandy.channel");
        assert!(Arc::ptr_eq(&first[0], &second[0]));
        assert!(Arc::ptr_eq(&first[1], &second[1]));
        for name in &first {
            assert_eq!(COMMON_NAMES.contains(&&**name), common_name(name).is_some());
        }
    }

    #[test]
    fn common_names_include_every_transform() {
        for name in crate::jexl::TRANSFORM_NAMES {
            assert_eq!(common_name(name).as_deref(), Some(name));
        }
    }
}
