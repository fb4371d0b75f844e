//! `rcimctl clients [--json]`: who is attached to rcimd (this rcimctl included).
//!
//! One aligned row per client: the daemon's session number, the process id, the
//! name the client gave, whether it lags (rcimd found it too slow and is catching
//! it up from its database) and the last message id queued for it. The JSON form is
//! `{"schema_version":1,"clients":[...]}` with each client as [`ClientJson`].

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use crate::view::{self, Paint, paint};
use rcim_client::ClientEntry;
use serde::Serialize;
use std::io::Write;

/// List the apps attached to rcimd: session number, process id, name, whether it
/// lags behind, and the last message id queued for it.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// Print one JSON object (schema_version 1) instead of a table
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct ClientsJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// By session number.
    pub clients: Vec<ClientJson>,
}

/// One attached client in `--json` output.
#[derive(Debug, Serialize)]
pub struct ClientJson {
    /// The daemon's session number.
    pub id: u64,
    /// The client's process id, when the OS reports it.
    pub pid: Option<i64>,
    /// The name from the client's handshake.
    pub name: String,
    /// Whether it fell behind and is being caught up from the database.
    pub lagged: bool,
    /// The last message id queued for it.
    pub last_seq: i64,
}

impl From<&ClientEntry> for ClientJson {
    fn from(c: &ClientEntry) -> Self {
        Self {
            id: c.id,
            pid: c.pid,
            name: c.name.clone(),
            lagged: c.lagged,
            last_seq: c.last_seq,
        }
    }
}

/// Fetches the list and prints it.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let clients = ctx.attach()?.clients()?;
    if args.json {
        render_json(&clients, out)
    } else {
        render_human(&clients, out)
    }
}

/// One JSON object on one line.
pub fn render_json(clients: &[ClientEntry], out: &mut impl Write) -> Result<(), CliError> {
    let json = ClientsJson {
        schema_version: 1,
        clients: clients.iter().map(ClientJson::from).collect(),
    };
    serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// An aligned table with a header row.
pub fn render_human(clients: &[ClientEntry], out: &mut impl Write) -> Result<(), CliError> {
    let header = ["ID", "PID", "NAME", "LAGGED", "LAST SEQ"];
    let rows: Vec<[String; 5]> = clients
        .iter()
        .map(|c| {
            [
                c.id.to_string(),
                c.pid.map_or_else(|| "-".to_owned(), |pid| pid.to_string()),
                view::one_line(&c.name),
                if c.lagged { "yes" } else { "no" }.to_owned(),
                c.last_seq.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5], lagged: bool| {
        let [id, pid, name, lag, seq] = cells;
        let [w_id, w_pid, w_name, w_lag, w_seq] = widths;
        let lag = format!("{lag:<w_lag$}");
        let lag = if lagged {
            paint(Paint::Warn, &lag)
        } else {
            lag
        };
        format!("{id:>w_id$}  {pid:>w_pid$}  {name:<w_name$}  {lag}  {seq:>w_seq$}")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", paint(Paint::Header, &line(header, false)))?;
    for (row, client) in rows.iter().zip(clients) {
        let cells = [
            row[0].as_str(),
            row[1].as_str(),
            row[2].as_str(),
            row[3].as_str(),
            row[4].as_str(),
        ];
        writeln!(out, "{}", line(cells, client.lagged))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients() -> Vec<ClientEntry> {
        vec![
            ClientEntry {
                id: 3,
                name: "rcimctl".into(),
                pid: Some(4242),
                lagged: false,
                last_seq: 120,
            },
            ClientEntry {
                id: 17,
                name: "tray\nnotifier".into(),
                pid: None,
                lagged: true,
                last_seq: 7,
            },
        ]
    }

    #[test]
    fn the_table_is_aligned_and_escapes_names() {
        let mut out = Vec::new();
        render_human(&clients(), &mut out).unwrap();
        let text = anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string();
        assert_eq!(
            text,
            "\
ID   PID  NAME            LAGGED  LAST SEQ
 3  4242  rcimctl         no           120
17     -  tray\\nnotifier  yes            7
"
        );
    }

    #[test]
    fn an_empty_list_is_just_the_header() {
        let mut out = Vec::new();
        render_human(&[], &mut out).unwrap();
        let text = anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string();
        assert_eq!(text, "ID  PID  NAME  LAGGED  LAST SEQ\n");
    }

    #[test]
    fn json_lists_every_client() {
        let mut out = Vec::new();
        render_json(&clients(), &mut out).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "schema_version": 1,
                "clients": [
                    {"id": 3, "pid": 4242, "name": "rcimctl", "lagged": false, "last_seq": 120},
                    {"id": 17, "pid": null, "name": "tray\nnotifier", "lagged": true, "last_seq": 7},
                ]
            })
        );
    }
}
