//! `GET /v1/client/fs/logs/:alloc`: a task's stdout or stderr from the local client's alloc dir.
//!
//! A task's log is a series of rotated files `<alloc_dir>/alloc/logs/<task>.<type>.<N>`, N = 0,
//! 1, 2...; the highest N is the newest and older ones may have been deleted. The files, in
//! order of N, are read as one stream. `origin`/`offset` position the start in that stream;
//! `follow` keeps polling for new bytes and new files until the client goes away, the agent
//! shuts down, or the task's directory disappears. Without `plain=true` the bytes are sent as
//! Nomad's JSON frames (`StreamFrame`), concatenated.

use crate::error::ApiError;
use crate::query::Params;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use rpc::ClientFs;
use std::io::{ErrorKind, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use structs::StreamFrame;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a followed log is checked for new bytes.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// An idle followed framed stream sends an empty frame this often, so a gone client is noticed.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// The most bytes read (and sent in one frame) at once.
const CHUNK: u64 = 64 * 1024;

/// `GET /v1/client/fs/logs/:alloc?task=&type=&plain=&follow=&origin=&offset=`.
pub(crate) async fn logs(
    State(s): State<AppState>,
    Path(alloc_id): Path<String>,
    p: Params,
    shutdown: Option<Extension<CancellationToken>>,
) -> Result<Response, ApiError> {
    let task = match p.get("task") {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => return Err(ApiError::bad_request("must include task name")),
    };
    if task.contains(['/', '\\', '\0']) || task == ".." {
        return Err(ApiError::bad_request(format!("invalid task name {task:?}")));
    }
    let log_type = match p.get("type") {
        Some(t @ ("stdout" | "stderr")) => t.to_string(),
        _ => return Err(ApiError::bad_request("type must be stdout or stderr")),
    };
    let from_end = match p.get("origin") {
        None | Some("" | "start") => false,
        Some("end") => true,
        Some(_) => return Err(ApiError::bad_request("origin must be start or end")),
    };
    let offset = match p.get("offset") {
        None | Some("") => 0,
        Some(v) => v.parse::<u64>().map_err(|e| {
            ApiError::bad_request(format!("failed to parse offset field to integer: {e}"))
        })?,
    };
    let follow = p.bool_param("follow")?;
    let plain = p.bool_param("plain")?;

    let (client_fs, alloc_dir) = s.local_alloc_dir(&alloc_id)?;
    let source = LogSource {
        logs_dir: alloc_dir.join("alloc").join("logs"),
        task_dir: alloc_dir.join(&task),
        prefix: format!("{task}.{log_type}."),
    };
    let position = source
        .start_position(from_end, offset)
        .await
        .map_err(|e| ApiError::Internal(format!("failed to list log files: {e}")))?;
    if position.is_none() && !follow {
        return Err(ApiError::NotFound(format!(
            "log entry for task \"{task}\" and log type \"{log_type}\" not found"
        )));
    }
    tracing::debug!(alloc_id = %alloc_id, task = %task, log_type = %log_type, follow, plain, "streaming logs");
    let tail = Tail {
        source,
        position,
        from_end,
        offset,
        follow,
        plain,
        client_fs,
        alloc_id,
        shutdown: shutdown.map(|Extension(token)| token),
        last_sent: Instant::now(),
    };
    let stream = futures_util::stream::unfold(tail, |mut tail| async move {
        tail.next_chunk().await.map(|item| (item, tail))
    });
    let content_type = if plain {
        "text/plain; charset=utf-8"
    } else {
        "application/json"
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Where one task's log files of one type are.
struct LogSource {
    /// `<alloc_dir>/alloc/logs`.
    logs_dir: PathBuf,
    /// `<alloc_dir>/<task>`; following stops when it is gone.
    task_dir: PathBuf,
    /// `<task>.<type>.`, the file names' prefix before the index.
    prefix: String,
}

impl LogSource {
    /// The indexes of the existing files, ascending. A missing directory has none.
    async fn indexes(&self) -> std::io::Result<Vec<u64>> {
        let mut dir = match tokio::fs::read_dir(&self.logs_dir).await {
            Ok(dir) => dir,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut found = Vec::new();
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name();
            let idx = name
                .to_str()
                .and_then(|n| n.strip_prefix(&self.prefix))
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(idx) = idx {
                found.push(idx);
            }
        }
        found.sort_unstable();
        Ok(found)
    }

    fn path(&self, idx: u64) -> PathBuf {
        self.logs_dir.join(format!("{}{idx}", self.prefix))
    }

    /// The file's name as Nomad reports it in frames, relative to the alloc dir.
    fn frame_name(&self, idx: u64) -> String {
        format!("alloc/logs/{}{idx}", self.prefix)
    }

    /// The (file index, byte position) where reading starts: `offset` bytes from the start of
    /// the whole stream, or before its end with `from_end`. `None` when there are no files.
    async fn start_position(
        &self,
        from_end: bool,
        offset: u64,
    ) -> std::io::Result<Option<(u64, u64)>> {
        let mut sizes = Vec::new();
        for idx in self.indexes().await? {
            // A file deleted by rotation since the listing counts as empty.
            let len = tokio::fs::metadata(self.path(idx))
                .await
                .map_or(0, |m| m.len());
            sizes.push((idx, len));
        }
        let total: u64 = sizes.iter().map(|(_, len)| len).sum();
        let mut skip = if from_end {
            total.saturating_sub(offset)
        } else {
            offset.min(total)
        };
        for (i, &(idx, len)) in sizes.iter().enumerate() {
            if skip < len || i + 1 == sizes.len() {
                return Ok(Some((idx, skip.min(len))));
            }
            skip -= len;
        }
        Ok(None)
    }
}

/// What one read of the current file found.
enum Read {
    /// New bytes.
    Data(Bytes),
    /// Nothing past the position.
    Eof,
    /// The file is shorter than the position: it was truncated.
    Truncated,
    /// The file is gone (rotated away).
    Missing,
}

/// Reads at most `CHUNK` bytes of `path` from `pos`.
async fn read_at(path: &std::path::Path, pos: u64) -> std::io::Result<Read> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Read::Missing),
        Err(e) => return Err(e),
    };
    let len = file.metadata().await?.len();
    if len < pos {
        return Ok(Read::Truncated);
    }
    if len == pos {
        return Ok(Read::Eof);
    }
    file.seek(SeekFrom::Start(pos)).await?;
    let mut buf = Vec::new();
    file.take((len - pos).min(CHUNK))
        .read_to_end(&mut buf)
        .await?;
    if buf.is_empty() {
        return Ok(Read::Eof);
    }
    Ok(Read::Data(Bytes::from(buf)))
}

