//! A webhook receiver on 127.0.0.1: answers each request as scripted (then 200) and
//! keeps every request it was sent, with when it came.

use std::{
    collections::{BTreeMap, VecDeque},
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    /// A status with a `Retry-After` header.
    RetryAfter(u16, &'static str),
    /// A redirect elsewhere (which must not be followed).
    Redirect(&'static str),
    /// Waits, then answers 200 (past the sender's timeout).
    Slow(Duration),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    /// Answered when the script is used up.
    then: Arc<Mutex<Reply>>,
}

impl Receiver {
    /// A receiver at `http://127.0.0.1:<port>/hook` answering `script`, then 200s.
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::answering(script, Reply::Status(200)).await
    }

    /// A receiver answering `script`, then always `then`.
    pub async fn answering(script: Vec<Reply>, then: Reply) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let then = Arc::new(Mutex::new(then));
        let (r, s, t) = (received.clone(), script.clone(), then.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (r, s, t) = (r.clone(), s.clone(), t.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (r, s, t) = (r.clone(), s.clone(), t.clone());
                        async move {
                            let at = Instant::now();
                            let path = req.uri().path().to_string();
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes().to_vec())
                                .unwrap_or_default();
                            r.lock().unwrap().push(Received {
                                at,
                                path,
                                headers,
                                body,
                            });
                            let reply = s
                                .lock()
                                .unwrap()
                                .pop_front()
                                .unwrap_or_else(|| t.lock().unwrap().clone());
                            let mut resp = Response::builder();
                            let status = match reply {
                                Reply::Status(code) => code,
                                Reply::RetryAfter(code, after) => {
                                    resp = resp.header("retry-after", after);
                                    code
                                }
                                Reply::Redirect(to) => {
                                    resp = resp.header("location", to);
                                    302
                                }
                                Reply::Slow(wait) => {
                                    tokio::time::sleep(wait).await;
                                    200
                                }
                            };
                            Ok::<_, Infallible>(
                                resp.status(status)
                                    .body(Full::new(bytes::Bytes::from_static(b"{}")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            received,
            script,
            then,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Scripts the next answers.
    pub fn script(&self, replies: Vec<Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    pub fn then(&self, reply: Reply) {
        *self.then.lock().unwrap() = reply;
    }
}
