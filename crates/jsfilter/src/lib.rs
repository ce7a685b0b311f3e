//! Sandboxed JavaScript for Experiments Manifest v1 `jsfilter` functions.
//!
//! A `jsfilter` is JavaScript source that must define a global function `filter(context)`; its
//! truthy result makes an experiment applicable. [`QuickJsFilter`] runs that source in QuickJS
//! (quickjs-ng through `rquickjs`) and implements [`flightdeck_core::evaluate::JsFilter`].
//!
//! Isolation: every [`JsFilter::run`] call builds a fresh runtime and context and drops them
//! afterwards, so one experiment's filter cannot see or change another's globals, and nothing
//! a filter schedules (promises, jobs) outlives `filter()`; the manifest document allows exactly
//! that ("the sandbox may be destroyed immediately after `filter()` returns").
//!
//! Sandbox surface: only the ECMAScript built-ins (Object, Array, String, Number, Math, Date,
//! JSON, RegExp, Map/Set, typed arrays, Promise, Proxy, WeakRef, `eval`). Nothing from the host
//! is exposed: no console, module loader, `require`, `process`, `fetch`, `performance` or timers.
//!
//! Resource limits ([`JsFilterLimits`]): wall-clock time through QuickJS's interrupt handler,
//! heap size through the runtime's memory limit, native stack through its stack limit. Hitting
//! any of them yields [`JsFilterOutcome::EvalFailed`] rather than a panic or a hang.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flightdeck_core::evaluate::{JsFilter, JsFilterOutcome};
use rquickjs::context::{EvalOptions, intrinsic};
use rquickjs::{Coerced, Context, Ctx, FromJs, Function, Runtime, Value};

/// Reason given when a run exceeds [`JsFilterLimits::time`].
pub const TIME_LIMIT_EXCEEDED: &str = "time limit exceeded";
/// Reason given when a run exceeds [`JsFilterLimits::memory_bytes`].
pub const MEMORY_LIMIT_EXCEEDED: &str = "memory limit exceeded";
/// Reason given when a run exceeds [`JsFilterLimits::stack_bytes`].
pub const STACK_LIMIT_EXCEEDED: &str = "stack limit exceeded";
/// Reason given when the source evaluates but defines no function `filter`.
pub const NO_FILTER_FUNCTION: &str = "the jsfilter source does not define a function `filter`";

/// The ECMAScript built-ins a filter may use. `Performance` (a host timer API) and
/// `DOMException` (a web API) are left out on purpose; `Eval` is required to run a script at all.
type EcmaScriptBuiltins = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
    intrinsic::WeakRef,
);

/// Resource limits for one `jsfilter` run (source evaluation plus the `filter()` call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsFilterLimits {
    /// Wall-clock budget for the whole run. QuickJS checks it between bytecode operations (every
    /// few thousand), so a single long built-in call can overrun it; the memory limit bounds those.
    pub time: Duration,
    /// Heap limit of the runtime in bytes, including the built-ins (about 200 KiB) and the
    /// context object. `0` means unlimited, as in QuickJS.
    pub memory_bytes: usize,
    /// Native stack the interpreter may use in bytes; bounds recursion. `0` means unlimited.
    /// The calling thread must have at least this much stack to spare.
    pub stack_bytes: usize,
}

impl Default for JsFilterLimits {
    /// 100 ms, 16 MiB of heap, 512 KiB of stack: far more than a real filter needs (a
    /// telemetry-environment check runs in well under a millisecond), small enough that a
    /// runaway filter cannot stall a refresh or exhaust the host.
    fn default() -> Self {
        Self {
            time: Duration::from_millis(100),
            memory_bytes: 16 * 1024 * 1024,
            stack_bytes: 512 * 1024,
        }
    }
}

/// Runs `jsfilter` functions in a fresh QuickJS sandbox per call.
///
/// The value holds only its limits, so it is cheap, `Send` and `Sync`; each [`JsFilter::run`]
/// builds and destroys its own runtime on the calling thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuickJsFilter {
    limits: JsFilterLimits,
}

impl QuickJsFilter {
    /// A runner with the given limits.
    pub fn new(limits: JsFilterLimits) -> Self {
        Self { limits }
    }

    /// A runner with [`JsFilterLimits::default`].
    pub fn with_default_limits() -> Self {
        Self::default()
    }

