//! `hookgate queue`: turns the subcommand into a queue operation, runs it and prints the
//! result.

use std::process::ExitCode;

use super::admin::{self, Operation};
use super::Selection;
use crate::cli::{QueueArgs, QueueCommand};
use crate::config;

/// Runs one `hookgate queue` subcommand and returns the process exit code.
pub fn run(args: QueueArgs) -> ExitCode {
    let path = &args.config.config;
    let config = match config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} problem(s) found", path.display(), errors.0.len());
            return ExitCode::FAILURE;
        }
    };
    let (operation, json) = match operation(args.command) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("hookgate: {message}");
            return ExitCode::FAILURE;
        }
    };
    match admin::execute(&config, operation.clone()) {
        Ok(result) if json => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Ok(result) => {
            admin::print(&operation, &result);
            if !names_missing_entry(&operation, &result) {
                return ExitCode::SUCCESS;
            }
            // `show` has printed "no such entry" already.
            let queue = match operation {
                Operation::Show { .. } => return ExitCode::FAILURE,
                Operation::Purge { dead: false, .. } => "pending queue; `hookgate queue list`",
                _ => "dead-letter queue; `hookgate queue list --dead`",
            };
            eprintln!("hookgate: no such entry in the {queue} prints the entries as ROUTE/ID");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("hookgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Returns true when `operation` named one entry that the queue does not contain, which fails the
/// command so that a script notices a mistyped or already settled id.
fn names_missing_entry(operation: &Operation, result: &serde_json::Value) -> bool {
    match operation {
        Operation::Show { .. } => result["entry"].is_null(),
        Operation::Retry { selection } | Operation::Purge { selection, .. } => {
            selection.id.is_some() && result["count"].as_u64() == Some(0)
        }
        Operation::List { .. } => false,
    }
}

/// Builds the operation of a subcommand; the flag tells whether to print JSON.
fn operation(command: QueueCommand) -> Result<(Operation, bool), String> {
    Ok(match command {
        QueueCommand::List {
            route,
            dead,
            limit,
            json,
        } => {
            let selection = Selection { route, id: None };
            (
                Operation::List {
                    selection,
                    dead,
                    limit,
                },
                json,
            )
        }
        QueueCommand::Show { entry, dead, json } => {
            let selection = entry_selection(&entry)?;
            (Operation::Show { selection, dead }, json)
        }
        QueueCommand::Retry { entry, all, route } => {
            let selection = chosen(entry, all, route)?;
            (Operation::Retry { selection }, false)
        }
        QueueCommand::Purge {
            entry,
            all,
            route,
            dead,
        } => {
            let selection = chosen(entry, all, route)?;
            (Operation::Purge { selection, dead }, false)
        }
    })
}

fn chosen(entry: Option<String>, all: bool, route: Option<String>) -> Result<Selection, String> {
    match (entry, all) {
        (Some(entry), false) => entry_selection(&entry),
        (None, true) => Ok(Selection { route, id: None }),
        _ => Err("name one entry as ROUTE/ID, or give --all".to_string()),
    }
}

fn entry_selection(entry: &str) -> Result<Selection, String> {
    let Some((route, id)) = entry
        .split_once('/')
        .filter(|(r, i)| !r.is_empty() && !i.is_empty())
    else {
        return Err(format!(
            "invalid entry {entry:?}; write ROUTE/ID as `hookgate queue list` prints it"
        ));
    };
    Ok(Selection {
        route: Some(route.to_string()),
        id: Some(id.to_string()),
    })
}
