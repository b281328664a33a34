//! `authlayer-public-api [--counts] <crate.json>`: prints the public API
//! listed from rustdoc's JSON output (see the library docs), or with
//! `--counts` only its counts line.

use std::process::ExitCode;

const USAGE: &str = "usage: authlayer-public-api [--counts] <rustdoc JSON file>";

fn main() -> ExitCode {
    let mut counts_only = false;
    let mut file = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--counts" => counts_only = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if file.is_none() && !arg.starts_with('-') => file = Some(arg),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(file) = file else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let json = match std::fs::read_to_string(&file) {
        Ok(json) => json,
        Err(e) => {
            eprintln!("authlayer-public-api: cannot read {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match authlayer_public_api::list(&json) {
        Ok(listing) if counts_only => {
            println!("{}", listing.counts);
            ExitCode::SUCCESS
        }
        Ok(listing) => {
            print!("{}", listing.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("authlayer-public-api: {file}: {e}");
            ExitCode::FAILURE
        }
    }
}
