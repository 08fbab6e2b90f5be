//! The docker tests' image, built here and never pulled: the std-only program in
//! `tests/fixtures/testbin/main.rs` compiled statically, imported FROM scratch as
//! `caravan-test:<hash of its source>` (so a changed program gets a new image). Shared with the
//! end-to-end tests through `#[path]`.

use std::process::Command;

const SOURCE: &str = include_str!("../../../../tests/fixtures/testbin/main.rs");

/// The image's name (`caravan-test:<hash>`).
pub(crate) fn name() -> String {
    // FNV-1a: stable across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in SOURCE.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("caravan-test:{h:016x}")
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// True when a Docker engine answers here; otherwise says why (the docker tests then run
/// nothing).
pub(crate) fn engine_available() -> bool {
    match run(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"])) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("docker tests not run here: no Docker engine ({e})");
            false
        }
    }
}

/// Builds the image unless the engine has it (once per test process); returns its name.
pub(crate) fn ensure() -> Result<String, String> {
    static BUILT: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> Result<String, String> {
    let image = name();
    if run(Command::new("docker").args(["image", "inspect", &image])).is_ok() {
        return Ok(image);
    }
    let dir = std::env::temp_dir().join(format!("caravan-test-image-{}", std::process::id()));
    let root = dir.join("root");
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let src = dir.join("main.rs");
    std::fs::write(&src, SOURCE).map_err(|e| e.to_string())?;
    let built = (|| {
        run(Command::new("rustc")
            .args([
                "--edition",
                "2021",
                "-O",
                "-C",
                "target-feature=+crt-static",
                "--target",
                "x86_64-unknown-linux-gnu",
                "-o",
            ])
            .arg(root.join("testbin"))
            .arg(&src))?;
        let tar = dir.join("image.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg("testbin"))?;
        run(Command::new("docker")
            .args(["import", "--change", "ENTRYPOINT [\"/testbin\"]"])
            .arg(&tar)
            .arg(&image))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    built.map(|_| image)
}

/// Saves the image under `tag` into the tarball `path`, then removes `tag` from the engine
/// (so a task must `load` it).
pub(crate) fn save_as(tag: &str, path: &std::path::Path) -> Result<(), String> {
    let image = ensure()?;
    run(Command::new("docker").args(["tag", &image, tag]))?;
    let saved = run(Command::new("docker")
        .args(["save", "-o"])
        .arg(path)
        .arg(tag));
    run(Command::new("docker").args(["rmi", tag]))?;
    saved.map(|_| ())
}

/// Removes `tag` from the engine (after a test that loaded it).
pub(crate) fn remove(tag: &str) {
    let _ = run(Command::new("docker").args(["rmi", "-f", tag]));
}

/// IDs of the containers labelled with `alloc_id` (`all`: stopped ones too).
pub(crate) fn containers_of(alloc_id: &str, all: bool) -> Vec<String> {
    let label = format!("label=com.hashicorp.nomad.alloc_id={alloc_id}");
    let mut cmd = Command::new("docker");
    cmd.arg("ps").arg("-q");
    if all {
        cmd.arg("-a");
    }
    run(cmd.args(["--filter", &label]))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}
