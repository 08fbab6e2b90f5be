//! `POST /v1/client/allocation/:id/signal` (`{"Task", "Signal"}`), `.../restart`
//! (`{"TaskName", "AllTasks"}`) and `GET .../stats`: the local client's running tasks, as
//! Nomad's client API.

use crate::error::ApiError;
use crate::query::{json, JsonBody, Params};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use rpc::TaskControlError;

/// The signal request body.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct SignalRequest {
    task: String,
    signal: String,
}

/// The restart request body.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct RestartRequest {
    task_name: String,
    all_tasks: bool,
}

fn control_err(e: TaskControlError) -> ApiError {
    match e {
        TaskControlError::UnknownAlloc(_) => ApiError::NotFound(e.to_string()),
        TaskControlError::NotRunning(_) | TaskControlError::BadSignal(_) => {
            ApiError::bad_request(e.to_string())
        }
    }
}

/// `POST`/`PUT /v1/client/allocation/:id/signal`; no signal means SIGKILL (Nomad).
pub(crate) async fn signal(
    State(s): State<AppState>,
    Path(alloc_id): Path<String>,
    p: Params,
    JsonBody(req): JsonBody<SignalRequest>,
) -> Result<Response, ApiError> {
    let fs = s.local_client(&alloc_id)?;
    let name = if req.signal.is_empty() {
        "SIGKILL"
    } else {
        req.signal.as_str()
    };
    let task = Some(req.task.as_str()).filter(|t| !t.is_empty());
    fs.signal_tasks(&alloc_id, task, name)
        .await
        .map_err(control_err)?;
    Ok(json(&p, &serde_json::json!({})))
}

/// `POST`/`PUT /v1/client/allocation/:id/restart`: one task, or all with `AllTasks` or no
/// task named.
pub(crate) async fn restart(
    State(s): State<AppState>,
    Path(alloc_id): Path<String>,
    p: Params,
    JsonBody(req): JsonBody<RestartRequest>,
) -> Result<Response, ApiError> {
    let fs = s.local_client(&alloc_id)?;
    if req.all_tasks && !req.task_name.is_empty() {
        return Err(ApiError::bad_request(
            "task name cannot be set when restarting all tasks",
        ));
    }
    let task = Some(req.task_name.as_str()).filter(|t| !t.is_empty());
    fs.restart_tasks(&alloc_id, task)
        .await
        .map_err(control_err)?;
    Ok(json(&p, &serde_json::json!({})))
}

/// `GET /v1/client/allocation/:id/stats`: Nomad's `AllocResourceUsage`.
pub(crate) async fn stats(
    State(s): State<AppState>,
    Path(alloc_id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let fs = s.local_client(&alloc_id)?;
    let usage = fs.alloc_stats(&alloc_id).await.map_err(control_err)?;
    Ok(json(&p, &usage))
}

#[cfg(test)]
mod tests {
    use crate::testing::{app, call, FakeFs, FakeRpc};
    use axum::http::Method;
    use std::sync::Arc;

    #[tokio::test]
    async fn signals_and_restarts_reach_the_client_with_nomads_bodies() {
        let fs = Arc::new(FakeFs::default());
        fs.dirs
            .lock()
            .unwrap()
            .insert("a1".into(), std::env::temp_dir());
        let app = app(&Arc::new(FakeRpc::default()), Some(&fs));
        let a = call(
            &app,
            Method::POST,
            "/v1/client/allocation/a1/signal",
            Some(r#"{"Task":"web","Signal":"SIGUSR1"}"#),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text());
        let a = call(
            &app,
            Method::PUT,
            "/v1/client/allocation/a1/signal",
            Some("{}"),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text());
        let a = call(
            &app,
            Method::POST,
            "/v1/client/allocation/a1/restart",
            Some(r#"{"TaskName":"web"}"#),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(
            *fs.controls.lock().unwrap(),
            [
                (
                    "a1".to_string(),
                    Some("web".to_string()),
                    Some("SIGUSR1".to_string())
                ),
                ("a1".to_string(), None, Some("SIGKILL".to_string())),
                ("a1".to_string(), Some("web".to_string()), None),
            ]
        );
        for (uri, body, status, want) in [
            (
                "/v1/client/allocation/a1/signal",
                r#"{"Signal":"SIGNOPE"}"#,
                400,
                "invalid signal",
            ),
            (
                "/v1/client/allocation/zz/signal",
                "{}",
                404,
                "Unknown allocation \"zz\"",
            ),
            (
                "/v1/client/allocation/a1/restart",
                r#"{"TaskName":"web","AllTasks":true}"#,
                400,
                "cannot be set",
            ),
            (
                "/v1/client/allocation/a1/restart",
                r#"{"TaskName":"gone"}"#,
                400,
                "Task not running: gone",
            ),
            ("/v1/client/allocation/a1/restart", "{not json", 400, ""),
        ] {
            let a = call(&app, Method::POST, uri, Some(body)).await;
            assert_eq!(a.status, status, "{uri} {body}: {}", a.text());
            assert!(a.text().contains(want), "{uri}: {}", a.text());
        }
    }

    #[tokio::test]
    async fn stats_are_nomads_alloc_resource_usage() {
        let fs = Arc::new(FakeFs::default());
        fs.dirs
            .lock()
            .unwrap()
            .insert("a1".into(), std::env::temp_dir());
        let app = app(&Arc::new(FakeRpc::default()), Some(&fs));
        let a = call(&app, Method::GET, "/v1/client/allocation/a1/stats", None).await;
        assert_eq!(a.status, 200, "{}", a.text());
        let v: serde_json::Value = a.json();
        assert_eq!(v["ResourceUsage"]["MemoryStats"]["RSS"], 4096);
        assert!(v["ResourceUsage"]["CpuStats"]["Percent"].is_number());
        assert!(v["Tasks"]["web"]["ResourceUsage"].is_object());
        let a = call(&app, Method::GET, "/v1/client/allocation/zz/stats", None).await;
        assert_eq!(a.status, 404, "{}", a.text());
    }
}
