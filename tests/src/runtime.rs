//! A Lambda Runtime API (version 2018-06-01) of our own, to run the real `bootstrap`
//! binaries that `cargo lambda build` makes, as Lambda runs them: the process asks
//! `GET /runtime/invocation/next` for an event, answers it with
//! `POST /runtime/invocation/{id}/response` or `/error`, and reports a failed start
//! with `POST /runtime/init/error`. Invocations are queued one at a time; each
//! [`RuntimeApi::invoke`] waits for its answer. What the emulator saw is timed, so
//! the cold start (spawn to the first `next`) and each invocation can be measured.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    net::SocketAddr,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::oneshot};

/// How an invocation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `/response`: the handler's answer.
    Response(Vec<u8>),
    /// `/error`: the error document (`errorType`, `errorMessage`).
    Error(serde_json::Value),
}

#[derive(Default)]
struct State {
    queued: VecDeque<(String, Vec<u8>)>,
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    /// Wakes a `next` that waits for an event.
    wake: Option<oneshot::Sender<()>>,
    first_next: Option<Instant>,
    init_error: Option<serde_json::Value>,
}

/// The emulator, listening on 127.0.0.1.
#[derive(Clone)]
pub struct RuntimeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

fn answer(status: u16, body: impl Into<Bytes>, headers: &[(&str, String)]) -> Response<Full<Bytes>> {
    let mut resp = Response::builder().status(status);
    for (k, v) in headers {
        resp = resp.header(*k, v);
    }
    resp.body(Full::new(body.into())).unwrap()
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let api = Self {
            addr: listener.local_addr().unwrap(),
            state: Arc::default(),
        };
        let server = api.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let api = server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let api = api.clone();
                        async move { Ok::<_, Infallible>(api.serve(req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        api
    }

    async fn serve(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let rest = path.strip_prefix("/2018-06-01/runtime/").unwrap_or("");
        match (method.as_str(), rest.split('/').collect::<Vec<_>>().as_slice()) {
            ("GET", ["invocation", "next"]) => {
                let (id, event) = self.next().await;
                let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
                answer(
                    200,
                    event,
                    &[
                        ("lambda-runtime-aws-request-id", id),
                        ("lambda-runtime-deadline-ms", deadline.to_string()),
                        (
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:000000000000:function:local".into(),
                        ),
                        (
                            "lambda-runtime-trace-id",
                            "Root=1-00000000-000000000000000000000000".into(),
                        ),
                        ("content-type", "application/json".into()),
                    ],
                )
            }
            ("POST", ["invocation", id, kind @ ("response" | "error")]) => {
                let outcome = if *kind == "response" {
                    Outcome::Response(body.to_vec())
                } else {
                    Outcome::Error(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
                };
                let waiter = self.state.lock().unwrap().waiting.remove(*id);
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(outcome);
                        answer(202, r#"{"status":"OK"}"#, &[])
                    }
                    None => answer(400, r#"{"errorType":"InvalidRequestID"}"#, &[]),
                }
            }
            ("POST", ["init", "error"]) => {
                self.state.lock().unwrap().init_error =
                    Some(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
                answer(202, r#"{"status":"OK"}"#, &[])
            }
            _ => answer(404, r#"{"errorType":"NotFound"}"#, &[]),
        }
    }

    /// The next queued event, waiting for one.
    async fn next(&self) -> (String, Vec<u8>) {
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap();
                state.first_next.get_or_insert_with(Instant::now);
                if let Some(next) = state.queued.pop_front() {
                    return next;
                }
                let (tx, rx) = oneshot::channel();
                state.wake = Some(tx);
                rx
            };
            let _ = wait.await;
        }
    }

    /// Queues `event` and waits (up to `timeout`) for the function's answer.
    pub async fn invoke(&self, event: &[u8], timeout: Duration) -> Option<Outcome> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state.lock().unwrap();
            state.waiting.insert(id.clone(), tx);
            state.queued.push_back((id, event.to_vec()));
            if let Some(wake) = state.wake.take() {
                let _ = wake.send(());
            }
        }
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }

    /// When the process first asked for an event: the end of its init.
    pub fn first_next(&self) -> Option<Instant> {
        self.state.lock().unwrap().first_next
    }

    pub fn init_error(&self) -> Option<serde_json::Value> {
        self.state.lock().unwrap().init_error.clone()
    }
}

/// A `bootstrap` started against a [`RuntimeApi`], with Lambda's own variables;
/// killed when dropped.
pub struct Function {
    pub api: RuntimeApi,
    pub started: Instant,
    child: std::process::Child,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    /// Starts `bootstrap` with the environment `env` (the stack's), as function `name`.
    pub async fn start(bootstrap: &Path, name: &str, env: &[(String, String)]) -> Self {
        let api = RuntimeApi::start().await;
        let started = Instant::now();
        let child = std::process::Command::new(bootstrap)
            .envs(env.iter().cloned())
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bootstrap.display()));
        Self { api, started, child }
    }

    /// Waits until the process asks for its first event: its init time.
    pub async fn ready(&self, timeout: Duration) -> Option<Duration> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(at) = self.api.first_next() {
                return Some(at - self.started);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
