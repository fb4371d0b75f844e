//! `rcimctl connect`: RC's `connect(token, timeout)` from the command line.
//!
//! The token never comes from argv, where `ps` and shell history would show it: it
//! is read from stdin or from a named environment variable, and never printed.
//! The command waits for `onConnected` and prints each callback as it arrives.

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use rcim_client::{Callback, RcCode, Token};
use serde::Serialize;
use std::ffi::OsString;
use std::io::{BufRead, Write};

/// Connect this device to the IM server (or join the connection rcimd already has).
///
/// The token is read from stdin (--token-stdin) or from an environment variable
/// (--token-env VAR), never from the command line, where other users could see it.
/// Prints `database opened`, then `connected as USER` and exits 0 once connected.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// Read the token from the first line of stdin
    #[arg(long, conflicts_with = "token_env")]
    pub token_stdin: bool,

    /// Read the token from the environment variable VAR
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,

    /// Give up after SECS seconds (error 34006); 0 or less keeps trying until
    /// success or a terminal error
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        allow_negative_numbers = true
    )]
    pub timeout: i32,

    /// Print one JSON object (schema_version 1) once connected instead of lines
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output, schema version 1, printed once connected.
#[derive(Debug, Serialize)]
pub struct ConnectJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// Always `connected` (a failure is an exit status and a line on stderr).
    pub status: &'static str,
    /// The connected user.
    pub user_id: Option<String>,
    /// The `onDatabaseOpened` code, if that callback came (0, or 33002).
    pub database_opened: Option<i32>,
}

/// Reads the token, connects, and reports the callbacks until `onConnected`.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let token = read_token(args, &mut std::io::stdin().lock(), |var| {
        std::env::var_os(var)
    })?;
    let client = ctx.attach()?;
    let mut call = client.connect(token, args.timeout)?;
    CliError::check("connect", call.code())?;
    let mut database_opened = None;
    while let Some(callback) = call.next_callback() {
        if !args.json {
            render(&callback, out)?;
        }
        match callback {
            Callback::DatabaseOpened { code } => database_opened = Some(code),
            Callback::Connected { code, user_id } => {
                CliError::check("connect", code)?;
                if args.json {
                    render_json(user_id, database_opened, out)?;
                }
                return Ok(());
            }
            Callback::MessageSaved { .. } | Callback::MessageSent { .. } => {}
        }
    }
    Ok(())
}

