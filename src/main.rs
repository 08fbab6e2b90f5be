//! The `caravan` binary: CLI entry point (`caravan agent` runs the agent).

// The state store and snapshots allocate millions of small objects; mimalloc handles that
// pattern far better than glibc's allocator (a cold restart with a million allocations
// decodes about twice as fast).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, mimalloc.h of the
/// bundled v3 sources; libmimalloc-sys names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays committed before mimalloc returns it to the kernel. mimalloc's
/// default, 10 ms, returned memory the state store freed as it changed and took back
/// moments later, every page faulted in again and zeroed by the kernel: a third of a
/// follower's CPU in C1M. A second keeps memory that is reused, and still returns what is
/// not. `MIMALLOC_PURGE_DELAY` in the environment overrides it.
const PURGE_DELAY_MS: std::os::raw::c_long = 1000;

fn main() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options to a value in its documented range; mimalloc
        // reads its options atomically, so setting one while allocating is allowed.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    std::process::exit(caravan::cli::main());
}
