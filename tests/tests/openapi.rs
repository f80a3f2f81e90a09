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
