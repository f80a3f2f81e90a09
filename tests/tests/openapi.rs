//! openapi.yaml describes exactly what the code serves: the router's routes are its
//! paths, and each route's documented parameters are the fields its parameter type
//! decodes (read from the decoder's own "allowed:" list). `make lint` validates the
//! document itself (openapi-spec-validator).

use std::collections::BTreeSet;

use common::{
    http::query,
    params::{chats::ChatsParams, conversations::ConversationsParams, leads::LeadsParams, sessions::SessionsParams},
};
use serde::de::DeserializeOwned;
use yaml_rust2::{Yaml, YamlLoader};

fn document() -> Yaml {
    let path = format!("{}/../openapi.yaml", env!("CARGO_MANIFEST_DIR"));
    YamlLoader::load_from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .remove(0)
}

/// The parameter names a type accepts, as its decoder lists them.
fn fields<T: DeserializeOwned + std::fmt::Debug>() -> BTreeSet<String> {
    let err = query::decode::<T>("__probe=1").unwrap_err().to_string();
    let allowed = err.split("allowed: ").nth(1).unwrap_or_else(|| panic!("{err}"));
    allowed.split(", ").map(String::from).collect()
}

/// A `$ref` (`#/components/parameters/X`) resolved in the document.
fn resolve<'a>(doc: &'a Yaml, item: &'a Yaml) -> &'a Yaml {
    match item["$ref"].as_str() {
        Some(r) => {
            let mut node = doc;
            for part in r.trim_start_matches("#/").split('/') {
                node = &node[part];
            }
            node
        }
        None => item,
    }
}

