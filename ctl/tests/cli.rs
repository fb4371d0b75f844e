//! The real `rcimctl` binary, without a daemon: help, usage errors and the
//! daemon-not-running path. Every run points RCIM_SOCKET at an empty temp dir, so
//! no test can reach a real daemon.

use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Run {
    _dir: tempfile::TempDir,
    cmd: Command,
}

fn rcimctl(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rcimctl"));
    cmd.args(args)
        .env("RCIM_SOCKET", dir.path().join("rcimd.sock"))
        .env_remove("RCIMCTL_TEST_TOKEN")
        .stdin(Stdio::null());
    Run { _dir: dir, cmd }
}

impl Run {
    fn output(mut self) -> Output {
        self.cmd.output().unwrap()
    }

    fn output_with_stdin(mut self, input: &str) -> Output {
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

/// Each command's `--help` succeeds and mentions every one of its needles.
fn assert_help_mentions(cases: &[(&[&str], &[&str])]) {
    for (args, needles) in cases {
        let out = rcimctl(args).output();
        assert!(out.status.success(), "{args:?}: {out:?}");
        let help = text(&out.stdout);
        for needle in *needles {
            assert!(
                help.contains(needle),
                "{args:?}: {needle:?} missing in\n{help}"
            );
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_for_every_subcommand() {
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["--help"],
            &["status", "connect", "disconnect", "--socket", "Exit status"],
        ),
        (
            &["status", "--help"],
            &["--json", "--socket", "Exit status"],
        ),
        (
            &["connect", "--help"],
            &["--token-stdin", "--token-env", "--timeout", "Exit status"],
        ),
        (&["disconnect", "--help"], &["--no-push", "Exit status"]),
    ];
    assert_help_mentions(&cases);
}

#[test]
fn connect_without_a_token_source_is_a_usage_error() {
    let out = rcimctl(&["connect"]).output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("--token-stdin") && err.contains("--token-env"),
        "{err}"
    );
}

#[test]
fn token_env_with_a_missing_variable_names_it() {
    let out = rcimctl(&["connect", "--token-env", "RCIMCTL_TEST_TOKEN"]).output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("RCIMCTL_TEST_TOKEN") && err.contains("not set"),
        "{err}"
    );
}

#[test]
fn empty_stdin_is_a_usage_error() {
    let out = rcimctl(&["connect", "--token-stdin"]).output_with_stdin("");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("stdin is empty"), "{out:?}");
}

#[test]
fn both_token_sources_conflict() {
    let out = rcimctl(&["connect", "--token-stdin", "--token-env", "X"]).output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn status_without_a_daemon_says_how_to_start_it() {
    for args in [&["status"][..], &["status", "--json"][..]] {
        let out = rcimctl(args).output();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        let err = text(&out.stderr);
        for needle in [
            "rcimd is not running",
            "systemctl --user start rcimd",
            "rcimd.sock",
        ] {
            assert!(err.contains(needle), "{needle:?} missing in {err}");
        }
        assert!(out.stdout.is_empty(), "{out:?}");
    }
}

#[test]
fn socket_flag_wins_over_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("elsewhere.sock");
    let out = rcimctl(&["--socket", socket.to_str().unwrap(), "disconnect"]).output();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(text(&out.stderr).contains("elsewhere.sock"), "{out:?}");
}

#[test]
fn connect_without_a_daemon_never_prints_the_token() {
    let secret = "s3cret-token.value";
    let mut run = rcimctl(&["connect", "--token-env", "RCIMCTL_TEST_TOKEN"]);
    run.cmd.env("RCIMCTL_TEST_TOKEN", secret);
    let out = run.output();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("s3cret"), "{all}");

    let out = rcimctl(&["connect", "--token-stdin"]).output_with_stdin(&format!("{secret}\n"));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("s3cret"), "{all}");
}

#[test]
fn help_for_the_messaging_subcommands() {
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &["--help"],
            &[
                "send",
                "history",
                "conversations",
                "watch",
                "  4  send only",
            ],
        ),
        (
            &["send", "--help"],
            &[
                "--to",
                "--text",
                "--group",
                "--object-name",
                "--content",
                "--no-wait",
                "--timeout",
                "[default: 30]",
                "Exit status",
                "  4  not confirmed within --timeout",
            ],
        ),
        (
            &["history", "--help"],
            &[
                "--with",
                "--group",
                "--limit",
                "--before",
                "--json",
                "UTC",
                "Exit status",
            ],
        ),
        (
            &["conversations", "--help"],
            &["--limit", "--before", "--json", "Exit status"],
        ),
        (&["watch", "--help"], &["--json", "Exit status"]),
    ];
    assert_help_mentions(&cases);
}

