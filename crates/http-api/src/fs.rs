//! `GET /v1/client/fs/{ls,stat,cat}/:alloc?path=`: an allocation directory of the local client,
//! read-only (`caravan alloc fs`). Paths are relative to the allocation directory; one that
//! leaves it (`..`, or a symlink pointing out) is refused.

use crate::error::ApiError;
use crate::query::Params;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::path::{Component, PathBuf};
use structs::AllocFileInfo;

/// The path on disk of `path` in `alloc_id`'s directory.
fn resolve(s: &AppState, alloc_id: &str, p: &Params) -> Result<PathBuf, ApiError> {
    let (_, root) = s.local_alloc_dir(alloc_id)?;
    let rel = p.get("path").unwrap_or("/").trim_start_matches('/');
    let rel = std::path::Path::new(rel);
    if rel.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(ApiError::bad_request(format!(
            "path {:?} leaves the allocation directory",
            rel.display()
        )));
    }
    let full = root.join(rel);
    let (canon_root, canon) = (
        root.canonicalize().map_err(|e| {
            ApiError::Internal(format!("cannot read the allocation directory: {e}"))
        })?,
        full.canonicalize()
            .map_err(|e| ApiError::NotFound(format!("file {:?} not found: {e}", rel.display())))?,
    );
    if !canon.starts_with(&canon_root) {
        return Err(ApiError::bad_request(format!(
            "path {:?} leaves the allocation directory",
            rel.display()
        )));
    }
    Ok(canon)
}

fn mode_string(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::PermissionsExt;
    let kind = if meta.is_dir() {
        'd'
    } else if meta.file_type().is_symlink() {
        'L'
    } else {
        '-'
    };
    let bits = meta.permissions().mode();
    let mut s = String::from(kind);
    for shift in [6, 3, 0] {
        let b = (bits >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn info(path: &std::path::Path, name: String) -> Result<AllocFileInfo, ApiError> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| ApiError::NotFound(format!("file {name:?} not found: {e}")))?;
    let ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .unwrap_or(0);
    let content_type = if meta.is_file() {
        let mut head = vec![0u8; 512];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        head.truncate(n);
        let text = !head.contains(&0) && (std::str::from_utf8(&head).is_ok() || n == 512);
        if text {
            "text/plain; charset=utf-8"
        } else {
            "application/octet-stream"
        }
        .to_string()
    } else {
        String::new()
    };
    Ok(AllocFileInfo {
        name,
        is_dir: meta.is_dir(),
        size: meta.len(),
        file_mode: mode_string(&meta),
        mod_time: structs::time::rfc3339(ns),
        content_type,
    })
}

/// `GET /v1/client/fs/ls/:alloc?path=`: the entries of a directory, by name.
pub(crate) async fn ls(
    State(s): State<AppState>,
    Path(alloc_id): Path<String>,
    p: Params,
) -> Result<Json<Vec<AllocFileInfo>>, ApiError> {
    let dir = resolve(&s, &alloc_id, &p)?;
    if !dir.is_dir() {
        return Err(ApiError::bad_request(format!(
            "{:?} is a file, not a directory",
            p.get("path").unwrap_or("/")
        )));
    }
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| ApiError::Internal(format!("cannot list {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push(info(&entry.path(), name)?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(out))
}

/// `GET /v1/client/fs/stat/:alloc?path=`.
pub(crate) async fn stat(
    State(s): State<AppState>,
    Path(alloc_id): Path<String>,
    p: Params,
) -> Result<Json<AllocFileInfo>, ApiError> {
    let path = resolve(&s, &alloc_id, &p)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    Ok(Json(info(&path, name)?))
}

/// `GET /v1/client/fs/cat/:alloc?path=`: a file's bytes.
pub(crate) async fn cat(
    State(s): State<AppState>,
    Path(alloc_id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let path = resolve(&s, &alloc_id, &p)?;
    if path.is_dir() {
        return Err(ApiError::bad_request(format!(
            "{:?} is a directory; list it with ls",
            p.get("path").unwrap_or("/")
        )));
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read {}: {e}", path.display())))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

#[cfg(test)]
mod tests {
    use crate::testing::{app, call, FakeFs, FakeRpc};
    use axum::http::Method;
    use std::sync::Arc;

    #[tokio::test]
    async fn lists_stats_and_cats_inside_the_alloc_dir_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("web/local")).unwrap();
        std::fs::write(root.join("web/local/app.conf"), "port=8080\n").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("web/local/escape")).unwrap();
        let fs = Arc::new(FakeFs::default());
        fs.dirs
            .lock()
            .unwrap()
            .insert("a1".into(), root.to_path_buf());
        let app = app(&Arc::new(FakeRpc::default()), Some(&fs));
        let get = |uri: &'static str| {
            let app = app.clone();
            async move { call(&app, Method::GET, uri, None).await }
        };

        let a = get("/v1/client/fs/ls/a1?path=/web/local").await;
        assert_eq!(a.status, 200, "{}", a.text());
        let list: serde_json::Value = a.json();
        let conf = &list[0];
        assert_eq!(conf["Name"], "app.conf");
        assert_eq!(conf["IsDir"], false);
        assert_eq!(conf["Size"], 10);
        assert_eq!(conf["ContentType"], "text/plain; charset=utf-8");
        assert!(conf["FileMode"].as_str().unwrap().starts_with("-rw"));
        assert_eq!(list[1]["Name"], "escape");

        let a = get("/v1/client/fs/stat/a1?path=web").await;
        assert_eq!(a.status, 200, "{}", a.text());
        let st: serde_json::Value = a.json();
        assert_eq!(
            (st["Name"].as_str(), st["IsDir"].as_bool()),
            (Some("web"), Some(true))
        );
        assert!(st["FileMode"].as_str().unwrap().starts_with('d'));

        let a = get("/v1/client/fs/cat/a1?path=web/local/app.conf").await;
        assert_eq!((a.status.as_u16(), a.text().as_str()), (200, "port=8080\n"));

        for (uri, want_status, want) in [
            (
                "/v1/client/fs/cat/a1?path=../../etc/passwd",
                400,
                "leaves the allocation directory",
            ),
            (
                "/v1/client/fs/cat/a1?path=web/local/escape/passwd",
                400,
                "leaves the allocation directory",
            ),
            ("/v1/client/fs/cat/a1?path=web", 400, "is a directory"),
            (
                "/v1/client/fs/ls/a1?path=web/local/app.conf",
                400,
                "not a directory",
            ),
            ("/v1/client/fs/stat/a1?path=nope", 404, "not found"),
            ("/v1/client/fs/ls/zz", 404, "Unknown allocation \"zz\""),
        ] {
            let a = get(uri).await;
            assert_eq!(a.status.as_u16(), want_status, "{uri}: {}", a.text());
            assert!(a.text().contains(want), "{uri}: {}", a.text());
        }
    }
}
