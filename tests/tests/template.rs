//! template.yaml declares the same tables, keys and indexes as `common::schema`
//! (which `exportctl setup` and every test use), so what is tested is what deploys.

use std::collections::BTreeSet;

use common::{config::TableNames, schema};
use yaml_rust2::{Yaml, YamlLoader};

fn template() -> Yaml {
    let path = format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// yaml-rust2 drops the `!Ref` tag: the scalar left is the logical id.
fn reference(y: &Yaml) -> String {
    y.as_str().unwrap_or_else(|| panic!("not a !Ref: {y:?}")).to_string()
}

fn key_schema(y: &Yaml) -> (String, Option<String>) {
    let mut hash = None;
    let mut range = None;
    for k in y.as_vec().unwrap() {
        let name = k["AttributeName"].as_str().unwrap().to_string();
        match k["KeyType"].as_str().unwrap() {
            "HASH" => hash = Some(name),
            "RANGE" => range = Some(name),
            other => panic!("{other}"),
        }
    }
    (hash.unwrap(), range)
}

#[test]
fn template_tables_match_the_schema() {
    let t = template();
    let vars = &t["Globals"]["Function"]["Environment"]["Variables"];
    let logical = |var: &str| reference(&vars[var]);
    // Table names stand in as their environment variable, to find each definition.
    let names = TableNames {
        sessions: logical("SESSIONS_TABLE"),
        session_messages: logical("SESSION_MESSAGES_TABLE"),
        leads: logical("LEADS_TABLE"),
        chat_messages: logical("CHAT_MESSAGES_TABLE"),
        rate_limits: logical("RATE_LIMITS_TABLE"),
        audit: logical("AUDIT_TABLE"),
        jobs: logical("JOBS_TABLE"),
        schedules: logical("SCHEDULES_TABLE"),
    };
    for def in schema::tables(&names) {
        let props = &t["Resources"][def.name.as_str()]["Properties"];
        assert!(!props.is_badvalue(), "{} is not in template.yaml", def.name);
        let (hash, range) = key_schema(&props["KeySchema"]);
        assert_eq!(
            (hash.as_str(), range.as_deref()),
            (def.hash, def.range),
            "{} keys",
            def.name
        );
        let mut want: BTreeSet<(String, String, String)> = def
            .indexes
            .iter()
            .map(|(i, h, r)| (i.to_string(), h.to_string(), r.to_string()))
            .collect();
        let got: BTreeSet<(String, String, String)> = props["GlobalSecondaryIndexes"]
            .as_vec()
            .map(|v| {
                v.iter()
                    .map(|gsi| {
                        assert_eq!(gsi["Projection"]["ProjectionType"].as_str(), Some("ALL"));
                        let (h, r) = key_schema(&gsi["KeySchema"]);
                        (gsi["IndexName"].as_str().unwrap().to_string(), h, r.unwrap())
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, want, "{} indexes", def.name);
        // Every key attribute is defined, and nothing else.
        let mut attrs: BTreeSet<String> = [def.hash.to_string()].into();
        attrs.extend(def.range.map(String::from));
        for (_, h, r) in std::mem::take(&mut want) {
            attrs.insert(h);
            attrs.insert(r);
        }
        let defined: BTreeSet<String> = props["AttributeDefinitions"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|a| a["AttributeName"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(defined, attrs, "{} attribute definitions", def.name);
    }
}
