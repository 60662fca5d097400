//! The operator's commands: `inmate status`, `inmate node`, `inmate
//! deadletter`, `inmate repair-flag`.
//!
//! Why a client of the HTTP API and not of `data_dir`: the gateway owns its
//! files while it runs (the log's lock, the dead-letter appends), and the
//! operator is often not on its host. The CLI speaks to the admin API with
//! the gateway's own HTTP client (hyper, on a one-thread runtime), so it
//! needs no second HTTP stack.
//!
//! Output: a table ([`comfy_table`]) coloured when stdout is a terminal, or
//! the API's JSON with `--json`. Exit codes: 0 done, 1 the gateway refused
//! or failed (or a replay left entries it could not deliver), 2 usage
//! (clap's own, and a bad `--url`).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use comfy_table::{Cell, Color, Table, presets};
use http::{Method, Request, header};

use super::deadletters::{DeadEntry, Replayed};
use super::{Done, PREFIX, Status};
use crate::backend::client::{self, Chunks};

/// The admin commands, flattened into the binary's subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Print every node: mode, state, backlog, lag, oldest unsent record,
    /// dead letters, repair flag, last error.
    Status {
        #[command(flatten)]
        conn: Conn,
    },
    /// Pause, resume or drain a node.
    Node {
        action: NodeAction,
        /// The node's name (as in `inmate status`).
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List, replay or discard a node's dead letters.
    Deadletter {
        action: DeadAction,
        name: String,
        /// Only the entry with this log sequence (repeatable); default all.
        #[arg(long)]
        seq: Vec<u64>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Clear a node's `needs_repair` flag once it has been repaired.
    RepairFlag {
        action: FlagAction,
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NodeAction {
    /// No reads and no deliveries; its backlog grows in the log.
    Pause,
    /// Back to normal: reads, and deliveries catch up.
    Resume,
    /// No new reads; writes keep flowing to it.
    Drain,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeadAction {
    List,
    /// Resend write entries to that node only; delivered ones are removed.
    Replay,
    Discard,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FlagAction {
    Clear,
}

/// How to reach the gateway.
#[derive(Debug, Args)]
pub struct Conn {
    /// The gateway's base URL.
    #[arg(long, env = "INMATE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A gateway credential with the admin scope (`auth_token` or a client's token).
    #[arg(long, env = "INMATE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Time allowed for the whole request.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// Why a command failed, and its exit code.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

/// Runs one admin command; prints its result; returns the exit code.
pub fn run(cmd: AdminCommand) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&CliError::Failed(format!("cannot start a runtime: {e}"))),
    };
    match rt.block_on(execute(cmd)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(&e),
    }
}

fn fail(e: &CliError) -> ExitCode {
    eprintln!("inmate: {e}");
    ExitCode::from(match e {
        CliError::Usage(_) => 2,
        CliError::Failed(_) => 1,
    })
}

/// A node name as one path segment.
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Executes `cmd`; `Ok(false)` means it ran but did not fully succeed.
async fn execute(cmd: AdminCommand) -> Result<bool, CliError> {
    let colour = std::io::stdout().is_terminal();
    match cmd {
        AdminCommand::Status { conn } => {
            let v = call(&conn, Method::GET, "nodes", &[]).await?;
            print_or(&conn, &v, |s: Status| status_table(&s, colour))
        }
        AdminCommand::Node { action, name, conn } => {
            let verb = match action {
                NodeAction::Pause => "pause",
                NodeAction::Resume => "resume",
                NodeAction::Drain => "drain",
            };
            let path = format!("nodes/{}/{verb}", segment(&name));
            let v = call(&conn, Method::POST, &path, &[]).await?;
            print_or(&conn, &v, done_line)
        }
        AdminCommand::RepairFlag { name, conn, .. } => {
            let path = format!("nodes/{}/repair/clear", segment(&name));
            let v = call(&conn, Method::POST, &path, &[]).await?;
            print_or(&conn, &v, done_line)
        }
        AdminCommand::Deadletter {
            action,
            name,
            seq,
            conn,
        } => {
            let base = format!("nodes/{}/deadletters", segment(&name));
            match action {
                DeadAction::List => {
                    let v = call(&conn, Method::GET, &base, &seq).await?;
                    print_or(&conn, &v, |e: Vec<DeadEntry>| dead_table(&e, &seq, colour))
                }
                DeadAction::Replay => {
                    let v = call(&conn, Method::POST, &format!("{base}/replay"), &seq).await?;
                    let ok = serde_json::from_value::<Replayed>(v.clone())
                        .map_err(|e| CliError::Failed(format!("unexpected answer: {e}")))?
                        .failed
                        .is_empty();
                    Ok(print_or(&conn, &v, replay_text)? && ok)
                }
                DeadAction::Discard => {
                    let v = call(&conn, Method::POST, &format!("{base}/discard"), &seq).await?;
                    print_or(&conn, &v, done_line)
                }
            }
        }
    }
}

/// Prints `v` as JSON with `--json`, else as `render` makes it.
fn print_or<T: serde::de::DeserializeOwned>(
    conn: &Conn,
    v: &serde_json::Value,
    render: impl FnOnce(T) -> String,
) -> Result<bool, CliError> {
    if conn.json {
        println!(
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        );
        return Ok(true);
    }
    let t: T = serde_json::from_value(v.clone())
        .map_err(|e| CliError::Failed(format!("unexpected answer from the gateway: {e}")))?;
    println!("{}", render(t));
    Ok(true)
}

/// One admin API call; the answer's JSON, or the gateway's error.
async fn call(
    conn: &Conn,
    method: Method,
    path: &str,
    seqs: &[u64],
) -> Result<serde_json::Value, CliError> {
    let mut url = url::Url::parse(&conn.url)
        .map_err(|e| CliError::Usage(format!("bad --url {:?}: {e}", conn.url)))?;
    if !matches!(url.scheme(), "http") {
        return Err(CliError::Usage(format!(
            "--url {:?}: only http:// is supported",
            conn.url
        )));
    }
    let base = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{base}{PREFIX}{path}"));
    if !seqs.is_empty() {
        let mut q = url.query_pairs_mut();
        for s in seqs {
            q.append_pair("seq", &s.to_string());
        }
    }
    let mut req = Request::builder().method(method).uri(url.as_str());
    if let Some(t) = &conn.token {
        req = req.header(header::AUTHORIZATION, format!("Token {t}"));
    }
    let req = req
        .body(Chunks::default())
        .map_err(|e| CliError::Usage(format!("cannot build the request: {e}")))?;
    // The gateway's own URL is plain http (the CLI has no TLS options yet).
    let http = client::new_client(&[])
        .map_err(|e| CliError::Failed(format!("cannot build the HTTP client: {e}")))?;
    let resp = client::send(&http, req, conn.timeout)
        .await
        .map_err(|e| CliError::Failed(format!("{}: {e}", conn.url)))?;
    let status = resp.status();
    let body = crate::backend::client::read_capped(resp.into_body(), 64 << 20, conn.timeout).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&body).trim().to_string())
    });
    if !status.is_success() {
        let why = v["error"]
            .as_str()
            .or(v["message"].as_str())
            .or(v.as_str())
            .unwrap_or("")
            .to_string();
        return Err(CliError::Failed(format!("{status}: {why}")));
    }
    Ok(v)
}

