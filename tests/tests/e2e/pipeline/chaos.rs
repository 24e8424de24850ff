//! The fault & abuse suite's short form (docs/chaos.md). Replay a failing run's faults with
//! `HERALD_CHAOS_SEED=N` (the seed is printed at the top of the table).

use herald_tests::chaos::{self, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_short_every_fault_once_loses_and_duplicates_nothing() {
    let seed = std::env::var("HERALD_CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(1);
    let report = chaos::run(Config::short(seed)).await;
    println!("{}", report.table);
    assert!(
        report.passed(),
        "fault & abuse suite (short form, seed {seed}) missed targets:\n{}\n{}",
        report.failures(),
        report.table
    );
}
