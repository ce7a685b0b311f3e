//! `flightdeck serve` and `flightdeck admin …`: the control tower and its bootstrap commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use flightdeck_server::admin::bootstrap;
use flightdeck_server::config::{CONFIG_FILE_VAR, ConfigLayer, LogFormat};
use flightdeck_server::{ControlTower, ServerConfig, ops};
use flightdeck_store::{Role, Store};

/// Where and how the server runs. Flags win over `FLIGHTDECK_*` variables, which win over
/// the configuration file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The directory for the server's files (the SQLite database by default).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The address to listen on (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// A PostgreSQL URL (`postgres://…`) instead of SQLite in the data directory.
    #[arg(long)]
    database_url: Option<String>,
    /// A TOML configuration file (also `FLIGHTDECK_CONFIG`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log lines as `text` or `json`.
    #[arg(long)]
    log_format: Option<LogFormat>,
}

/// Commands that prepare a server's database from the command line.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user.
    CreateUser {
        /// The username.
        username: String,
        /// A role: viewer, editor, approver or admin (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Create an API token for a user and print it (it is shown only this once).
    CreateToken {
        /// The user.
        username: String,
        /// A name for the token, to tell tokens apart.
        #[arg(long, default_value = "command line")]
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// Which database an admin command works on: the same flags and variables as `serve`.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// The server's data directory (its SQLite database).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL URL instead.
    #[arg(long)]
    database_url: Option<String>,
    /// A TOML configuration file (also `FLIGHTDECK_CONFIG`).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Resolves the configuration from the file, the environment and the flags.
fn load_config(file: Option<PathBuf>, flags: ConfigLayer) -> anyhow::Result<ServerConfig> {
    let file = file.or_else(|| std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from));
    Ok(ServerConfig::load(
        file.as_deref(),
        std::env::vars(),
        flags,
    )?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `flightdeck serve`.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let flags = ConfigLayer {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
        log_format: args.log_format,
        ..ConfigLayer::default()
    };
    let config = load_config(args.config, flags)?;
    ops::init_tracing(config.log_format)?;
    runtime()?.block_on(async move {
        let metrics = ops::install_metrics()?;
        ops::spawn_metrics_upkeep(metrics.clone(), Duration::from_secs(5));
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        let tower = ControlTower::open(config.clone(), Arc::new(jiff::Timestamp::now)).await?;
        let router = tower.router(Some(metrics));
        print_welcome(&tower, &config, address);
        tower.run(listener, router, ops::shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// What an operator needs after starting: where the server is, and how to log in.
fn print_welcome(tower: &ControlTower, config: &ServerConfig, address: std::net::SocketAddr) {
    let base = format!("http://{address}");
    println!("flightdeck: listening on {base}");
    match &config.database_url {
        Some(_) => println!("flightdeck: database: {}", tower.store().backend_name()),
        None => println!("flightdeck: data directory: {}", config.data_dir.display()),
    }
    println!(
        "flightdeck: clients fetch {base}/api/v1/manifest/ (public keys: {base}/api/v1/signing_key/)"
    );
    match tower.first_start() {
        Some(first) => {
            println!(
                "flightdeck: first start: created the user {:?} (admin). Its API token, shown only this once:",
                first.username
            );
            println!();
            println!("    {}", first.token);
            println!();
            println!(
                "flightdeck: try: curl -H 'Authorization: Bearer {}' {base}/api/v3/recipe/",
                first.token
            );
        }
        None => println!(
            "flightdeck: log in with an API token (`flightdeck admin create-token USER` makes one)"
        ),
    }
}

/// `flightdeck admin …`.
pub fn admin(command: AdminCommand) -> anyhow::Result<ExitCode> {
    let (database, run): (DatabaseArgs, AdminRun) = match command {
        AdminCommand::CreateUser {
            username,
            roles,
            database,
        } => {
            let roles = roles
                .iter()
                .map(|name| {
                    Role::parse(name).with_context(|| {
                        format!("unknown role {name:?}; expected viewer, editor, approver or admin")
                    })
                })
                .collect::<anyhow::Result<Vec<Role>>>()?;
            (database, AdminRun::CreateUser { username, roles })
        }
        AdminCommand::CreateToken {
            username,
            name,
            database,
        } => (database, AdminRun::CreateToken { username, name }),
    };
    let flags = ConfigLayer {
        data_dir: database.data_dir,
        database_url: database.database_url,
        ..ConfigLayer::default()
    };
    let config = load_config(database.config, flags)?;
    runtime()?.block_on(async move {
        let url = config.database_url();
        if url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    config.data_dir.display()
                )
            })?;
        }
        let store = Store::open(&url).await?;
        let now = jiff::Timestamp::now();
        let result = match run {
            AdminRun::CreateUser { username, roles } => {
                let user = bootstrap::create_user(&store, &username, &roles, now).await?;
                let roles: Vec<&str> = user.roles.iter().map(|role| role.as_str()).collect();
                println!(
                    "created user {:?} (id {}) with roles {}",
                    user.username,
                    user.id,
                    roles.join(", ")
                );
                Ok(ExitCode::SUCCESS)
            }
            AdminRun::CreateToken { username, name } => {
                let secret = bootstrap::create_token(&store, &username, &name, now).await?;
                println!("{secret}");
                Ok(ExitCode::SUCCESS)
            }
        };
        store.shutdown().await;
        result
    })
}

enum AdminRun {
    CreateUser { username: String, roles: Vec<Role> },
    CreateToken { username: String, name: String },
}
