//! Every file in events/ is a valid API Gateway v2 event for a declared route.

use integration_tests::event_file;

#[test]
fn event_files_parse_and_name_a_served_route() {
    let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".json") {
            continue;
        }
        let req = event_file(&name);
        let route = (req.method().as_str(), req.uri().path());
        assert!(
            exportctl::serve::ROUTES.iter().any(|(m, p)| (*m, *p) == route),
            "{name}: {route:?} is not a served route"
        );
        count += 1;
    }
    assert!(count >= 5);
}
