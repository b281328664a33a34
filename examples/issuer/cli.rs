//! `issuer user add NAME [--scopes "…"] [--roles "…"] [--tenant T]
//! [--audiences "…"]` (the password on stdin) and `issuer user disable
//! NAME`: the users in the database (`DATABASE_URL`).

use std::io::BufRead;

use super::config::User;
use super::credentials;
use super::pg::Db;

/// The usage of `issuer user`.
pub const USAGE: &str = "\
usage: issuer user add NAME [--scopes \"a b\"] [--roles \"r s\"] [--tenant T] [--audiences \"urn:x\"]
           (reads the password from stdin; needs DATABASE_URL)
       issuer user disable NAME
           (NAME can no longer log in; their refresh tokens and access tokens stop working)";

/// Runs `issuer user ARGS…` against the database at `database_url`,
/// reading a password from `stdin`; returns the line to print.
pub async fn user_command(
    args: &[String],
    stdin: &mut dyn BufRead,
    database_url: Option<&str>,
) -> Result<String, String> {
    let (command, rest) = args.split_first().ok_or(USAGE)?;
    let (name, options) = rest.split_first().ok_or(USAGE)?;
    check_name(name)?;
    let url = database_url
        .filter(|u| !u.trim().is_empty())
        .ok_or("issuer user: set DATABASE_URL (the users live in the database)")?;
    match command.as_str() {
        "add" => {
            let mut user = User {
                username: name.clone(),
                password_hash: String::new(),
                scopes: Vec::new(),
                roles: Vec::new(),
                tenant: None,
                audiences: None,
            };
            let mut options = options.iter();
            while let Some(flag) = options.next() {
                let value = options
                    .next()
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
                let list = || {
                    value
                        .split([' ', ','])
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .collect()
                };
                match flag.as_str() {
                    "--scopes" => user.scopes = list(),
                    "--roles" => user.roles = list(),
                    "--audiences" => user.audiences = Some(list()),
                    "--tenant" => user.tenant = Some(value.clone()).filter(|t| !t.is_empty()),
                    // SECURITY: a password on the command line is visible to
                    // every user of the machine (ps, /proc) and kept in
                    // shell history.
                    "--password" => {
                        return Err(
                            "issuer user add: give the password on stdin, never as an argument"
                                .into(),
                        );
                    }
                    _ => return Err(format!("unknown option {flag:?}\n{USAGE}")),
                }
            }
            let password = read_password(stdin)?;
            user.password_hash = credentials::hash_secret(&password)?;
            let db = connect(url).await?;
            db.add_user(&user)
                .await
                .map_err(|e| format!("issuer user add: {e}"))?;
            Ok(format!("user {name:?} added"))
        }
        "disable" => {
            if !options.is_empty() {
                return Err(USAGE.into());
            }
            let db = connect(url).await?;
            db.disable_user(name)
                .await
                .map_err(|e| format!("issuer user disable: {e}"))?;
            Ok(format!("user {name:?} disabled; their tokens were revoked"))
        }
        _ => Err(USAGE.into()),
    }
}

async fn connect(url: &str) -> Result<Db, String> {
    let db = Db::new(url).map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| format!("database: {e}"))?;
    Ok(db)
}

fn check_name(name: &str) -> Result<(), String> {
    // SECURITY: upstream subjects are `prefix:name`; a local name with a
    // `:` could be mistaken for (or become) one. Control characters would
    // forge log lines.
    if name.is_empty()
        || name.len() > 256
        || name.starts_with('-')
        || name.contains(':')
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "{name:?} is not a usable user name (1 to 256 characters, no ':', no control characters, not starting with '-')"
        ));
    }
    Ok(())
}

fn read_password(stdin: &mut dyn BufRead) -> Result<String, String> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(
            "give the password on stdin, e.g. `printf %s \"$PASSWORD\" | issuer user add NAME`"
                .into(),
        );
    }
    if password.len() > 1024 {
        return Err("the password is longer than 1024 bytes".into());
    }
    Ok(password.to_owned())
}