/// The state of one log response, read chunk by chunk.
struct Tail {
    source: LogSource,
    /// The current (file index, byte position), once there is a file.
    position: Option<(u64, u64)>,
    from_end: bool,
    offset: u64,
    follow: bool,
    plain: bool,
    client_fs: Arc<dyn ClientFs>,
    alloc_id: String,
    /// The agent's shutdown token (set by `serve`); a followed stream ends when it fires.
    shutdown: Option<CancellationToken>,
    /// When the last frame went out, for heartbeats.
    last_sent: Instant,
}

impl Tail {
    /// The next piece of the response body, or `None` when it ends.
    async fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            let Some((idx, pos)) = self.position else {
                // Following a task that has not written its first file yet.
                match self.source.start_position(self.from_end, self.offset).await {
                    Ok(Some(start)) => self.position = Some(start),
                    Ok(None) if self.wait().await => {}
                    Ok(None) => return None,
                    Err(e) => return Some(Err(e)),
                }
                continue;
            };
            let read = match read_at(&self.source.path(idx), pos).await {
                Ok(read) => read,
                Err(e) => return Some(Err(e)),
            };
            match read {
                Read::Data(bytes) => {
                    let end = pos + bytes.len() as u64;
                    self.position = Some((idx, end));
                    return Some(Ok(self.frame(idx, end, bytes, "")));
                }
                Read::Truncated => {
                    self.position = Some((idx, 0));
                    if !self.plain {
                        return Some(Ok(self.frame(idx, 0, Bytes::new(), "file truncated")));
                    }
                }
                Read::Eof | Read::Missing => {
                    let next = match self.source.indexes().await {
                        Ok(indexes) => indexes.into_iter().find(|&i| i > idx),
                        Err(e) => return Some(Err(e)),
                    };
                    if let Some(next) = next {
                        self.position = Some((next, 0));
                        continue;
                    }
                    if !self.follow {
                        return None;
                    }
                    if !self.plain && self.last_sent.elapsed() >= HEARTBEAT_INTERVAL {
                        self.last_sent = Instant::now();
                        return Some(Ok(encode(&StreamFrame::default())));
                    }
                    if !self.wait().await {
                        return None;
                    }
                }
            }
        }
    }

    /// The body bytes for data read from file `idx`, ending at byte `end` of that file.
    fn frame(&mut self, idx: u64, end: u64, data: Bytes, event: &str) -> Bytes {
        self.last_sent = Instant::now();
        if self.plain {
            return data;
        }
        encode(&StreamFrame {
            offset: i64::try_from(end).unwrap_or(i64::MAX),
            data: base64::engine::general_purpose::STANDARD.encode(&data),
            file: self.source.frame_name(idx),
            file_event: event.to_string(),
        })
    }

    /// Sleeps one poll interval; false when following must stop (shutdown, or the allocation or
    /// its task directory is gone).
    async fn wait(&self) -> bool {
        let shutdown = async {
            match &self.shutdown {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown => return false,
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        if self.client_fs.alloc_dir(&self.alloc_id).is_none() {
            return false;
        }
        tokio::fs::try_exists(&self.source.task_dir)
            .await
            .unwrap_or(false)
    }
}

fn encode(frame: &StreamFrame) -> Bytes {
    // Serializing a struct of strings and integers cannot fail.
    Bytes::from(serde_json::to_vec(frame).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use crate::testing::{app, call, FakeFs, FakeRpc};
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use axum::{Extension, Router};
    use base64::Engine;
    use futures_util::StreamExt;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;
    use structs::StreamFrame;
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    /// An alloc dir for alloc `a1` with task dir `web` and the given stdout files.
    fn setup(files: &[(u64, &str)]) -> (tempfile::TempDir, Arc<FakeRpc>, Arc<FakeFs>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("alloc/logs")).unwrap();
        std::fs::create_dir_all(dir.path().join("web")).unwrap();
        for (n, text) in files {
            write_log(dir.path(), *n, text);
        }
        let fs = Arc::new(FakeFs::default());
        fs.dirs
            .lock()
            .unwrap()
            .insert("a1".into(), dir.path().to_path_buf());
        (dir, Arc::new(FakeRpc::default()), fs)
    }

    fn write_log(alloc_dir: &Path, n: u64, text: &str) {
        std::fs::write(alloc_dir.join(format!("alloc/logs/web.stdout.{n}")), text).unwrap();
    }

    fn append_log(alloc_dir: &Path, n: u64, text: &str) {
        use std::io::Write;
        let path = alloc_dir.join(format!("alloc/logs/web.stdout.{n}"));
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn frames(body: &[u8]) -> Vec<StreamFrame> {
        serde_json::Deserializer::from_slice(body)
            .into_iter::<StreamFrame>()
            .map(Result::unwrap)
            .collect()
    }

    fn decode(frame: &StreamFrame) -> String {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&frame.data)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[tokio::test]
    async fn plain_read_joins_rotated_files_from_the_oldest_left() {
        let (dir, rpc, fs) = setup(&[(1, "hello "), (2, "world\n"), (10, "!")]);
        write_log(dir.path(), 0, "");
        std::fs::remove_file(dir.path().join("alloc/logs/web.stdout.0")).unwrap();
        std::fs::write(dir.path().join("alloc/logs/web.stderr.0"), "oops").unwrap();
        std::fs::write(dir.path().join("alloc/logs/web.stdout.x"), "junk").unwrap();
        let uri = "/v1/client/fs/logs/a1?task=web&type=stdout&plain=true";
        let r = call(&app(&rpc, Some(&fs)), Method::GET, uri, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
        assert_eq!(r.text(), "hello world\n!");
        let uri = "/v1/client/fs/logs/a1?task=web&type=stderr&plain=true";
        let r = call(&app(&rpc, Some(&fs)), Method::GET, uri, None).await;
        assert_eq!(r.text(), "oops");
    }

    #[tokio::test]
    async fn origin_end_offset_counts_back_across_files() {
        let (_dir, rpc, fs) = setup(&[(0, "abc"), (1, "def")]);
        let app = app(&rpc, Some(&fs));
        for (query, want) in [
            ("origin=end&offset=4", "cdef"),
            ("origin=end&offset=2", "ef"),
            ("origin=end&offset=100", "abcdef"),
            ("origin=end", ""),
            ("origin=start&offset=4", "ef"),
            ("offset=1", "bcdef"),
        ] {
            let uri = format!("/v1/client/fs/logs/a1?task=web&type=stdout&plain=true&{query}");
            let r = call(&app, Method::GET, &uri, None).await;
            assert_eq!(r.status, StatusCode::OK, "{query}");
            assert_eq!(r.text(), want, "{query}");
        }
    }

    #[tokio::test]
    async fn framed_output_names_files_and_end_offsets() {
        let (_dir, rpc, fs) = setup(&[(0, "abc"), (1, "de")]);
        let uri = "/v1/client/fs/logs/a1?task=web&type=stdout";
        let r = call(&app(&rpc, Some(&fs)), Method::GET, uri, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), "application/json");
        let raw: serde_json::Value = serde_json::Deserializer::from_slice(&r.body)
            .into_iter()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(raw["File"], "alloc/logs/web.stdout.0");
        assert_eq!(raw["Offset"], 3);
        let frames = frames(&r.body);
        assert_eq!(frames.len(), 2);
        assert_eq!(decode(&frames[0]), "abc");
        assert_eq!(frames[1].file, "alloc/logs/web.stdout.1");
        assert_eq!(frames[1].offset, 2);
        assert_eq!(decode(&frames[1]), "de");
    }

    #[tokio::test]
    async fn bad_requests_and_unknown_allocations() {
        let (_dir, rpc, fs) = setup(&[(0, "abc")]);
        let app_fs = app(&rpc, Some(&fs));
        for (uri, status, text) in [
            (
                "/v1/client/fs/logs/a1?type=stdout",
                400,
                "must include task name",
            ),
            (
                "/v1/client/fs/logs/a1?task=web&type=both",
                400,
                "type must be stdout or stderr",
            ),
            (
                "/v1/client/fs/logs/a1?task=web",
                400,
                "type must be stdout or stderr",
            ),
            (
                "/v1/client/fs/logs/a1?task=web&type=stdout&origin=middle",
                400,
                "origin must be start or end",
            ),
            (
                "/v1/client/fs/logs/a1?task=web&type=stdout&follow=often",
                400,
                "Failed to parse value of \"follow\" (often) as a bool",
            ),
            (
                "/v1/client/fs/logs/a1?task=..%2F..%2Fetc&type=stdout",
                400,
                "invalid task name \"../../etc\"",
            ),
            (
                "/v1/client/fs/logs/zz?task=web&type=stdout",
                404,
                "Unknown allocation \"zz\"",
            ),
            (
                "/v1/client/fs/logs/a1?task=db&type=stdout",
                404,
                "log entry for task \"db\" and log type \"stdout\" not found",
            ),
        ] {
            let r = call(&app_fs, Method::GET, uri, None).await;
            assert_eq!(r.status.as_u16(), status, "{uri}");
            assert_eq!(r.text(), text, "{uri}");
        }
        let r = call(
            &app_fs,
            Method::GET,
            "/v1/client/fs/logs/a1?task=web&type=stdout&offset=-1",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.text().starts_with("failed to parse offset field"),
            "{}",
            r.text()
        );
        let no_client = app(&rpc, None);
        let r = call(
            &no_client,
            Method::GET,
            "/v1/client/fs/logs/a1?task=web&type=stdout",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.text(), "Unknown allocation \"a1\"");
    }

    /// Reads the body stream until `want` has arrived (in total), with a deadline.
    async fn read_until(stream: &mut axum::body::BodyDataStream, got: &mut String, want: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !got.contains(want) {
            let chunk = tokio::time::timeout_at(deadline, stream.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {want:?}; got {got:?}"))
                .expect("stream ended early")
                .unwrap();
            got.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    async fn assert_ends(stream: &mut axum::body::BodyDataStream) {
        let end = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
        assert!(matches!(end, Ok(None)), "stream did not end: {end:?}");
    }

    fn follow_request() -> Request<Body> {
        let uri = "/v1/client/fs/logs/a1?task=web&type=stdout&plain=true&follow=true";
        Request::get(uri).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn follow_picks_up_appends_and_new_files_until_the_task_dir_goes() {
        let (dir, rpc, fs) = setup(&[(0, "one\n")]);
        let resp = app(&rpc, Some(&fs))
            .oneshot(follow_request())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut stream = resp.into_body().into_data_stream();
        let mut got = String::new();
        read_until(&mut stream, &mut got, "one\n").await;
        append_log(dir.path(), 0, "two\n");
        read_until(&mut stream, &mut got, "two\n").await;
        write_log(dir.path(), 1, "three\n");
        read_until(&mut stream, &mut got, "three\n").await;
        assert_eq!(got, "one\ntwo\nthree\n");
        std::fs::remove_dir_all(dir.path().join("web")).unwrap();
        assert_ends(&mut stream).await;
    }

    #[tokio::test]
    async fn follow_waits_for_the_first_file_and_ends_on_shutdown() {
        let (dir, rpc, fs) = setup(&[]);
        let token = CancellationToken::new();
        let router: Router = app(&rpc, Some(&fs)).layer(Extension(token.clone()));
        let resp = router.oneshot(follow_request()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut stream = resp.into_body().into_data_stream();
        write_log(dir.path(), 0, "late\n");
        let mut got = String::new();
        read_until(&mut stream, &mut got, "late\n").await;
        token.cancel();
        assert_ends(&mut stream).await;
    }
}
