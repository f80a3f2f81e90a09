//! Every file in events/ is a valid API Gateway v2 event for a declared route, and the
//! real handlers answer each within the contract.

use common::{load::Record, synth};
use integration_tests::*;

#[test]
fn event_files_parse_and_name_a_served_route() {
    let names = api_event_names();
    for name in &names {
        let req = event_file(name);
        let route = exportctl::serve::route_of(req.method().as_str(), req.uri().path());
        assert!(
            route.is_some(),
            "{name}: {} {} is not a served route",
            req.method(),
            req.uri().path()
        );
    }
    // Every route has events.
    for route in exportctl::serve::ROUTES {
        assert!(
            names.iter().any(|n| {
                let req = event_file(n);
                exportctl::serve::route_of(req.method().as_str(), req.uri().path()) == Some(*route)
            }),
            "{route:?}"
        );
    }
}

#[tokio::test]
async fn every_event_gets_an_answer_within_the_contract() {
    let stack = TestStack::with_config("events", |c| c.chat.per_user_per_minute = 1000).await;
    let records: Vec<Record> = synth::sessions(2, 10)
        .chain(synth::leads(2, 20))
        .chain(synth::chat_messages(2, 40))
        .collect();
    stack.load(records).await;
    for name in api_event_names() {
        let resp = exportctl::serve::route(&stack.ctx, event_file(&name)).await;
        let status = resp.status().as_u16();
        assert!(status < 500, "{name}: {status}");
        if status >= 400 {
            assert_eq!(header(&resp, "content-type"), "application/json", "{name}");
            assert_error_shape(&body_json(&resp), name.starts_with("leads-"));
        }
        let expected = if name.contains("no-token") {
            401
        } else if name.contains("other-") || name.starts_with("sessions-export-user") {
            403
        } else if name.contains("bad-") || name.contains("invalid") {
            400
        } else if name.contains("unknown") {
            404
        } else {
            status.min(303)
        };
        assert_eq!(status, expected, "{name}");
    }
}
