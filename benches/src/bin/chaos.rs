//! `chaos`: the repair loop's chaos run (`ordonis_testkit::chaos`) over many seeds, for a
//! longer soak than CI's 20 per store. Prints each failing seed and exits non-zero if any
//! failed.
//!
//! ```sh
//! cargo run -p ordonis-benches --bin chaos -- --from 1 --seeds 500 --store sqlite
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use ordonis_core::Store;
use ordonis_testkit::chaos::{ChaosConfig, ChaosProviders, run};

/// The same pooled allocator as the server's binaries, so that the benchmark's own client
/// work does not take the machine's cores from the server in glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StoreKind {
    Memory,
    Sqlite,
    Postgres,
}

/// Runs chaos seeds `from..from+seeds` on one store kind.
#[derive(Debug, Parser)]
#[command(about = "The repair loop's chaos run over many seeds")]
struct Args {
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// How many seeds.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The store each seed runs on (a fresh one per seed).
    #[arg(long, value_enum, default_value = "memory")]
    store: StoreKind,
    /// PostgreSQL server for `--store postgres` (a database is created per seed).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
    /// Seeds run at once.
    #[arg(long, default_value_t = 2)]
    parallel: usize,
}

async fn store(args: &Args, seed: u64) -> Result<Arc<dyn Store>, String> {
    Ok(match args.store {
        StoreKind::Memory => Arc::new(ordonis_store_memory::MemoryStore::new()),
        StoreKind::Sqlite => {
            let path = std::env::temp_dir()
                .join(format!("ordonis-chaos-{seed}-{}.db", uuid::Uuid::now_v7()));
            let path = path.to_str().ok_or("temp path is not UTF-8")?.to_owned();
            Arc::new(
                ordonis_store_sqlite::SqliteStore::connect(&path)
                    .await
                    .map_err(|e| e.to_string())?,
            )
        }
        StoreKind::Postgres => {
            let name = format!("ordonis_chaos_{seed}_{}", uuid::Uuid::now_v7().simple());
            ordonis_store_postgres::create_database(&args.database_url, &name)
                .await
                .map_err(|e| e.to_string())?;
            let url = match args.database_url.rsplit_once('/') {
                Some((server, _)) => format!("{server}/{name}"),
                None => return Err("--database-url has no database path".into()),
            };
            Arc::new(
                ordonis_store_postgres::PostgresStore::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?,
            )
        }
    })
}

fn providers() -> Result<ChaosProviders, String> {
    Ok(ChaosProviders {
        jira: Arc::new(ordonis_jira::JiraProvider::new().map_err(|e| e.to_string())?),
        asana: Arc::new(ordonis_asana::AsanaProvider::new().map_err(|e| e.to_string())?),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Arc::new(Args::parse());
    let seeds: Vec<u64> = (args.from..args.from + args.seeds).collect();
    let mut failed = Vec::new();
    for chunk in seeds.chunks(args.parallel.max(1)) {
        let runs: Vec<_> = chunk
            .iter()
            .map(|&seed| {
                let args = args.clone();
                tokio::spawn(async move {
                    let store = store(&args, seed).await?;
                    run(ChaosConfig::ci(seed), store, providers()?).await
                })
            })
            .collect();
        for (seed, r) in chunk.iter().zip(runs) {
            match r.await {
                Ok(Ok(report)) => println!("seed {seed}: ok {report:?}"),
                Ok(Err(e)) => {
                    println!("seed {seed}: FAILED {e}");
                    failed.push(*seed);
                }
                Err(e) => {
                    println!("seed {seed}: PANICKED {e}");
                    failed.push(*seed);
                }
            }
        }
    }
    if failed.is_empty() {
        println!("{} seeds passed", seeds.len());
        ExitCode::SUCCESS
    } else {
        println!("failed seeds: {failed:?}");
        ExitCode::FAILURE
    }
}
