//! The `caravan` binary: CLI entry point (`caravan agent` runs the agent).

// The state store and snapshots allocate millions of small objects; mimalloc handles that
// pattern far better than glibc's allocator (a cold restart with a million allocations
// decodes about twice as fast).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(caravan::cli::main());
}