/// Each of these is refused before rcimd is even tried: exit 2, a message on
/// stderr, nothing on stdout.
#[test]
fn messaging_usage_errors_exit_2_without_a_daemon() {
    let cases: [(&[&str], &str); 13] = [
        (&["send", "--text", "hi"], "--to"),
        (&["send", "--to", "bob"], "--text"),
        (
            &["send", "--to", "bob", "--text", "hi", "--content", "{}"],
            "cannot be used with",
        ),
        (&["send", "--to", "bob", "--content", "{}"], "--object-name"),
        (
            &["send", "--to", "bob", "--text", "hi", "--group", "--system"],
            "unexpected argument '--system'",
        ),
        (&["send", "--to", "bob", "--text", ""], "--text is empty"),
        (&["send", "--to", "no spaces", "--text", "hi"], "target id"),
        (
            &[
                "send",
                "--to",
                "bob",
                "--object-name",
                "RC:ImgMsg",
                "--content",
                "nope",
            ],
            "--content must be JSON",
        ),
        (&["history"], "--with"),
        (&["history", "--with", "bob", "--limit", "0"], "--limit"),
        (&["history", "--with", "bob", "--limit", "21"], "--limit"),
        (&["conversations", "--limit", "51"], "--limit"),
        (&["history", "--with", "bob", "--before", "x"], "--before"),
    ];
    for (args, needle) in cases {
        let out = rcimctl(args).output();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: {needle:?} missing in {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

#[test]
fn messaging_commands_without_a_daemon_exit_3() {
    for args in [
        &["send", "--to", "bob", "--text", "hi"][..],
        &[
            "send",
            "--to",
            "team",
            "--group",
            "--text",
            "hi",
            "--no-wait",
        ],
        &["history", "--with", "bob", "--json"],
        &["conversations"],
        &["watch", "--json"],
    ] {
        let out = rcimctl(args).output();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        assert!(
            text(&out.stderr).contains("rcimd is not running"),
            "{args:?}: {out:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

// The success paths (status, connect, disconnect, send, history, conversations and
// watch against a live daemon) are tested against the real rcimd in
// tests/tests/e2e/.

#[test]
fn send_has_no_system_flag() {
    let help = text(&rcimctl(&["send", "--help"]).output().stdout);
    assert!(!help.contains("--system"), "{help}");
    let out = rcimctl(&["send", "--to", "news", "--system", "--text", "x"]).output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("--system"), "{out:?}");
    // history and conversations keep it.
    let help = text(&rcimctl(&["history", "--help"]).output().stdout);
    assert!(help.contains("--system"), "{help}");
}

#[test]
fn help_for_the_hub_subcommands() {
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--help"], &["clients", "completions", "man", "logout"]),
        (
            &["watch", "--help"],
            &["--since", "SEQ", "--json", "Exit status"],
        ),
        (&["clients", "--help"], &["--json", "lags", "Exit status"]),
        (&["completions", "--help"], &["bash", "zsh", "fish"]),
        (&["logout", "--help"], &["--json", "Exit status"]),
        (&["disconnect", "--help"], &["--no-push", "--json"]),
    ];
    assert_help_mentions(&cases);
}

#[test]
fn watch_since_must_be_a_non_negative_id() {
    for bad in ["-1", "abc", ""] {
        let out = rcimctl(&["watch", "--since", bad]).output();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    // A good one gets as far as attaching.
    let out = rcimctl(&["watch", "--since", "42", "--json"]).output();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

#[test]
fn hub_commands_without_a_daemon_exit_3_with_nothing_on_stdout() {
    for args in [
        &["clients"][..],
        &["clients", "--json"][..],
        &["logout", "--json"][..],
        &["disconnect", "--json"][..],
        &["send", "--to", "bob", "--text", "hi", "--json"][..],
    ] {
        let out = rcimctl(args).output();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        assert!(
            text(&out.stderr).contains("rcimd is not running"),
            "{args:?}: {out:?}"
        );
    }
}

#[test]
fn completions_for_every_shell() {
    for (shell, needle) in [
        ("bash", "_rcimctl"),
        ("zsh", "#compdef rcimctl"),
        ("fish", "complete -c rcimctl"),
        ("elvish", "rcimctl"),
        ("powershell", "rcimctl"),
    ] {
        let out = rcimctl(&["completions", shell]).output();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = text(&out.stdout);
        assert!(script.contains(needle), "{shell}: {needle:?} missing");
        assert!(script.contains("clients"), "{shell}: subcommands missing");
    }
    let out = rcimctl(&["completions", "tcsh"]).output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn man_page_is_roff_with_every_subcommand() {
    let out = rcimctl(&["man"]).output();
    assert!(out.status.success(), "{out:?}");
    let page = text(&out.stdout);
    assert!(page.contains(".TH rcimctl 1"), "{page}");
    for section in [
        "RCIMCTL STATUS",
        "RCIMCTL WATCH",
        "RCIMCTL CLIENTS",
        "RCIMCTL COMPLETIONS",
        "Exit status",
    ] {
        assert!(page.contains(section), "{section:?} missing");
    }
    assert!(page.contains("\\-\\-since"), "watch --since is documented");
}

#[test]
fn colour_only_on_a_terminal_or_when_forced() {
    // stderr is a pipe here: no escape codes.
    let out = rcimctl(&["status"]).output();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(!text(&out.stderr).contains('\u{1b}'), "{out:?}");
    // CLICOLOR_FORCE asks for colour anyway; NO_COLOR wins over it.
    let mut run = rcimctl(&["status"]);
    run.cmd.env("CLICOLOR_FORCE", "1").env_remove("NO_COLOR");
    let out = run.output();
    assert!(text(&out.stderr).contains('\u{1b}'), "{out:?}");
    let mut run = rcimctl(&["status"]);
    run.cmd.env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1");
    let out = run.output();
    assert!(!text(&out.stderr).contains('\u{1b}'), "{out:?}");
}
