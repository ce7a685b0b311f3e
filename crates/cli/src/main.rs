//! The `flightdeck` command.
//!
//! A thin shell over the pure core: it reads files, the clock and standard input, and hands
//! text and values to `flightdeck-core`. Subcommands:
//! - `validate PATH…`: check documents of every input format, print `file:line:col: …` problems.
//! - `expr`: evaluate filter expressions (one from the command line, or JSON Lines from stdin).
//! - `eval`: decide, for one client, which recipes, experiments, flights and flags apply.
//! - `client …`: the reference client over a profile directory (run, status, prefs, set-pref,
//!   events).
//! - `keys generate`, `sign`, `verify-manifest`: signing keys and signed manifests.
//! - `serve`: the control tower; `admin create-user | create-token`: its bootstrap.

mod client;
mod expr;
mod inputs;
mod keys;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use flightdeck_core::context::ClientContext;

/// Flightdeck: deploy features to subsets of an application's users.
#[derive(Debug, Parser)]
#[command(name = "flightdeck", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control tower: admin API, signed manifests, push, telemetry, OFREP.
    ///
    /// On first start it makes a signing key and an `admin` user, and prints that user's API
    /// token once.
    Serve(serve::ServeArgs),
    /// Prepare a server's database: users and API tokens.
    Admin {
        #[command(subcommand)]
        command: serve::AdminCommand,
    },
    /// Validate documents (Normandy recipes, Manifest v1, Test Pilot flights, CloudBees YAML).
    ///
    /// Exits 0 when every document is valid (warnings allowed), 1 otherwise, printing one
    /// `file:line:col: severity: field: message` line per problem.
    Validate {
        /// Files or directories. A directory with `experiments/` or `target_groups/` is read
        /// as a CloudBees configuration tree; other directories are searched for documents.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Evaluate filter expressions against a client context document.
    ///
    /// With `--jsonl`, reads lines `{"expr": "...", "context": {...}}` from standard input and
    /// writes one line each: `{"value": V}`, `{"undefined": true}` or `{"error": "..."}`.
    Expr {
        /// Read JSON Lines from standard input instead of taking one expression.
        #[arg(long, conflicts_with_all = ["expression", "context"])]
        jsonl: bool,
        /// The client context document to evaluate against.
        #[arg(long)]
        context: Option<PathBuf>,
        /// The expression.
        #[arg(required_unless_present = "jsonl")]
        expression: Option<String>,
    },
    /// Decide which recipes, experiments, flights and flags apply to one client.
    Eval {
        /// The client context document (it may carry `now` and `randomValues`).
        #[arg(long)]
        context: PathBuf,
        /// Print one JSON object per item (JSON Lines) instead of a table.
        #[arg(long)]
        json: bool,
        /// Files or directories, as for `validate`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// The reference client: apply a manifest to a profile directory and inspect it.
    Client {
        #[command(subcommand)]
        command: client::ClientCommand,
    },
    /// Manage manifest signing keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Write a signed Flightdeck manifest from recipes and experiments.
    ///
    /// Every recipe is signed on its own and the whole manifest is signed, with one P-384 key
    /// (see docs/manifest-format.md).
    Sign(keys::SignArgs),
    /// Check a manifest's signatures and serial as a client does.
    ///
    /// Exits 0 when the manifest and every recipe signature verify, 1 otherwise.
    VerifyManifest(keys::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Admin { command } => serve::admin(command),
        Command::Validate { paths } => inputs::validate(&paths),
        Command::Expr { jsonl: true, .. } => expr::run_jsonl(),
        Command::Expr {
            context,
            expression,
            ..
        } => expr::run_one(
            context.as_deref(),
            expression.as_deref().unwrap_or_default(),
        ),
        Command::Eval {
            context,
            json,
            paths,
        } => inputs::eval(&context, json, &paths),
        Command::Client { command } => client::run(command),
        Command::Keys { command } => keys::run_keys(&command),
        Command::Sign(args) => keys::sign(&args),
        Command::VerifyManifest(args) => keys::verify_manifest(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("flightdeck: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Reads a client context document and the evaluation time it gives (see [`evaluation_time`]).
/// A bad document, including a `now` that is not a time, is an error naming file, line and
/// column.
fn read_context(path: &Path) -> anyhow::Result<(ClientContext, jiff::Timestamp)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let context = ClientContext::from_json(&text)
        .map_err(|err| anyhow::format_err!("{}:{err}", path.display()))?;
    let now = evaluation_time(&context);
    Ok((context, now))
}

/// The evaluation time: the context's `now`, or the current time when it has none. (An
/// invalid `now` never gets here: the core refuses the document.)
fn evaluation_time(context: &ClientContext) -> jiff::Timestamp {
    context.now().unwrap_or_else(jiff::Timestamp::now)
}
