//! `artifact` blocks: files fetched into the task directory before the task starts, from
//! `file://` paths or `http://` URLs (redirects followed), checked against `options {
//! checksum = "sha256:<hex>" }` (also `sha512`, `md5`) before they are kept, and unpacked when
//! they are tar archives (`.tar`, `.tar.gz`, `.tgz`) unless `options { archive = false }`.
//! `https://` needs TLS, which this client does not carry yet: such a source fails clearly.

use crate::alloc_dir::inside;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use structs::TaskArtifact;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The longest an artifact download may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);
/// The most redirects followed.
const MAX_REDIRECTS: usize = 5;

/// Fetches every artifact of a task into `task_dir`; the error names the artifact and why.
pub(crate) async fn fetch_all(artifacts: &[TaskArtifact], task_dir: &Path) -> Result<(), String> {
    for a in artifacts {
        fetch(a, task_dir)
            .await
            .map_err(|e| format!("artifact {:?}: {e}", a.getter_source))?;
    }
    Ok(())
}

async fn fetch(a: &TaskArtifact, task_dir: &Path) -> Result<(), String> {
    let source = a.getter_source.trim();
    let name = source
        .split(['?', '#'])
        .next()
        .unwrap_or(source)
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("artifact")
        .to_string();
    let bytes = if let Some(path) = source.strip_prefix("file://") {
        tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read {path}: {e}"))?
    } else if source.starts_with("http://") {
        tokio::time::timeout(FETCH_TIMEOUT, http_get(source, &a.getter_headers))
            .await
            .map_err(|_| format!("no complete answer within {FETCH_TIMEOUT:?}"))??
    } else if source.starts_with("https://") {
        return Err("https sources are not supported by this client yet (no TLS)".into());
    } else {
        return Err("the source must be a file:// path or an http:// URL".into());
    };
    if let Some(sum) = a.getter_options.get("checksum") {
        verify(&bytes, sum)?;
    }
    let rel = if a.relative_dest.is_empty() {
        "local/"
    } else {
        a.relative_dest.as_str()
    };
    let dest = inside(task_dir, rel)?;
    let archive = a.getter_options.get("archive").map(String::as_str) != Some("false")
        && a.getter_mode != "file"
        && [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|s| name.ends_with(s));
    if a.getter_mode == "file" {
        write(&dest, &bytes).await
    } else if archive {
        unpack(&dest, &name, &bytes).await
    } else {
        // The file itself may not be a symlink out of the task directory either.
        let file = inside(task_dir, &format!("{}/{name}", rel.trim_end_matches('/')))?;
        write(&file, &bytes).await
    }
}

