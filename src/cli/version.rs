//! `caravan version`.

/// The version lines: `Caravan v0.1.0` and the build information.
pub(crate) fn lines() -> String {
    format!(
        "Caravan v{}\nNomad API compatible (v1); built with Rust for {}-{}\n",
        structs::VERSION,
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// Prints the version.
pub(crate) fn version() -> anyhow::Result<i32> {
    print!("{}", lines());
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_line_is_the_version() {
        let text = super::lines();
        assert_eq!(
            text.lines().next(),
            Some(format!("Caravan v{}", structs::VERSION).as_str())
        );
        assert_eq!(text.lines().count(), 2);
    }
}
