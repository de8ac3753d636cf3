//! `gateway`: parse the command line and configuration, then hand over to the library.

#![forbid(unsafe_code)]

use clap::Parser;
use coach_gateway::cli::{self, Cli};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let config = match cli::load_config(&cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(cli::EXIT_CONFIG);
        }
    };
    if let Err(e) = cli::run(cli, config).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
