//! `ordonis-server`: the HTTP API, the UI and (by default) in-process workers.

use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use ordonis_server::config::Origin;
#[cfg(feature = "demo")]
use ordonis_server::demo;
use ordonis_server::{Config, Server, init_tracing, shutdown_signal};

/// mimalloc, a pooled allocator: under load glibc's malloc/free took about a quarter of the
/// server's CPU samples (BENCHMARKS.md). Off with `--no-default-features`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let matches = Config::command().get_matches();
    let mut config = match Config::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if config.demo
        && let Err(e) = prepare_demo(&mut config, &matches)
    {
        eprintln!("ordonis-server: {e}");
        return ExitCode::FAILURE;
    }
    let server = match Server::start(&config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ordonis-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = shutdown_signal();
    let url = server.url();
    println!("Ordonis is listening on {url}  (UI: {url}/ui)");
    match &server.admin_token.origin {
        Origin::Generated(p) => println!(
            "Admin token (generated, saved to {} with mode 0600): {}",
            p.display(),
            server.admin_token.value
        ),
        Origin::Ephemeral => println!(
            "Admin token (generated for this run): {}",
            server.admin_token.value
        ),
        Origin::File(p) if config.demo => println!(
            "Admin token (from {}): {}",
            p.display(),
            server.admin_token.value
        ),
        Origin::File(p) => println!("Admin token: in {}", p.display()),
        Origin::Given => println!("Admin token: as given by ORDONIS_ADMIN_TOKEN"),
    }
    if let Origin::Generated(p) = &server.secret_key_origin {
        println!(
            "Secret key (seals integration secrets): generated, saved to {} with mode 0600; back it up",
            p.display()
        );
    }
    #[cfg(feature = "demo")]
    let _demo = if config.demo {
        match demo::setup(&server).await {
            Ok(d) => {
                println!(
                    "Demo: workspace {:?} with a Jira and an Asana integration on in-process \
                     fakes, fed real webhook payloads:",
                    demo::WORKSPACE
                );
                for line in d.describe() {
                    println!("  {line}");
                }
                for n in &d.notes {
                    println!("Demo: {n}");
                }
                println!("Open {url}/ui and sign in with the admin token above.");
                Some(d)
            }
            Err(e) => {
                eprintln!("ordonis-server: demo setup failed: {e}");
                server.shutdown().await;
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let token = server.shutdown_token();
    tokio::spawn(async move {
        stop.await;
        tracing::info!("shutting down");
        token.cancel();
    });
    server.run_until_stopped().await;
    ExitCode::SUCCESS
}

/// `--demo`: any provider URL is accepted and, unless a database was given, the demo's own
/// file is used, reset at each start.
#[cfg(feature = "demo")]
fn prepare_demo(config: &mut Config, matches: &ArgMatches) -> Result<(), String> {
    config.allow_any_provider_url = true;
    if matches.value_source("database_url") == Some(clap::parser::ValueSource::DefaultValue) {
        config.database_url = demo::DATABASE.to_owned();
        demo::reset_database(std::path::Path::new(demo::DATABASE))
            .map_err(|e| format!("cannot reset {}: {e}", demo::DATABASE))?;
    }
    Ok(())
}

/// Without the `demo` feature there is nothing to run `--demo` on.
#[cfg(not(feature = "demo"))]
fn prepare_demo(_config: &mut Config, _matches: &ArgMatches) -> Result<(), String> {
    Err(
        "--demo is not available: this ordonis-server was built without the `demo` \
         feature (rebuild with `--features demo`)"
            .to_owned(),
    )
}
