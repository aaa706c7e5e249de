//! Secrets from files, as compose secrets and Kubernetes mount them: for every argument whose
//! environment variable is a secret (`DISCORD_TOKEN`, `DISCORD_CLIENT_SECRET`), `NAME_FILE`
//! names a file holding the value. `DATABASE_PASSWORD` or `DATABASE_PASSWORD_FILE` puts a
//! password into `DATABASE_URL`, so the URL itself need not carry it.
//!
//! Applied to the `clap::Command` of a binary before parsing (`with_secret_files`), so every
//! binary and subcommand gets the same rule and the value never shows in `--help`.

use std::path::{Path, PathBuf};

use clap::{Arg, Command};

/// Variables whose value may come from `NAME_FILE`.
pub const SECRET_VARIABLES: [&str; 2] = ["DISCORD_TOKEN", "DISCORD_CLIENT_SECRET"];
const DATABASE_URL: &str = "DATABASE_URL";
const DATABASE_PASSWORD: &str = "DATABASE_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{variable} and {variable}_FILE are both set; set one")]
    BothSet { variable: String },
    #[error("cannot read {variable}_FILE ({path}): {source}")]
    Unreadable {
        variable: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{variable}_FILE ({path}) is empty")]
    Empty { variable: String, path: PathBuf },
    #[error("DATABASE_URL is not a URL a password can be added to: {0}")]
    DatabaseUrl(String),
}

/// The value of a secret variable: the variable itself, or the content of the file `NAME_FILE`
/// names (without the trailing newline editors add). `None` when neither is set.
///
/// # Errors
/// Both set, or the file cannot be read or is empty.
pub fn secret(variable: &str) -> Result<Option<String>, SecretError> {
    let direct = std::env::var(variable).ok().filter(|v| !v.is_empty());
    let file = std::env::var_os(format!("{variable}_FILE")).filter(|v| !v.is_empty());
    match (direct, file) {
        (Some(_), Some(_)) => Err(SecretError::BothSet {
            variable: variable.to_owned(),
        }),
        (direct, None) => Ok(direct),
        (None, Some(path)) => read_secret_file(variable, Path::new(&path)).map(Some),
    }
}

fn read_secret_file(variable: &str, path: &Path) -> Result<String, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
        variable: variable.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let value = text.trim_end_matches(['\n', '\r']).to_owned();
    if value.is_empty() {
        return Err(SecretError::Empty {
            variable: variable.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(value)
}

/// `url` with `password` as its password (percent-encoded).
///
/// # Errors
/// When `url` is not a URL with a host.
pub fn with_password(url: &str, password: &str) -> Result<String, SecretError> {
    let mut parsed = url::Url::parse(url).map_err(|e| SecretError::DatabaseUrl(e.to_string()))?;
    parsed
        .set_password(Some(password))
        .map_err(|()| SecretError::DatabaseUrl("it has no host".to_owned()))?;
    Ok(parsed.into())
}

/// `command` (and its subcommands) with secrets read from files and the database password put
/// into `DATABASE_URL`, as the environment says. Call before parsing.
///
/// # Errors
/// See [`secret`]; a `DATABASE_URL` that cannot take a password.
pub fn with_secret_files(command: Command) -> Result<Command, SecretError> {
    let mut found = Vec::new();
    for variable in SECRET_VARIABLES {
        if std::env::var_os(format!("{variable}_FILE")).is_some()
            && let Some(value) = secret(variable)?
        {
            found.push((variable, value));
        }
    }
    let password = secret(DATABASE_PASSWORD)?;
    apply(command, &found, password.as_deref())
}

fn apply(
    mut command: Command,
    found: &[(&str, String)],
    password: Option<&str>,
) -> Result<Command, SecretError> {
    let ids: Vec<(String, Option<String>)> = command
        .get_arguments()
        .map(|arg| (arg.get_id().to_string(), env_name(arg)))
        .collect();
    for (id, env) in ids {
        let Some(env) = env else { continue };
        if let Some((_, value)) = found.iter().find(|(variable, _)| *variable == env) {
            let value = value.clone();
            command = command.mut_arg(id, |arg| {
                arg.env(None::<&str>)
                    .default_value(value)
                    .hide_default_value(true)
                    .required(false)
            });
        } else if env == DATABASE_URL
            && let Some(password) = password
        {
            let base = std::env::var(DATABASE_URL).ok().or_else(|| {
                command
                    .get_arguments()
                    .find(|arg| arg.get_id() == id.as_str())
                    .and_then(|arg| arg.get_default_values().first())
                    .map(|value| value.to_string_lossy().into_owned())
            });
            if let Some(base) = base {
                let url = with_password(&base, password)?;
                command = command.mut_arg(id, |arg| {
                    arg.env(None::<&str>)
                        .default_value(url)
                        .hide_default_value(true)
                });
            }
        }
    }
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in names {
        let mut failure = None;
        command = command.mut_subcommand(name, |sub| match apply(sub.clone(), found, password) {
            Ok(applied) => applied,
            Err(error) => {
                failure = Some(error);
                sub
            }
        });
        if let Some(error) = failure {
            return Err(error);
        }
    }
    Ok(command)
}

fn env_name(arg: &Arg) -> Option<String> {
    arg.get_env().map(|env| env.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Service {
        #[arg(long, env = "DISCORD_TOKEN")]
        discord_token: String,
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/x"
        )]
        database_url: String,
    }

    #[test]
    fn a_secret_from_a_file_fills_a_required_argument_and_hides_it() {
        let command = <Service as clap::CommandFactory>::command();
        let found = [("DISCORD_TOKEN", "from-the-file".to_owned())];
        let command = apply(command, &found, Some("p@ss/word")).expect("applied");
        let help = command.clone().render_help().to_string();
        assert!(!help.contains("from-the-file"), "{help}");
        let matches = command.try_get_matches_from(["service"]).expect("parses");
        let parsed = <Service as clap::FromArgMatches>::from_arg_matches(&matches).expect("fits");
        assert_eq!(parsed.discord_token, "from-the-file");
        assert_eq!(
            parsed.database_url,
            "postgres://postgres:p%40ss%2Fword@127.0.0.1:5432/x"
        );
    }

    #[test]
    fn a_secret_file_is_read_without_its_trailing_newline_and_an_empty_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("invitrack-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("token");
        std::fs::write(&path, "abc.def\n").expect("write");
        assert_eq!(read_secret_file("X", &path).expect("read"), "abc.def");
        std::fs::write(&path, "\n").expect("write");
        assert!(matches!(
            read_secret_file("X", &path),
            Err(SecretError::Empty { .. })
        ));
        let missing = dir.join("missing");
        let error = read_secret_file("DISCORD_TOKEN", &missing).expect_err("missing");
        assert!(error.to_string().contains("DISCORD_TOKEN_FILE"), "{error}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_password_is_added_to_a_url_without_one_and_replaces_one_that_has_it() {
        assert_eq!(
            with_password("postgres://invitrack@postgres:5432/invitrack", "s3cret").expect("url"),
            "postgres://invitrack:s3cret@postgres:5432/invitrack"
        );
        assert_eq!(
            with_password("postgres://u:old@h/db", "new").expect("url"),
            "postgres://u:new@h/db"
        );
        assert!(with_password("not a url", "x").is_err());
    }
}
