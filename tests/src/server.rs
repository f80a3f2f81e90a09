//! The real `exportctl serve` binary as a child process on a [`TestStack`]'s own
//! tables, bucket and queue: what a user runs, signals and restarts included.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::TestStack;

/// `target/debug/exportctl`, beside this test binary (`target/debug/deps/<test>`):
/// `cargo test` does not build another package's binary, so `make test` runs `cargo
/// build --workspace` first.
pub fn exportctl_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/debug");
    let path = dir.join("exportctl");
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` before `cargo test` (make test does)",
        path.display()
    );
    path
}

/// A port nobody listens on now (the OS picks it), on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The variables that point `exportctl` at the stack's own tables, bucket and queue
/// (the rest comes from local.env, in the test's environment).
pub fn stack_env(stack: &TestStack) -> Vec<(String, String)> {
    let c = &stack.ctx.config;
    let t = &c.tables;
    [
        ("SESSIONS_TABLE", &t.sessions),
        ("SESSION_MESSAGES_TABLE", &t.session_messages),
        ("LEADS_TABLE", &t.leads),
        ("CHAT_MESSAGES_TABLE", &t.chat_messages),
        ("RATE_LIMITS_TABLE", &t.rate_limits),
        ("AUDIT_TABLE", &t.audit),
        ("JOBS_TABLE", &t.jobs),
        ("SCHEDULES_TABLE", &t.schedules),
        ("EXPORT_BUCKET", &c.delivery.bucket),
        ("EXPORT_QUEUE_URL", &c.jobs.queue_url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect()
}

/// A running `exportctl serve`; killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    pub base: String,
    pub log: PathBuf,
}

impl Server {
    /// Starts `exportctl serve` on a free port with the stack's env plus `extra`
    /// (which wins), and waits until it answers.
    pub async fn start(stack: &TestStack, extra: &[(&str, &str)]) -> Server {
        Self::start_with(stack, &[], extra).await
    }

    /// [`Server::start`] with more arguments for `serve` (`--no-worker`, ...).
    pub async fn start_with(stack: &TestStack, args: &[&str], extra: &[(&str, &str)]) -> Server {
        let port = free_port();
        let server = Self::spawn(
            stack,
            &[&["serve", "--port", &port.to_string()], args].concat(),
            extra,
            port,
        );
        server.wait_ready().await;
        server
    }

    /// `exportctl worker` (the worker and its sweeper, no API), with the stack's env
    /// plus `extra`; returns once it polls.
    pub async fn worker(stack: &TestStack, extra: &[(&str, &str)]) -> Server {
        let server = Self::spawn(stack, &["worker"], extra, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.log_text().contains("export worker polling") {
            assert!(
                Instant::now() < deadline,
                "exportctl worker did not start: {}",
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    fn spawn(stack: &TestStack, args: &[&str], extra: &[(&str, &str)], port: u16) -> Server {
        let log = std::env::temp_dir().join(format!("exportctl-{}.log", uuid::Uuid::new_v4().simple()));
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(exportctl_path());
        cmd.args(args)
            .envs(stack_env(stack))
            .env("RUST_LOG", "info,common::jobs=debug")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("exportctl starts");
        Server {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("exportctl serve did not listen on {}: {}", self.base, self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `POST /api/exports` with `body` (a new job, never the cache's): the job's id.
    pub async fn start_job(&self, token: &str, body: &serde_json::Value) -> String {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/exports", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("cache-control", "no-cache")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let job: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(status, 202, "{job}");
        job["id"].as_str().unwrap().to_string()
    }

    /// Polls `GET /api/exports/{id}` until the job is final and returns it; panics,
    /// with the server's log, when it is not after `secs`.
    pub async fn final_job(&self, token: &str, id: &str, secs: u64) -> serde_json::Value {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let resp = http
                .get(format!("{}/api/exports/{id}", self.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let job: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} is still {} after {secs} s: {job}\n{}",
                job["status"],
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, as `kill` or a service manager stops it; waits for the exit and
    /// returns how long it took.
    pub async fn terminate(mut self) -> Duration {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.child.try_wait().expect("wait").is_some() {
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "exportctl serve did not stop within 30 s of SIGTERM: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: the process ends wherever it is (a receive in flight included).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
