//! `qcs`: quantized compressed sensing with score-based generative priors.

mod args;
mod backend;
mod bench;
mod eval;
mod loss;
mod measure;
mod output;
mod plot;
mod reconstruct;
mod report;
mod results;
mod sample;
mod setup;
mod stdout;
mod sweep;
mod train;

use anyhow::Result;
use clap::Parser;
use qcs_cli::config;

use args::{Cli, Command};
use stdout::outln;

fn main() -> Result<()> {
    let cli = Cli::parse();
    qcs_score_net::set_conv_algorithm(
        cli.conv
            .map_or(backend::DEFAULT_CONV, args::ConvChoice::algorithm),
    );
    backend::run_command(|| run(cli.command))
}

/// Runs one command.
fn run(command: Command) -> Result<()> {
    match command {
        Command::Reconstruct(args) => reconstruct::run(&args),
        Command::Measure(args) => measure::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Sample(args) => sample::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Loss(args) => loss::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Info => {
            let device = backend::device();
            outln!("qcs {}", env!("CARGO_PKG_VERSION"));
            outln!("backend: {}", backend::BACKEND);
            outln!("device: {device:?}");
            outln!("convolutions: {}", qcs_score_net::conv_algorithm().name());
            if let Some(threads) = backend::cpu_threads() {
                outln!("cpu threads: {threads}");
            }
            if let Some(path) = backend::tuning_cache() {
                outln!("tuning cache: {}", path.display());
            }
            Ok(())
        }
    }
}
