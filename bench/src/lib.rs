//! # rcim-bench
//!
//! Measures rcimd against the physical ceiling of the machine it runs on and
//! against Mosquitto, in the same run, and prints every figure as a ratio to a
//! baseline measured seconds before it: these machines are shared and noisy, so an
//! absolute number from another day says little.
//!
//! `cargo run --release -p rcim-bench -- all` runs the six scenarios of issue 7
//! (see [`scenarios`]) with real processes: `rcimd` with a fresh data dir, the
//! reference `rcim-server` or the driver's [bench upstream](upstream), and N
//! `bench-subscriber` processes linking `rcim-client`. Results go to
//! `target/bench/results.{json,md}` and `target/bench/chart.png`; see
//! `docs/PERFORMANCE.md` for the latest figures and what bounds them.
//!
//! Layout: [`payload`] (what is sent and how it is stamped), [`control`] (the
//! driver ↔ subscriber channel), [`procs`] (binaries, child processes, `/proc`),
//! [`upstream`] (the bench IM server), [`mqtt`] (a minimal MQTT client),
//! [`fanout`] (fan-out runs and their accounting), [`baseline`] (raw sockets,
//! SQLite, Mosquitto), [`scenarios`], [`stats`] and [`report`].

pub mod baseline;
pub mod control;
pub mod encryption;
pub mod fanout;
pub mod mqtt;
pub mod payload;
pub mod procs;
pub mod report;
pub mod scenarios;
pub mod stats;
pub mod upstream;
