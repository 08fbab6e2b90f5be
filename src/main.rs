//! The `caravan` binary: CLI entry point (`caravan agent` runs the agent).

fn main() {
    std::process::exit(caravan::cli::main());
}
