//! `exportctl load FILE.jsonl`: load records in the stack-neutral JSON Lines format
//! (docs/load-format.md). The whole file is validated before anything is written.

use std::{collections::HashSet, io::BufRead};

use common::store::Record;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("could not read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{} invalid line(s); nothing was written:\n{}", .0.len(), .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Parses and checks every line; returns all records, or every problem found
/// (line numbers start at 1; blank lines are allowed).
pub fn parse(reader: impl BufRead, path: &str) -> Result<Vec<Record>, LoadError> {
    let mut records = Vec::new();
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
            Ok(record) => match check(&record) {
                Err(msg) => problems.push(format!("line {n}: {msg}")),
                Ok(key) if !seen.insert(key.clone()) => {
                    problems.push(format!("line {n}: duplicate record {key}"));
                }
                Ok(_) => records.push(record),
            },
            Err(e) => problems.push(format!("line {n}: {e}")),
        }
        if problems.len() >= 50 {
            problems.push("(stopped after 50 problems)".into());
            break;
        }
    }
    if problems.is_empty() {
        Ok(records)
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
        assert_eq!(parse(text.as_bytes(), "x").unwrap(), records);
    }
}
