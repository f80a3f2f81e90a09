//! A loopback HTTP proxy in front of the S3 emulator that injects a real network
//! fault: it cuts the connection on chosen requests (e.g. the second UploadPart).
//! Requests are forwarded unchanged (Host included), so SigV4 signatures still verify.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};

pub struct FaultProxy {
    pub url: String,
    pub cut: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) that drops the connection of
/// every request for which `should_cut(method, path_and_query)` is true.
pub async fn start(upstream: String, should_cut: fn(&str, &str) -> bool) -> FaultProxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr: SocketAddr = listener.local_addr().expect("proxy address");
    let cut = Arc::new(AtomicUsize::new(0));
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let counter = cut.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let client = client.clone();
            let upstream = upstream.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    let client = client.clone();
                    let upstream = upstream.clone();
                    let counter = counter.clone();
                    async move {
                        let path = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default();
                        if should_cut(req.method().as_str(), &path) {
                            counter.fetch_add(1, Ordering::SeqCst);
                            return Err::<hyper::Response<Full<Bytes>>, _>("injected fault: connection cut");
                        }
                        let (mut parts, body) = req.into_parts();
                        let body = body.collect().await.map_err(|_| "read body")?.to_bytes();
                        parts.uri = format!("{upstream}{path}").parse().map_err(|_| "uri")?;
                        let resp = client
                            .request(hyper::Request::from_parts(parts, Full::new(body)))
                            .await
                            .map_err(|_| "upstream")?;
                        let (parts, body) = resp.into_parts();
                        let body = body.collect().await.map_err(|_| "upstream body")?.to_bytes();
                        Ok(hyper::Response::from_parts(parts, Full::new(body)))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    FaultProxy {
        url: format!("http://{addr}"),
        cut,
        task,
    }
}
