//! scripts/smoke.sh, the end-to-end check of a deployed stack, run here against the
//! real `exportctl serve` (API, worker and sweeper) on the local stack, so it is known
//! to work before anyone points it at AWS. A small inline limit makes the plain
//! exports answer `303` to the stored file, as large ones do.

use common::{auth::Role, load::Record, synth};
use integration_tests::*;

#[tokio::test]
async fn the_smoke_test_passes_against_exportctl_serve() {
    let stack = TestStack::new("smoke").await;
    let records: Vec<Record> = synth::sessions(5, 10)
        .chain(synth::leads(5, 40))
        .chain(synth::chat_messages(5, 60))
        .collect();
    stack.load(records).await;
    let server = server::Server::start(&stack, &[("INLINE_MAX_BYTES", "2048")]).await;
    let (client, company) = (synth::CLIENTS[0], synth::COMPANIES[0].0);
    let user = stack.token(Role::User, "smoke-user", Some(client), Some(company));
    let script = format!("{}/../scripts/smoke.sh", env!("CARGO_MANIFEST_DIR"));
    // The server is its own process: this thread may block on the script.
    let out = std::process::Command::new("bash")
        .args([script.as_str(), &server.base, &stack.admin_token(), &user])
        .output()
        .expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().all(|l| l.starts_with("PASS ")), "{text}");
    for check in [
        "sessions-admin (303",
        "job-download",
        "schedule-delete",
        "user-other-client (403)",
    ] {
        assert!(text.contains(&format!("PASS {check}")), "{check}: {text}");
    }
}