fn done_line(d: Done) -> String {
    format!("{}: {} (by {})", d.node, d.message, d.by)
}

fn replay_text(r: Replayed) -> String {
    let mut s = format!(
        "{}: replayed {}, failed {}, skipped {} (not writes), {} left",
        r.node,
        r.replayed,
        r.failed.len(),
        r.skipped,
        r.remaining
    );
    for f in &r.failed {
        s.push_str(&format!("\n  seq {}: {} {}", f.seq, f.status, f.error));
    }
    s
}

fn table(headers: &[&str], colour: bool) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    if colour {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(headers.to_vec());
    t
}

fn cell(text: impl ToString, colour: Option<Color>) -> Cell {
    let c = Cell::new(text);
    match colour {
        Some(col) => c.fg(col),
        None => c,
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn status_table(s: &Status, colour: bool) -> String {
    let mut t = table(
        &[
            "NODE",
            "MODE",
            "STATE",
            "BACKLOG",
            "LAG",
            "OLDEST UNSENT",
            "DEAD LETTERS",
            "REPAIR",
            "LAST ERROR",
        ],
        colour,
    );
    let c = |yes: bool, col: Color| (colour && yes).then_some(col);
    for n in &s.nodes {
        let mode = match (&n.mode_by, &n.mode_since) {
            (Some(by), Some(at)) => format!("{} ({by}, {at})", n.mode),
            _ => n.mode.clone(),
        };
        let state_colour = match n.state.as_str() {
            "up" => Color::Green,
            "down" => Color::Red,
            _ => Color::Yellow,
        };
        t.add_row(vec![
            Cell::new(&n.name),
            cell(mode, c(n.mode != "enabled", Color::Yellow)),
            cell(&n.state, colour.then_some(state_colour)),
            Cell::new(format!(
                "{} rec / {}",
                n.backlog_records,
                bytes(n.backlog_bytes)
            )),
            Cell::new(n.lag_records),
            Cell::new(
                n.oldest_unsent_seconds
                    .map_or_else(|| "-".to_string(), |s| format!("{s:.1}s")),
            ),
            cell(n.dead_letters, c(n.dead_letters > 0, Color::Red)),
            cell(
                if n.needs_repair { "needed" } else { "-" },
                c(n.needs_repair, Color::Red),
            ),
            Cell::new(n.last_error.as_deref().unwrap_or("-")),
        ]);
    }
    format!("{t}\nlog next seq: {}", s.log_next_seq)
}

fn dead_table(entries: &[DeadEntry], seqs: &[u64], colour: bool) -> String {
    let mut t = table(
        &["SEQ", "TIME", "STATUS", "REQUEST", "LINES", "ERROR"],
        colour,
    );
    let shown = entries
        .iter()
        .filter(|e| seqs.is_empty() || seqs.contains(&e.seq));
    for e in shown {
        let mut error = e.error.clone();
        crate::redact::truncate_at_char_boundary(&mut error, 120);
        t.add_row(vec![
            Cell::new(e.seq),
            Cell::new(&e.time),
            cell(e.status, colour.then_some(Color::Red)),
            Cell::new(format!("{} {}?{}", e.method, e.path, e.query)),
            Cell::new(e.body.lines().count()),
            Cell::new(error),
        ]);
    }
    format!("{t}\n{} dead letters", t.row_count())
}

#[cfg(test)]
mod tests {
    use super::super::NodeView;
    use super::*;

    #[test]
    fn names_become_one_path_segment() {
        assert_eq!(segment("influx-1:8086"), "influx-1%3A8086");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn status_table_has_every_column_and_no_colour_off_a_terminal() {
        let node = NodeView {
            name: "a".into(),
            url: "http://a:8086/".into(),
            mode: "paused".into(),
            mode_by: Some("ops".into()),
            mode_since: Some("2024-01-01T00:00:00Z".into()),
            state: "up".into(),
            backlog_records: 3,
            backlog_bytes: 2048,
            lag_records: 3,
            oldest_unsent_seconds: Some(1.25),
            dead_letters: 2,
            needs_repair: true,
            last_error: None,
        };
        let s = status_table(
            &Status {
                log_next_seq: 9,
                nodes: vec![node],
            },
            false,
        );
        for want in [
            "paused (ops",
            "3 rec / 2.0 KiB",
            "1.2s",
            "needed",
            "LAST ERROR",
        ] {
            assert!(s.contains(want), "{want} missing in\n{s}");
        }
        assert!(!s.contains('\u{1b}'), "no escape codes off a terminal");
        assert!(
            status_table(
                &Status {
                    log_next_seq: 0,
                    nodes: vec![]
                },
                true
            )
            .contains("NODE")
        );
    }
}
