//! The `inmate` binary: parses the command line and hands over to the library.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use inmate::config::Config;

/// mimalloc returns freed pages to the system; glibc's malloc kept most of a
/// burst of large writes per thread arena (see BENCHMARKS.md, hostile clients).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "inmate",
    version,
    about = "HA gateway for InfluxDB OSS: durable fan-out writes, routed reads"
)]
struct Cli {
    /// Config file (YAML).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "INMATE_CONFIG",
        default_value = "config.yaml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config and print the effective config with secrets redacted.
    CheckConfig,
    /// Read a password from standard input and print its argon2 hash, for
    /// `clients[].password_hash`.
    HashPassword,
    #[command(flatten)]
    Admin(inmate::admin::cli::AdminCommand),
    /// Compare every node's schema and data; exit 0 when identical, 1 when not.
    Verify(inmate::repair::cli::VerifyArgs),
    /// Copy missing points between nodes for every differing window.
    Repair(inmate::repair::cli::RepairArgs),
    /// Bring an empty or new node up to date from another node.
    Backfill(inmate::repair::cli::BackfillArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that need no config file.
    let command = match cli.command {
        Some(Command::HashPassword) => return hash_password(),
        Some(Command::Admin(cmd)) => return inmate::admin::cli::run(cmd),
        other => other,
    };
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match &command {
        Some(Command::CheckConfig) => {
            print!("{}", config.redacted_yaml());
            return ExitCode::SUCCESS;
        }
        Some(Command::Verify(args)) => {
            return ExitCode::from(inmate::repair::cli::verify(&config, args));
        }
        Some(Command::Repair(args)) => {
            return ExitCode::from(inmate::repair::cli::repair(&config, args));
        }
        Some(Command::Backfill(args)) => {
            return ExitCode::from(inmate::repair::cli::backfill(
                &config,
                args,
                &config.data_dir,
            ));
        }
        Some(Command::HashPassword | Command::Admin(_)) | None => {}
    }
    // Held to the end of main: dropping it flushes the log.
    let _log_guard = inmate::app::init_logging(&config.log_level, config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.async_workers())
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(inmate::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            tracing::error!(error = %format!("{e:#}"), "gateway failed");
            eprintln!("inmate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `inmate hash-password`: the password comes from stdin (one line), never
/// from the command line, where it would land in shell history.
fn hash_password() -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err()
        || line.trim_end_matches(['\r', '\n']).is_empty()
    {
        eprintln!("inmate: give the password on standard input");
        return ExitCode::from(2);
    }
    match inmate::server::auth::hash_password(line.trim_end_matches(['\r', '\n'])) {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("inmate: cannot hash the password: {e}");
            ExitCode::FAILURE
        }
    }
}
