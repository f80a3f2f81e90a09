//! `exportctl load FILE.jsonl`: load records in the stack-neutral JSON Lines format
//! (docs/load-format.md). The whole file is validated before anything is written.

use std::{collections::HashSet, io::BufRead};

use common::load::Record;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("could not read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{} invalid line(s); nothing was written:\n{}", .0.len(), .0.join("\n"))]
    Invalid(Vec<String>),
}

/// A validated file: its records, and notes on values stored in a normalised form.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<Record>,
    /// `line N: ...`, e.g. a timestamp kept to the millisecond.
    pub notes: Vec<String>,
}

/// Parses and checks every line; returns all records, or every problem found
/// (line numbers start at 1; blank lines are allowed). A record DynamoDB would
/// refuse or change (numbers out of its range, keys or items over its sizes,
/// timestamps outside the years 0000-9999) is a problem of its line.
pub fn parse(reader: impl BufRead, path: &str) -> Result<Loaded, LoadError> {
    let mut records = Vec::new();
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|source| LoadError::Io {
            path: path.to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(record) => match check(&record).and_then(|key| record.check().map(|notes| (key, notes))) {
                Err(msg) => problems.push(format!("line {n}: {msg}")),
                Ok((key, _)) if !seen.insert(key.clone()) => {
                    problems.push(format!("line {n}: duplicate record {key}"));
                }
                Ok((_, line_notes)) => {
                    notes.extend(line_notes.into_iter().map(|note| format!("line {n}: {note}")));
                    records.push(record);
                }
            },
            Err(e) => problems.push(format!("line {n}: {e}")),
        }
        if problems.len() >= 50 {
            problems.push("(stopped after 50 problems)".into());
            break;
        }
    }
    if problems.is_empty() {
        Ok(Loaded { records, notes })
    } else {
        Err(LoadError::Invalid(problems))
    }
}

/// Checks what serde cannot (non-empty ids) and returns the record's unique key.
fn check(record: &Record) -> Result<String, String> {
    let ids: Vec<(&str, &str)> = match record {
        Record::Session(s) => vec![("session_id", &s.session_id), ("user_id", &s.user_id)],
        Record::Message(m) => vec![("session_id", &m.session_id), ("message_id", &m.message_id)],
        Record::Lead(l) => vec![
            ("lead_id", &l.lead_id),
            ("company_id", &l.company_id),
            ("chatbot_id", &l.chatbot_id),
        ],
        Record::ChatMessage(c) => vec![
            ("id", &c.id),
            ("client_id", &c.client_id),
            ("conversation_id", &c.conversation_id),
        ],
    };
    if let Some((name, _)) = ids.iter().find(|(_, v)| v.trim().is_empty()) {
        return Err(format!("{name} must not be empty"));
    }
    let kind = match record {
        Record::Session(_) => "session",
        Record::Message(_) => "message",
        Record::Lead(_) => "lead",
        Record::ChatMessage(_) => "chat_message",
    };
    Ok(format!(
        "{kind} {}",
        ids.iter().map(|(_, v)| *v).collect::<Vec<_>>().join("/")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let input = concat!(
            r#"{"type":"session","session_id":"s1","user_id":"u1","started_at":"2024-01-01T00:00:00Z"}"#,
            "\n\n",
            r#"{"type":"session","session_id":"s2","started_at":"2024-01-01T00:00:00Z"}"#,
            "\n",
            r#"{"type":"nope"}"#,
            "\n",
            r#"{"type":"message","session_id":"s1","message_id":"m1","content":"hi","sender":"user","timestamp":"yesterday"}"#,
            "\n",
            r#"{"type":"session","session_id":"s1","user_id":"u1","started_at":"2024-01-01T00:00:00Z"}"#,
            "\n",
        );
        let Err(LoadError::Invalid(problems)) = parse(input.as_bytes(), "x") else {
            panic!("expected errors")
        };
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("line 3:") && problems[0].contains("user_id"));
        assert!(problems[1].starts_with("line 4:"));
        assert!(problems[2].starts_with("line 5:") && problems[2].contains("timestamp"));
        assert!(problems[3].starts_with("line 6:") && problems[3].contains("duplicate"));
    }

    #[test]
    fn accepts_every_record_kind() {
        let records: Vec<Record> = common::synth::sessions(1, 5)
            .chain(common::synth::leads(1, 5))
            .chain(common::synth::chat_messages(1, 5))
            .collect();
        let text: String = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        let loaded = parse(text.as_bytes(), "x").unwrap();
        assert_eq!(loaded.records, records);
        assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
    }

    #[test]
    fn values_dynamodb_would_refuse_or_change_are_reported_by_line() {
        let chat = |extra: &str| {
            format!(
                r#"{{"type":"chat_message","id":"c1","client_id":"k","conversation_id":"v","from_name":"n","message":"m","timestamp":"2024-01-01T00:00:00Z","created_at":"2024-01-01T00:00:00Z"{extra}}}"#
            )
        };
        let input = [
            chat(r#","token_cost":18446744073709551615"#),
            chat(r#","geo_data":{"latitude":1e300}"#).replace("\"c1\"", "\"c2\""),
            chat("").replace("\"c1\"", &format!("\"{}\"", "i".repeat(1100))),
            chat("")
                .replace(
                    "2024-01-01T00:00:00Z\",\"created_at",
                    "0000-01-01T00:00:00+01:00\",\"created_at",
                )
                .replace("\"c1\"", "\"c4\""),
            chat(r#","reply":"r""#)
                .replace(
                    "\"message\":\"m\"",
                    &format!("\"message\":\"{}\"", "m".repeat(410 * 1024)),
                )
                .replace("\"c1\"", "\"c5\""),
        ]
        .join("\n");
        let Err(LoadError::Invalid(problems)) = parse(input.as_bytes(), "x") else {
            panic!("expected errors")
        };
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems[0].starts_with("line 2:") && problems[0].contains("too large"),
            "{problems:#?}"
        );
        assert!(
            problems[1].starts_with("line 3:") && problems[1].contains("ts_id"),
            "{problems:#?}"
        );
        assert!(
            problems[2].starts_with("line 4:") && problems[2].contains("0000-9999"),
            "{problems:#?}"
        );
        assert!(
            problems[3].starts_with("line 5:") && problems[3].contains("bytes"),
            "{problems:#?}"
        );

        let fine = chat("").replace("00:00:00Z\",\"created_at", "00:00:00.000123Z\",\"created_at");
        let loaded = parse(fine.as_bytes(), "x").unwrap();
        assert_eq!(loaded.notes.len(), 1, "{:?}", loaded.notes);
        assert!(loaded.notes[0].starts_with("line 1: timestamp: stored with millisecond precision"));
    }
}
