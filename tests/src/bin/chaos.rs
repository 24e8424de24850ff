//! `scripts/chaos` runs this: the fault & abuse suite (docs/chaos.md).
//!
//!   chaos [--short|--long] [--seed N] [--minutes M]
//!
//! Prints the table on stdout; exits 1 when any target is missed.

use std::process::ExitCode;

use herald_tests::chaos::{self, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let mut long = false;
    let mut seed: Option<u64> = None;
    let mut minutes = 15u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a number")))
        };
        match arg.as_str() {
            "--short" => long = false,
            "--long" => long = true,
            "--seed" => seed = Some(value("--seed")),
            "--minutes" => {
                minutes = value("--minutes");
                long = true;
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let config = if long {
        Config::long(seed, minutes)
    } else {
        Config::short(seed)
    };
    let report = chaos::run(config).await;
    println!("{}", report.table);
    if report.passed() {
        println!("every target met");
        ExitCode::SUCCESS
    } else {
        println!("{}", report.failures());
        ExitCode::FAILURE
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: chaos [--short|--long] [--seed N] [--minutes M]");
    std::process::exit(2);
}