fn documented_query_parameters(doc: &Yaml, path: &str, method: &str) -> BTreeSet<String> {
    doc["paths"][path][method]["parameters"]
        .as_vec()
        .map(|v| {
            v.iter()
                .map(|p| resolve(doc, p))
                .filter(|p| p["in"].as_str() == Some("query"))
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_documents_paths_are_the_routers_routes() {
    let doc = document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_hash().unwrap() {
        for (method, _) in item.as_hash().unwrap() {
            documented.insert((
                method.as_str().unwrap().to_uppercase(),
                path.as_str().unwrap().to_string(),
            ));
        }
    }
    let served: BTreeSet<(String, String)> = exportctl::serve::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served);
}

#[test]
fn each_route_documents_exactly_its_parameters() {
    let doc = document();
    let cases = [
        (sessions_export::PATH, fields::<SessionsParams>()),
        (leads_export::PATH, fields::<LeadsParams>()),
        (chats_export::DOWNLOAD_PATH, fields::<ChatsParams>()),
        (chats_export::CONVERSATIONS_PATH, fields::<ConversationsParams>()),
        (
            common::jobs::api::JOBS_PATH,
            fields::<common::jobs::api::HistoryParams>(),
        ),
    ];
    for (path, accepted) in cases {
        assert_eq!(documented_query_parameters(&doc, path, "get"), accepted, "{path}");
    }
    // The POST body holds the download's parameters.
    let body = resolve(
        &doc,
        &doc["paths"][chats_export::EXPORT_PATH]["post"]["requestBody"]["content"]["application/json"]["schema"],
    );
    let properties: BTreeSet<String> = body["properties"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(properties, fields::<ChatsParams>());
    assert_eq!(body["additionalProperties"].as_bool(), Some(false));
    assert!(documented_query_parameters(&doc, chats_export::EXPORT_PATH, "post").is_empty());
    // The job request's top-level fields.
    let job = resolve(
        &doc,
        &doc["paths"][common::jobs::api::JOBS_PATH]["post"]["requestBody"]["content"]["application/json"]["schema"],
    );
    let mut keys = BTreeSet::new();
    for variant in job["oneOf"]
        .as_vec()
        .map(Vec::as_slice)
        .unwrap_or(std::slice::from_ref(job))
    {
        let variant = resolve(&doc, variant);
        if let Some(props) = variant["properties"].as_hash() {
            keys.extend(props.keys().map(|k| k.as_str().unwrap().to_string()));
        }
    }
    assert_eq!(keys, fields::<common::jobs::api::JobRequest>());
}

/// A schema of `components/schemas` (or of `components/parameters`, by name).
fn schema<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &doc["components"]["schemas"][name];
    if !s.is_badvalue() {
        return s;
    }
    &doc["components"]["parameters"][name]["schema"]
}

fn pattern_of(doc: &Yaml, name: &str) -> String {
    schema(doc, name)["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has a pattern"))
        .to_string()
}

/// Strings of a pattern (anchors dropped: the generator writes whole strings).
fn strings_of(pattern: &str, cases: u32) -> Vec<String> {
    use proptest::{
        strategy::{Strategy, ValueTree},
        test_runner::{Config, TestRunner},
    };
    let body = pattern.trim_start_matches('^').trim_end_matches('$');
    let strategy = proptest::string::string_regex(body).unwrap_or_else(|e| panic!("{pattern}: {e}"));
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    (0..cases)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// The document's time zones are the code's, name for name.
#[test]
fn the_time_zone_names_are_the_codes() {
    let doc = document();
    let documented: Vec<&str> = schema(&doc, "TimeZone")["x-enum"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|z| z.as_str().unwrap())
        .collect();
    let known: Vec<&str> = common::spec::TimeZone::names().collect();
    assert_eq!(
        documented, known,
        "regenerate TimeZone.x-enum from common::spec::TimeZone::names()"
    );
    for name in documented {
        assert!(
            common::spec::TimeZone::parse(&name.to_uppercase()).is_ok(),
            "{name}, any case"
        );
    }
}

/// Everything a documented pattern admits, the code accepts (pattern -> decoder,
/// on strings drawn from the pattern itself); and the values the code is known to
/// accept match the pattern (decoder -> pattern). Together: the patterns are exact.
#[test]
fn every_pattern_admits_what_the_code_accepts_and_nothing_else() {
    use common::{
        auth::check_sub,
        http::{headers::Headers, query},
        jobs::api::decode_cursor,
        params::{Id, chats::ChatsParams, conversations::ConversationsParams, leads::LeadsParams},
        schedules::cadence::Cadence,
    };
    let doc = document();
    let leads = |q: String| query::decode::<LeadsParams>(&q).map(|_| ()).map_err(|e| e.to_string());
    let chats = |q: String| query::decode::<ChatsParams>(&q).map(|_| ()).map_err(|e| e.to_string());
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    type Check<'a> = Box<dyn Fn(&str) -> Result<(), String> + 'a>;
    let header = |name: &'static str| -> Check<'static> {
        Box::new(move |v: &str| {
            let mut map = lambda_http::http::HeaderMap::new();
            map.insert(name, v.parse().map_err(|e| format!("{e}"))?);
            Headers::decode(&map).map(|_| ()).map_err(|e| e.to_string())
        })
    };
    let cases: Vec<(&str, Check, &[&str])> = vec![
        (
            "Id",
            Box::new(|v: &str| Id::parse(v).map(|_| ())),
            &["client-alpha_1.x:y@z"],
        ),
        (
            "IdList",
            Box::new(|v: &str| leads(format!("companyId={}", enc(v)))),
            &["a", "a,b", "a , b", "a,a"],
        ),
        (
            "Flag",
            Box::new(|v: &str| leads(format!("bom={}&format=csv", enc(v)))),
            &["TRUE", "No", "1", "0"],
        ),
        (
            "TableFormat",
            Box::new(|v: &str| leads(format!("format={}", enc(v)))),
            &["CSV", "json", "XlsX"],
        ),
        (
            "ChatFormat",
            Box::new(|v: &str| chats(format!("format={}", enc(v)))),
            &["Excel", "both", "xlsx"],
        ),
        (
            "Compression",
            Box::new(|v: &str| leads(format!("compression={}", enc(v)))),
            &["GZIP", "none"],
        ),
        (
            "Confidence",
            Box::new(|v: &str| leads(format!("confidence={}", enc(v)))),
            &["HIGH"],
        ),
        (
            "Category",
            Box::new(|v: &str| leads(format!("category={}", enc(v)))),
            &["Demo_Request"],
        ),
        (
            "Language",
            Box::new(|v: &str| leads(format!("language={}", enc(v)))),
            &["HI_transliterated"],
        ),
        (
            "LeadStatus",
            Box::new(|v: &str| leads(format!("status={}", enc(v)))),
            &["Converted"],
        ),
        (
            "LeadColumns",
            Box::new(|v: &str| leads(format!("columns={}", enc(v)))),
            &["Lead ID,email", "lead id , TAGS"],
        ),
        ("Sub", Box::new(|v: &str| check_sub(v)), &["auth0|123", "Jürgen Ü"]),
        (
            "ScheduleName",
            Box::new(|v: &str| {
                common::schedules::api::check_name(Some(v.into()))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
            &["Nightly leads"],
        ),
        (
            "HistoryCursor",
            Box::new(|v: &str| decode_cursor(v, "me").map(|_| ()).map_err(|e| e.to_string())),
            &["2024-01-15T10:30:00.000Z~3f2b9c0e8d4a4b6f9e1c2d3a4b5c6d7e"],
        ),
        (
            "ScheduleCron",
            Box::new(|v: &str| Cadence::cron(v).map(|_| ())),
            &["0 2 * * *", "*/15 * * * *", "30 6 * * 1,2,3,4,5"],
        ),
        (
            "ScheduleRate",
            Box::new(|v: &str| Cadence::rate(v).map(|_| ())),
            &["15 minutes", "rate(1 hour)", "1 DAY", "10080 minutes", "366 days"],
        ),
        (
            "Accept",
            header("accept"),
            &["application/json", "text/csv, */*;q=0.5", "*"],
        ),
        (
            "Prefer",
            header("prefer"),
            &["respond-async", "respond-async, wait=10", "handling=lenient; x=\"a,b\""],
        ),
        (
            "CacheControl",
            header("cache-control"),
            &["no-cache", "max-age=0, no-store"],
        ),
        ("IdempotencyKey", header("idempotency-key"), &["key-1_2.3:4"]),
    ];
    let conversations_limit = |v: &str| {
        query::decode::<ConversationsParams>(&format!("limit={}", enc(v)))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    for (name, accepts, known) in &cases {
        let pattern = pattern_of(&doc, name);
        let max = schema(&doc, name)["maxLength"]
            .as_i64()
            .map_or(usize::MAX, |m| m as usize);
        // A value that breaks a documented cross-field rule is 400 by that rule.
        let columns_repeat = |v: &String| {
            let names: Vec<String> = v
                .split(',')
                .map(|c| c.trim().to_lowercase().replace(' ', "_"))
                .collect();
            *name == "LeadColumns" && names.iter().collect::<std::collections::BTreeSet<_>>().len() != names.len()
        };
        for value in strings_of(&pattern, 300)
            .into_iter()
            .filter(|v| v.chars().count() <= max && !columns_repeat(v))
        {
            if let Err(e) = accepts(&value) {
                panic!("{name}: the pattern admits {value:?}, the code refuses it: {e}");
            }
        }
        let re = regex::Regex::new(&pattern).unwrap();
        for value in *known {
            assert!(accepts(value).is_ok(), "{name}: {value:?} is accepted");
            assert!(re.is_match(value), "{name}: {value:?} matches {pattern}");
        }
    }
    // The limit of a job's params, as its text.
    let limit = doc["components"]["schemas"]["ConversationsJobRequest"]["properties"]["params"]["properties"]["limit"]
        ["anyOf"][1]["pattern"]
        .as_str()
        .unwrap()
        .to_string();
    for value in strings_of(&limit, 300) {
        assert!(conversations_limit(&value).is_ok(), "limit {value:?}");
    }
}

/// Every `error_code` the document lists is one of the code's [`ErrorCode`]s, so a
/// client switching on the documented codes never meets a code spelt another way.
#[test]
fn the_documented_error_codes_are_the_codes() {
    let doc = document();
    let documented: BTreeSet<String> = schema(&doc, "ErrorCode")["properties"]["error_code"]["enum"]
        .as_vec()
        .expect("ErrorCode.error_code has an enum")
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let codes: BTreeSet<String> = common::error::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let unknown: Vec<_> = documented.difference(&codes).collect();
    assert!(unknown.is_empty(), "documented but not in ErrorCode: {unknown:?}");
}