    /// The limits every run gets.
    pub fn limits(&self) -> JsFilterLimits {
        self.limits
    }
}

impl JsFilter for QuickJsFilter {
    fn run(&self, source: &str, context: &serde_json::Value) -> JsFilterOutcome {
        run_sandboxed(self.limits, source, context)
    }
}

/// One complete run: build the sandbox, evaluate, classify, tear the sandbox down.
fn run_sandboxed(
    limits: JsFilterLimits,
    source: &str,
    context: &serde_json::Value,
) -> JsFilterOutcome {
    // The context crosses into JavaScript as JSON text parsed by the engine: that yields plain
    // data objects exactly as `JSON.parse` would, with no host objects behind them.
    let context_json = match serde_json::to_string(context) {
        Ok(text) => text,
        Err(error) => {
            return JsFilterOutcome::EvalFailed(format!("the context is not valid JSON: {error}"));
        }
    };

    let runtime = match Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            return JsFilterOutcome::EvalFailed(format!(
                "could not create a JavaScript runtime: {error}"
            ));
        }
    };
    runtime.set_memory_limit(limits.memory_bytes);
    runtime.set_max_stack_size(limits.stack_bytes);

    // The handler records that it fired, so a timeout is told apart from anything the script
    // itself throws, whatever the script does with the resulting exception afterwards.
    let timed_out = Arc::new(AtomicBool::new(false));
    if let Some(deadline) = Instant::now().checked_add(limits.time) {
        let flag = Arc::clone(&timed_out);
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let expired = Instant::now() >= deadline;
            if expired {
                flag.store(true, Ordering::Relaxed);
            }
            expired
        })));
    }

    let context_result = Context::custom::<EcmaScriptBuiltins>(&runtime);
    let outcome = match context_result {
        Ok(js_context) => js_context.with(|ctx| evaluate(&ctx, source, &context_json)),
        // With a tiny memory limit even the built-ins do not fit.
        Err(rquickjs::Error::Allocation) => {
            JsFilterOutcome::EvalFailed(MEMORY_LIMIT_EXCEEDED.to_owned())
        }
        Err(error) => {
            JsFilterOutcome::EvalFailed(format!("could not create a JavaScript context: {error}"))
        }
    };

    if timed_out.load(Ordering::Relaxed) {
        // Whatever happened after the interrupt (the script was unwound mid-way) is not a
        // verdict of the filter.
        return JsFilterOutcome::EvalFailed(TIME_LIMIT_EXCEEDED.to_owned());
    }
    outcome
}

/// Evaluates the source, finds `filter`, calls it with the parsed context.
fn evaluate(ctx: &Ctx<'_>, source: &str, context_json: &str) -> JsFilterOutcome {
    let script_options = || {
        let mut options = EvalOptions::default();
        // Experiments.jsm evaluated filters as sloppy-mode scripts in a sandbox.
        options.strict = false;
        options.filename = Some("jsfilter".to_owned());
        options
    };

    if let Err(error) = ctx.eval_with_options::<(), _>(source, script_options()) {
        return eval_failed(ctx, error);
    }

    // Looked up by name in a second script rather than on the global object, so that
    // `let`/`const`/`class` declarations of `filter` are found too.
    let lookup = "typeof filter === 'function' ? filter : undefined";
    let filter = match ctx.eval_with_options::<Value<'_>, _>(lookup, script_options()) {
        Ok(value) => value,
        Err(error) => return eval_failed(ctx, error),
    };
    let Some(filter) = filter.into_function() else {
        return JsFilterOutcome::EvalFailed(NO_FILTER_FUNCTION.to_owned());
    };

    let context_value = match ctx.json_parse(context_json) {
        Ok(value) => value,
        Err(error) => return eval_failed(ctx, error),
    };

    call_filter(ctx, &filter, context_value)
}

