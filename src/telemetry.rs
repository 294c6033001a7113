//! Logging: one `tracing` subscriber for hookgate and for Pingora's `log` records, in text or
//! JSON, filtered by `--log-level` or `RUST_LOG`.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `level` is a `tracing` filter such as `info` or
/// `hookgate=debug,pingora=warn`; `RUST_LOG` overrides it when set.
pub fn init(format: LogFormat, level: &str) -> anyhow::Result<()> {
    tracing_log::LogTracer::init()?;
    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => tracing::subscriber::set_global_default(builder.finish())?,
        LogFormat::Json => {
            tracing::subscriber::set_global_default(builder.json().flatten_event(true).finish())?
        }
    }
    Ok(())
}
