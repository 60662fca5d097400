//! The `inmate` binary: parses the command line and hands over to the library.

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::HashPassword) = cli.command {
        return hash_password();
    }
    if let Some(Command::Admin(cmd)) = cli.command {
        return inmate::admin::cli::run(cmd);
    }
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::CheckConfig) = cli.command {
        print!("{}", config.redacted_yaml());
        return ExitCode::SUCCESS;
    }
    inmate::app::init_logging(&config.log_level, config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