/// Calls `filter(context)` and turns its result or exception into an outcome.
fn call_filter<'js>(
    ctx: &Ctx<'js>,
    filter: &Function<'js>,
    context_value: Value<'js>,
) -> JsFilterOutcome {
    let returned = match filter.call::<_, Value<'js>>((context_value,)) {
        Ok(value) => value,
        Err(error) => {
            return match caught(ctx, error) {
                Caught::Limit(reason) => JsFilterOutcome::EvalFailed(reason.to_owned()),
                Caught::Thrown { message, .. } => JsFilterOutcome::Threw(message),
                Caught::Engine(message) => JsFilterOutcome::EvalFailed(message),
            };
        }
    };
    // ToBoolean never runs script code, so this cannot throw in practice; be total anyway.
    match Coerced::<bool>::from_js(ctx, returned) {
        Ok(Coerced(true)) => JsFilterOutcome::Truthy,
        Ok(Coerced(false)) => JsFilterOutcome::Falsy,
        Err(error) => eval_failed(ctx, error),
    }
}

/// The outcome for an error raised while evaluating the source (not inside `filter`).
fn eval_failed(ctx: &Ctx<'_>, error: rquickjs::Error) -> JsFilterOutcome {
    match caught(ctx, error) {
        Caught::Limit(reason) => JsFilterOutcome::EvalFailed(reason.to_owned()),
        Caught::Thrown { display, .. } => JsFilterOutcome::EvalFailed(display),
        Caught::Engine(message) => JsFilterOutcome::EvalFailed(message),
    }
}

/// What an `rquickjs` error turned out to be.
enum Caught {
    /// A resource limit (memory or stack); time is detected by the interrupt flag instead.
    Limit(&'static str),
    /// A value thrown by script code (or a built-in it called).
    Thrown {
        /// The Error's `message`, or `String(value)` for a thrown non-Error.
        message: String,
        /// `Name: message` for Errors, `String(value)` otherwise; used in eval-failure reasons.
        display: String,
    },
    /// An engine-side failure that carries no JavaScript value.
    Engine(String),
}

/// Classifies an error, taking the pending JavaScript exception out of the context if any.
fn caught(ctx: &Ctx<'_>, error: rquickjs::Error) -> Caught {
    match error {
        rquickjs::Error::Exception => classify_thrown(ctx, ctx.catch()),
        rquickjs::Error::Allocation => Caught::Limit(MEMORY_LIMIT_EXCEEDED),
        other => Caught::Engine(format!("JavaScript engine error: {other}")),
    }
}

/// Turns a thrown value into a message, recognising the engine's own resource-limit errors.
fn classify_thrown<'js>(ctx: &Ctx<'js>, thrown: Value<'js>) -> Caught {
    if let Some(exception) = thrown.as_exception() {
        let message = exception.message().unwrap_or_default();
        let name = exception
            .get::<_, Option<Coerced<String>>>("name")
            .ok()
            .flatten()
            .map(|Coerced(name)| name)
            .unwrap_or_else(|| "Error".to_owned());
        // QuickJS raises these two itself when the memory or stack limit is hit. A script could
        // forge them, but then it only turns its own `Threw` into an `EvalFailed`.
        match (name.as_str(), message.as_str()) {
            ("InternalError", "out of memory") => return Caught::Limit(MEMORY_LIMIT_EXCEEDED),
            ("RangeError", "Maximum call stack size exceeded") => {
                return Caught::Limit(STACK_LIMIT_EXCEEDED);
            }
            _ => {}
        }
        let display = if message.is_empty() {
            name
        } else {
            format!("{name}: {message}")
        };
        return Caught::Thrown { message, display };
    }

    // QuickJS throws `null` when it cannot even allocate the "out of memory" error, which is
    // what happens when a script runs out of memory with many small objects. A script throwing
    // `null` on purpose is indistinguishable from that; it gave no reason either (the original
    // Experiments.jsm read `e.message`, which fails on `null`), so it is reported the same way.
    if thrown.is_null() {
        return Caught::Limit(MEMORY_LIMIT_EXCEEDED);
    }

    // `String(value)` may run script code (a `toString` method) and may itself throw, e.g. for
    // a Symbol; the time and memory limits still apply to that code.
    match Coerced::<String>::from_js(ctx, thrown) {
        Ok(Coerced(text)) => Caught::Thrown {
            message: text.clone(),
            display: text,
        },
        Err(rquickjs::Error::Allocation) => Caught::Limit(MEMORY_LIMIT_EXCEEDED),
        Err(_) => {
            // Drop the secondary exception; the first one is what the filter threw.
            let _secondary = ctx.catch();
            let text = "a value that cannot be converted to a string".to_owned();
            Caught::Thrown {
                message: text.clone(),
                display: format!("uncaught exception: {text}"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
