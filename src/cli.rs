//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

/// hookgate verifies webhook signatures over the raw body and forwards only verified
/// requests, byte for byte, to your app.
#[derive(Debug, Parser)]
#[command(name = "hookgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the gateway.
    Run(RunArgs),
    /// Validate a config file: print every problem as file:line:column and exit non-zero, or
    /// print a summary and exit 0.
    Check(ConfigArg),
    /// Sign a request body the way a sender would. With `--provider`, print the headers; with
    /// `--route`, print a curl command that sends the body to that route of the config.
    Sign(SignArgs),
    /// Sign a request body like `sign`, POST it to `--to`, and print the response status and
    /// body. Exits non-zero unless the status is 2xx.
    Send(SendArgs),
    /// List the provider presets usable as a route's `provider:`, with the headers they read,
    /// their algorithm and timestamp tolerance.
    Providers,
    /// Inspect and re-drive the delivery queue of `delivery: async` routes. Goes through the
    /// running gateway's admin listener, or opens the queue itself when nothing listens there.
    Queue(QueueArgs),
}

#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(subcommand)]
    pub command: QueueCommand,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued webhooks, oldest first.
    List {
        /// Only this route's entries.
        #[arg(long)]
        route: Option<String>,
        /// List the dead-letter queue instead of the pending one.
        #[arg(long)]
        dead: bool,
        /// Maximum number of entries to print.
        #[arg(long, default_value_t = crate::delivery::admin::DEFAULT_LIMIT)]
        limit: usize,
        /// Print the JSON result instead of one line per entry.
        #[arg(long)]
        json: bool,
    },
    /// Print one queued webhook: its request line, headers and body.
    Show {
        /// Entry as ROUTE/ID, as `list` prints it.
        entry: String,
        /// Look in the dead-letter queue.
        #[arg(long)]
        dead: bool,
        /// Print the JSON result, with the body in base64.
        #[arg(long)]
        json: bool,
    },
    /// Move dead-lettered webhooks back to the pending queue, with their attempts and age reset.
    Retry {
        /// Entry as ROUTE/ID; give `--all` instead for every dead-lettered entry.
        entry: Option<String>,
        /// Every dead-lettered entry, or every one of `--route`.
        #[arg(long, conflicts_with = "entry")]
        all: bool,
        /// With `--all`, only this route's entries.
        #[arg(long, requires = "all")]
        route: Option<String>,
    },
    /// Delete queued webhooks for good.
    Purge {
        /// Entry as ROUTE/ID; give `--all` instead for every entry.
        entry: Option<String>,
        /// Every entry, or every one of `--route`.
        #[arg(long, conflicts_with = "entry")]
        all: bool,
        /// With `--all`, only this route's entries.
        #[arg(long, requires = "all")]
        route: Option<String>,
        /// Delete from the dead-letter queue instead of the pending one.
        #[arg(long)]
        dead: bool,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Path of the config file.
    #[arg(short, long, default_value = "gateway.yaml", global = true)]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Log output format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, such as `info` or `hookgate=debug`. `RUST_LOG` takes precedence when set.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Also start a demo upstream on this address that responds to every request with a JSON
    /// summary of what it received. For trying hookgate out, not for production.
    #[arg(long, value_name = "ADDRESS")]
    pub demo_upstream: Option<std::net::SocketAddr>,
    /// Also reload the config when its file changes, not only on SIGHUP.
    #[arg(long)]
    pub watch: bool,
    /// Unix time at which the clock for timestamp checks is frozen. Only for replaying
    /// recorded test requests; never set it in production.
    #[arg(long, hide = true, value_name = "UNIX_SECONDS")]
    pub fixed_clock: Option<i64>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Base URL of the gateway the printed curl command is sent to, with `--route`.
    /// Default: the config's first listener, with 127.0.0.1 or ::1 for an unspecified address.
    #[arg(long, value_name = "URL")]
    pub gateway: Option<String>,
}

/// Options shared by `sign` and `send`: the body, the scheme and the key that signs it.
#[derive(Debug, Args)]
pub struct SigningArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Name of the config route whose scheme and first key sign the body.
    #[arg(
        long,
        required_unless_present = "provider",
        conflicts_with = "provider"
    )]
    pub route: Option<String>,
    /// Preset whose scheme signs the body, such as `github`; see `hookgate providers`.
    #[arg(long)]
    pub provider: Option<String>,
    /// Environment variable that contains the secret, with `--provider`.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["secret_file", "route"])]
    pub secret_env: Option<String>,
    /// File that contains the secret, with `--provider`. One trailing `\n` or `\r\n` is
    /// stripped, as from a route's `file:` secret.
    #[arg(long, value_name = "PATH", conflicts_with = "route")]
    pub secret_file: Option<PathBuf>,
    /// File with the private key of a public-key scheme: PKCS#8 or PKCS#1 PEM, or an Ed25519
    /// seed in hex or base64.
    #[arg(long, value_name = "PATH")]
    pub private_key_file: Option<PathBuf>,
    /// URL the sender calls, which URL-bound schemes (twilio, square, hubspot) sign.
    /// Default: with `--route`, the URL the gateway checks (the route's `public_url:` and the
    /// request's path); with `--provider`, `--to` for `send`.
    #[arg(long)]
    pub url: Option<String>,
    /// Content-Type of the request that `send` posts or the curl command of `--route` sends,
    /// such as `application/x-www-form-urlencoded` for a Twilio form body.
    #[arg(long, default_value = "application/json")]
    pub content_type: String,
    /// Request body to sign when no BODY_FILE is given.
    #[arg(long, default_value = "{\"hello\":\"world\"}")]
    pub data: String,
    /// File whose bytes are the request body, exactly.
    #[arg(value_name = "BODY_FILE")]
    pub body_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub signing: SigningArgs,
    /// URL the signed request is posted to; `http://` only.
    #[arg(long)]
    pub to: String,
}
