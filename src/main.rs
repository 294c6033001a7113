use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use hookgate::cli::{Cli, Command};
use hookgate::clock::{Clock, FixedClock, SystemClock};
use hookgate::{config, demo, server, sign_command, telemetry, tls};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => return check(&args.config),
        Command::Sign(args) => sign_command::sign(&args),
        Command::Send(args) => sign_command::send(&args),
        Command::Providers => {
            demo::print_providers();
            Ok(())
        }
        Command::Run(args) => run(args),
        Command::Queue(args) => return hookgate::delivery::cli::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            for warning in tls::expiry_warnings(&config) {
                eprintln!("{}: {warning}", path.display());
            }
            println!(
                "{}: ok, {} listener(s), {} route(s)",
                path.display(),
                config.listeners.len(),
                config.routes.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} problem(s) found", path.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}

fn run(args: hookgate::cli::RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format, &args.log_level)?;
    let config = config::load(&args.config.config)?;
    let clock: Arc<dyn Clock> = match args.fixed_clock {
        Some(now) => {
            tracing::warn!(
                now,
                "the clock is fixed for testing; timestamps are checked against it"
            );
            Arc::new(FixedClock(now))
        }
        None => Arc::new(SystemClock),
    };
    server::run(config, clock, args.demo_upstream, args.watch)
}