/// Checks `bytes` against `type:hex`.
fn verify(bytes: &[u8], sum: &str) -> Result<(), String> {
    use sha2::Digest;
    let (kind, want) = sum
        .split_once(':')
        .ok_or_else(|| format!("checksum {sum:?} must be \"type:value\""))?;
    let got = match kind {
        "sha256" => hex(&sha2::Sha256::digest(bytes)),
        "sha512" => hex(&sha2::Sha512::digest(bytes)),
        "md5" => hex(&md5::Md5::digest(bytes)),
        other => {
            return Err(format!(
                "checksum type {other:?}: use sha256, sha512 or md5"
            ))
        }
    };
    if got.eq_ignore_ascii_case(want.trim()) {
        Ok(())
    } else {
        Err(format!(
            "checksums did not match: expected {kind}:{}, got {kind}:{got}",
            want.trim()
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    tokio::fs::write(path, bytes)
        .await
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Unpacks a tar archive into `dest` with the system's `tar`, refusing members that would
/// land outside it.
async fn unpack(dest: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let gz = name.ends_with(".gz") || name.ends_with(".tgz");
    let scratch: PathBuf = dest.join(format!(".{name}.download"));
    write(&scratch, bytes).await?;
    let listing = tokio::process::Command::new("tar")
        .arg(if gz { "-tzf" } else { "-tf" })
        .arg(&scratch)
        .output()
        .await
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let result = if !listing.status.success() {
        Err(format!(
            "not a readable tar archive: {}",
            String::from_utf8_lossy(&listing.stderr).trim()
        ))
    } else if String::from_utf8_lossy(&listing.stdout)
        .lines()
        .any(|m| m.starts_with('/') || m.split('/').any(|c| c == ".."))
    {
        Err("the archive has members outside its directory".into())
    } else {
        let out = tokio::process::Command::new("tar")
            .arg(if gz { "-xzf" } else { "-xf" })
            .arg(&scratch)
            .arg("--no-same-owner")
            .arg("-C")
            .arg(dest)
            .output()
            .await
            .map_err(|e| format!("cannot run tar: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "cannot unpack: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    let _ = tokio::fs::remove_file(&scratch).await;
    result
}

/// A plain HTTP/1.1 GET, following redirects; the body of a 200.
async fn http_get(url: &str, headers: &BTreeMap<String, String>) -> Result<Vec<u8>, String> {
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("redirected to {url}, which is not http://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let mut conn = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        conn.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("cannot send the request: {e}"))?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw)
            .await
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("the answer has no complete header")?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let body = &raw[split + 4..];
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or("the answer has no status line")?;
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        match status {
            200 => {
                let chunked =
                    header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
                return if chunked {
                    dechunk(body)
                } else if let Some(len) = header("content-length").and_then(|l| l.parse().ok()) {
                    if body.len() < len {
                        Err(format!(
                            "the answer ended after {} of {len} bytes",
                            body.len()
                        ))
                    } else {
                        Ok(body[..len].to_vec())
                    }
                } else {
                    Ok(body.to_vec())
                };
            }
            301 | 302 | 303 | 307 | 308 => {
                let to = header("location").ok_or("a redirect without a Location")?;
                url = if to.starts_with("http") {
                    to
                } else {
                    format!("http://{authority}{to}")
                };
            }
            other => return Err(format!("the server answered {other}")),
        }
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

/// Decodes a chunked body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunked answer cut short")?;
        let size_text = String::from_utf8_lossy(&body[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("a chunked answer cut short".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn artifact(source: &str) -> TaskArtifact {
        TaskArtifact {
            getter_source: source.into(),
            ..Default::default()
        }
    }

    /// Serves `body` once per connection on loopback, like a static file server (chunked
    /// when asked); `/old` redirects to `/new`.
    async fn serve(body: Vec<u8>, chunked: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let answer = if req.starts_with("GET /old") {
                        b"HTTP/1.1 302 Found\r\nLocation: /new/app.bin\r\nContent-Length: 0\r\n\r\n"
                            .to_vec()
                    } else if !req.contains("X-Token: s3cret") {
                        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec()
                    } else if chunked {
                        let mut a =
                            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                        for part in body.chunks(7) {
                            a.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                            a.extend_from_slice(part);
                            a.extend_from_slice(b"\r\n");
                        }
                        a.extend_from_slice(b"0\r\n\r\n");
                        a
                    } else {
                        let mut a =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                                .into_bytes();
                        a.extend_from_slice(&body);
                        a
                    };
                    let _ = s.write_all(&answer).await;
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn http_artifacts_are_fetched_checked_and_kept() {
        let body = b"#!/bin/sh\necho fetched\n".to_vec();
        let sum = hex(&sha2::Sha256::digest(&body));
        for chunked in [false, true] {
            let base = serve(body.clone(), chunked).await;
            let dir = tempfile::tempdir().unwrap();
            let mut a = artifact(&format!("{base}/old"));
            a.getter_headers.insert("X-Token".into(), "s3cret".into());
            a.getter_options
                .insert("checksum".into(), format!("sha256:{sum}"));
            fetch_all(&[a.clone()], dir.path()).await.unwrap();
            // Redirected to /new/app.bin: kept under its own name in local/.
            assert_eq!(std::fs::read(dir.path().join("local/old")).unwrap(), body);

            a.getter_source = format!("{base}/new/app.bin");
            a.relative_dest = "local/bin".into();
            fetch_all(&[a.clone()], dir.path()).await.unwrap();
            assert_eq!(
                std::fs::read(dir.path().join("local/bin/app.bin")).unwrap(),
                body
            );

            // A wrong checksum fails and keeps nothing.
            a.relative_dest = "local/other".into();
            a.getter_options
                .insert("checksum".into(), format!("sha256:{}", "0".repeat(64)));
            let err = fetch_all(&[a.clone()], dir.path()).await.unwrap_err();
            assert!(err.contains("checksums did not match"), "{err}");
            assert!(!dir.path().join("local/other").exists());

            // Without its header the server refuses: the status is in the error.
            let err = fetch_all(&[artifact(&format!("{base}/new/app.bin"))], dir.path())
                .await
                .unwrap_err();
            assert!(err.contains("answered 403"), "{err}");
        }
    }

    #[tokio::test]
    async fn file_sources_archives_and_bad_sources() {
        let dir = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("pkg/bin")).unwrap();
        std::fs::write(src.path().join("pkg/bin/run.sh"), "echo run").unwrap();
        let tarball = src.path().join("pkg.tar.gz");
        let made = std::process::Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(src.path())
            .arg("pkg")
            .status()
            .unwrap();
        assert!(made.success());
        let md5 = hex(&md5::Md5::digest(std::fs::read(&tarball).unwrap()));
        let mut a = artifact(&format!("file://{}", tarball.display()));
        a.getter_options
            .insert("checksum".into(), format!("md5:{md5}"));
        fetch_all(&[a.clone()], dir.path()).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("local/pkg/bin/run.sh")).unwrap(),
            "echo run"
        );
        // archive = false keeps the tarball itself.
        a.getter_options.insert("archive".into(), "false".into());
        fetch_all(&[a], dir.path()).await.unwrap();
        assert!(dir.path().join("local/pkg.tar.gz").is_file());

        for (source, want) in [
            ("file:///no/such/file", "cannot read /no/such/file"),
            (
                "https://example.invalid/x",
                "https sources are not supported",
            ),
            ("ftp://x/y", "must be a file:// path or an http:// URL"),
        ] {
            let err = fetch_all(&[artifact(source)], dir.path())
                .await
                .unwrap_err();
            assert!(err.contains(want), "{source}: {err}");
        }
        let mut escape = artifact(&format!("file://{}", tarball.display()));
        escape.relative_dest = "../../outside".into();
        let err = fetch_all(&[escape], dir.path()).await.unwrap_err();
        assert!(err.contains("inside the task directory"), "{err}");
        // A symlink already in the task directory does not lead the download out.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("plain.txt"), "data").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("victim"),
            dir.path().join("local/plain.txt"),
        )
        .unwrap();
        let err = fetch_all(
            &[artifact(&format!(
                "file://{}",
                src.path().join("plain.txt").display()
            ))],
            dir.path(),
        )
        .await
        .unwrap_err();
        assert!(err.contains("inside the task directory"), "{err}");
        assert!(!outside.path().join("victim").exists());
    }
}
