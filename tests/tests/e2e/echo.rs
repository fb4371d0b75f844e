//! The `--dev` demo's echo user: what is sent to it comes back to the sender.
//! The server here runs the echo user exactly as `rcimd --dev` starts it.

use rcim_tests::{InProcessServer, TestDaemon, eventually, query_db};
use std::time::Duration;

#[test]
fn a_message_to_the_echo_user_comes_back_and_watch_shows_it() {
    let server = InProcessServer::start();
    server.get().start_echo_user("echo").expect("echo user");
    let token = server
        .get()
        .issue_token("demo-user", "Demo")
        .expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    daemon.connect(&token);
    let mut watch = std::process::Command::new(rcim_tests::bin("rcimctl"))
        .env("RCIM_SOCKET", &daemon.socket)
        .args(["watch", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("watch");
    let stdout = watch.stdout.take().expect("stdout");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().expect("lines").push(line);
            }
        })
    };
    let seen = |what: &dyn Fn(&str) -> bool| lines.lock().expect("lines").iter().any(|l| what(l));
    // The watcher is attached once it printed the status.
    assert!(eventually(Duration::from_secs(20), || seen(&|_| true)));
    let out = daemon.ctl(&["send", "--to", "echo", "--text", "hi"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received = || {
        query_db(
            &daemon.data_dir,
            "demo-user",
            "SELECT sender, content FROM messages WHERE direction = 1",
        )
    };
    assert!(eventually(Duration::from_secs(20), || received().len() == 1));
    assert_eq!(received()[0][0], "echo");
    assert!(received()[0][1].contains("\"hi\""));
    // The watcher shows it arrive.
    assert!(
        eventually(Duration::from_secs(20), || seen(&|l| {
            l.contains("message_received") && l.contains("\"echo\"")
        })),
        "{:?}",
        lines.lock().expect("lines")
    );
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = reader.join();
    // A second echo user on the same server is refused.
    assert!(server.get().start_echo_user("other").is_err());
}
