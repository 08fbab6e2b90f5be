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
/// follower's CPU in C1M. At 1 s the C1M leader still faulted a fifth more pages than with
/// no purging at all (its evaluations free and take back megabytes in bursts); at 10 s it
/// faults as few, and memory that stays unused is still returned. `MIMALLOC_PURGE_DELAY` in
/// the environment overrides it.
const PURGE_DELAY_MS: std::os::raw::c_long = 10_000;

/// mimalloc's `mi_option_allow_thp` (as above).
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

fn main() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options to a value in its documented range; mimalloc
        // reads its options atomically, so setting one while allocating is allowed.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        disable_transparent_huge_pages();
    }
    std::process::exit(caravan::cli::main());
}

/// Transparent huge pages off for this process. mimalloc asks for them on its arenas; every
/// fault in such a range then zeroes 2 MiB, and purged ranges fault in again whole: with them
/// the C1M leader spent a sixth of its CPU in the kernel's `clear_page` and the followers
/// used 40% more CPU (docs/benchmarks.md). The option stops further requests; the `prctl`
/// also covers the arena mimalloc mapped before `main`. Tasks the client starts get THP back
/// (`drivers::process::restore_thp`). `MIMALLOC_ALLOW_THP` in the environment overrides it.
fn disable_transparent_huge_pages() {
    // SAFETY: sets one of mimalloc's options to a value in its documented range (see above).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0) };
    // SAFETY: prctl(PR_GET/SET_THP_DISABLE) take integer arguments and read or change only
    // this process's memory policy; failure (an old kernel) leaves THP as it was.
    let inherited = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
    if inherited != 0 {
        return;
    }
    // SAFETY: as above.
    let disabled = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if disabled == 0 {
        drivers::agent_disabled_thp();
    }
}
