//! `hookgate queue`: turns the subcommand into a queue operation, runs it and prints the
//! result.

use std::process::ExitCode;

use serde_json::Value;

use super::admin::{self, Operation};
use super::Selection;
use crate::cli::{QueueArgs, QueueCommand};
use crate::config;

/// Runs one `hookgate queue` subcommand and returns the process exit code.
pub fn run(args: QueueArgs) -> ExitCode {
    let path = &args.config.config;
    // The queue needs no keys, and an operator's shell often lacks the service's secrets.
    let config = match config::load_with(path, config::KeyLoading::Skip) {
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
            match entry_not_found(&operation, &result) {
                Some(message) => {
                    eprintln!("hookgate: {message}");
                    ExitCode::FAILURE
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(error) => {
            eprintln!("hookgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Returns the error for a `show`, `retry` or `purge` of one entry that found no such entry,
/// naming the queue it looked in and the command that lists that queue.
fn entry_not_found(operation: &Operation, result: &Value) -> Option<String> {
    let (selection, dead, found) = match operation {
        Operation::Show { selection, dead } => (selection, *dead, !result["entry"].is_null()),
        Operation::Retry { selection } => (selection, true, result["count"].as_u64() != Some(0)),
        Operation::Purge { selection, dead } => {
            (selection, *dead, result["count"].as_u64() != Some(0))
        }
        Operation::List { .. } => return None,
    };
    let (Some(route), Some(id)) = (&selection.route, &selection.id) else {
        return None;
    };
    if found {
        return None;
    }
    let (queue, list) = if dead {
        ("dead-letter", "hookgate queue list --dead")
    } else {
        ("pending", "hookgate queue list")
    };
    Some(format!(
        "no such entry {route}/{id} in the {queue} queue; `{list}` lists its entries"
    ))
}

/// Builds the operation of a subcommand and whether to print it as JSON.
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