/// The `--json` object, on one line.
pub fn render_json(
    user_id: Option<String>,
    database_opened: Option<i32>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let json = ConnectJson {
        schema_version: 1,
        status: "connected",
        user_id,
        database_opened,
    };
    serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// One line per successful callback; a failed `onConnected` is left to the error.
pub fn render(callback: &Callback, out: &mut impl Write) -> Result<(), CliError> {
    match callback {
        Callback::DatabaseOpened { code: 0 } => writeln!(out, "database opened")?,
        Callback::DatabaseOpened { code } => writeln!(
            out,
            "database not opened: error {code}: {}",
            RcCode(*code).meaning()
        )?,
        Callback::Connected {
            code: 0,
            user_id: Some(user),
        } => writeln!(out, "connected as {user}")?,
        Callback::Connected { code: 0, .. } => writeln!(out, "connected")?,
        Callback::Connected { .. }
        | Callback::MessageSaved { .. }
        | Callback::MessageSent { .. } => {}
    }
    out.flush()?;
    Ok(())
}

/// The token from the source the flags name. Errors never contain the token.
pub fn read_token(
    args: &Args,
    stdin: &mut impl BufRead,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Token, CliError> {
    let token = match (&args.token_env, args.token_stdin) {
        (Some(var), _) => {
            let value = env(var).ok_or_else(|| {
                CliError::Usage(format!(
                    "the environment variable {var} (from --token-env) is not set"
                ))
            })?;
            let text = value.into_string().map_err(|_| {
                CliError::Usage(format!(
                    "the environment variable {var} (from --token-env) is not valid UTF-8"
                ))
            })?;
            let token = Token::new(text);
            check(&token, &format!("the environment variable {var}"))?;
            token
        }
        (None, true) => {
            let mut line = String::new();
            stdin
                .read_line(&mut line)
                .map_err(|e| CliError::Usage(format!("cannot read the token from stdin: {e}")))?;
            let end = line.trim_end_matches(['\n', '\r']).len();
            line.truncate(end);
            if line.is_empty() {
                return Err(CliError::Usage(
                    "stdin is empty: pipe the token in, e.g. \
                     `printf '%s\\n' \"$TOKEN\" | rcimctl connect --token-stdin`"
                        .to_owned(),
                ));
            }
            let token = Token::new(line);
            check(&token, "the token read from stdin")?;
            token
        }
        (None, false) => {
            return Err(CliError::Usage(
                "no token given: pass --token-stdin to read it from stdin \
                 (`printf '%s\\n' \"$TOKEN\" | rcimctl connect --token-stdin`), \
                 or --token-env VAR to read it from an environment variable; \
                 it is never taken from the command line, where `ps` would show it"
                    .to_owned(),
            ));
        }
    };
    Ok(token)
}

/// RC's argument check (33003), as a usage error that says where the token came from.
fn check(token: &Token, source: &str) -> Result<(), CliError> {
    token
        .check_argument()
        .map_err(|why| CliError::Usage(format!("{source} is not a usable token: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(token_stdin: bool, token_env: Option<&str>) -> Args {
        Args {
            token_stdin,
            token_env: token_env.map(str::to_owned),
            timeout: 30,
            json: false,
        }
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn usage(result: Result<Token, CliError>) -> String {
        match result {
            Err(CliError::Usage(text)) => text,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn stdin_first_line_without_newline() {
        for input in ["tok.en\n", "tok.en\r\n", "tok.en", "tok.en\nsecond line\n"] {
            let token = read_token(&args(true, None), &mut input.as_bytes(), no_env).unwrap();
            assert_eq!(token.expose(), "tok.en", "{input:?}");
        }
    }

    #[test]
    fn empty_stdin_is_a_clear_error() {
        for input in ["", "\n"] {
            let text = usage(read_token(&args(true, None), &mut input.as_bytes(), no_env));
            assert!(text.contains("stdin is empty"), "{text}");
        }
    }

    #[test]
    fn blank_token_is_refused_without_showing_it() {
        let text = usage(read_token(
            &args(true, None),
            &mut "secret part\n".as_bytes(),
            no_env,
        ));
        assert!(text.contains("whitespace"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn env_var_is_read() {
        let env = |var: &str| (var == "MY_TOKEN").then(|| OsString::from("abc.def"));
        let token = read_token(&args(false, Some("MY_TOKEN")), &mut "".as_bytes(), env).unwrap();
        assert_eq!(token.expose(), "abc.def");
    }

    #[test]
    fn missing_env_var_is_named() {
        let text = usage(read_token(
            &args(false, Some("RCIM_NO_SUCH")),
            &mut "".as_bytes(),
            no_env,
        ));
        assert!(
            text.contains("RCIM_NO_SUCH") && text.contains("not set"),
            "{text}"
        );
    }

    #[test]
    fn no_source_explains_both_flags() {
        let text = usage(read_token(&args(false, None), &mut "".as_bytes(), no_env));
        assert!(
            text.contains("--token-stdin") && text.contains("--token-env"),
            "{text}"
        );
    }

    #[test]
    fn json_names_the_user() {
        let mut out = Vec::new();
        render_json(Some("alice".into()), Some(0), &mut out).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"schema_version": 1, "status": "connected",
                "user_id": "alice", "database_opened": 0})
        );
    }

    #[test]
    fn callbacks_render() {
        let mut out = Vec::new();
        render(&Callback::DatabaseOpened { code: 0 }, &mut out).unwrap();
        render(&Callback::DatabaseOpened { code: 33002 }, &mut out).unwrap();
        render(
            &Callback::Connected {
                code: 0,
                user_id: Some("alice".into()),
            },
            &mut out,
        )
        .unwrap();
        render(
            &Callback::Connected {
                code: 31004,
                user_id: None,
            },
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!(
                "database opened\ndatabase not opened: error 33002: {}\nconnected as alice\n",
                RcCode(33002).meaning()
            )
        );
    }
}
