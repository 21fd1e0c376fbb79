//! `qcs`: quantized compressed sensing with score-based generative priors.

mod backend;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Quantized compressed sensing with score-based generative priors (QCS-SGM, QCS-SGM+).
#[derive(Parser, Debug)]
#[command(name = "qcs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the compiled-in backend and the device it uses.
    Info,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info => {
            let device = backend::device();
            println!("qcs {}", env!("CARGO_PKG_VERSION"));
            println!("backend: {}", backend::BACKEND);
            println!("device: {device:?}");
        }
    }
    Ok(())
}
