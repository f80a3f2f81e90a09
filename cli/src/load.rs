//! `exportctl load FILE.jsonl`: load records in the stack-neutral JSON Lines format
//! (docs/load-format.md). The whole file is validated before anything is written.

use std::{collections::HashSet, io::BufRead};

use aws_sdk_dynamodb::types::AttributeValue;
use common::{AppContext, Error, index::Table, load::Record, progress::Progress, reads::Item, values::text::sanitize};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("could not read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{} invalid line(s); nothing was written:\n{}", .0.len(), .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Records written in chunks of 5,000 (each stamped with the context's clock as it
/// goes), so that millions of generated records stay in bounded memory; answers how
/// many were written. `seed` and `bench-e2e` write through it.
pub async fn write_chunked(
    ctx: &AppContext,
    records: impl Iterator<Item = Record>,
    progress: &dyn Progress,
) -> Result<usize, Error> {
    let mut total = 0;
    let mut chunk = Vec::with_capacity(5000);
    for record in records {
        chunk.push(record);
        if chunk.len() == 5000 {
            total += common::load::write_records_watched(
                &ctx.aws.dynamodb,
                &ctx.config.tables,
                std::mem::take(&mut chunk),
                ctx.clock.now(),
                progress,
            )
            .await?;
        }
    }
    total +=
        common::load::write_records_watched(&ctx.aws.dynamodb, &ctx.config.tables, chunk, ctx.clock.now(), progress)
            .await?;
    Ok(total)
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
    parse_watched(reader, path, |_| {})
}

/// [`parse`], calling `on_line` with each line's number as it is read.
pub fn parse_watched(reader: impl BufRead, path: &str, mut on_line: impl FnMut(usize)) -> Result<Loaded, LoadError> {
    let mut records = Vec::new();
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        on_line(n);
        let line = line.map_err(|source| LoadError::Io {
            path: path.to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(record) => match record
                .checked_item()
                .map(|(item, notes)| (Identity::of(&record, &item), notes))
            {
                Err(msg) => problems.push(format!("line {n}: {msg}")),
                Ok((key, _)) if seen.contains(&key) => {
                    problems.push(format!("line {n}: duplicate record {key}"));
                }
                Ok((key, line_notes)) => {
                    seen.insert(key);
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

/// A record's identity in its table: its table and its primary key as DynamoDB
/// stores it (two records with one key would overwrite each other).
#[derive(PartialEq, Eq, Hash)]
struct Identity {
    table: &'static str,
    key: Vec<String>,
}

impl Identity {
    /// The identity of `record`, whose stored item is `item`.
    fn of(record: &Record, item: &Item) -> Self {
        let table = Table::of(record);
        let key = table
            .key()
            .iter()
            .map(|name| match item.get(*name) {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => String::new(),
            })
            .collect();
        let (name, _) = Table::INDEXED
            .iter()
            .find(|(_, t)| *t == table)
            .copied()
            .unwrap_or(("sessions", table));
        Self { table: name, key }
    }
}

impl std::fmt::Display for Identity {
    /// Long ids are shortened here; the key is compared whole.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.table)?;
        for v in &self.key {
            match v.char_indices().nth(60) {
                Some((end, _)) => write!(f, " {}...", sanitize(&v[..end]))?,
                None => write!(f, " {}", sanitize(v))?,
            }
        }
        Ok(())
    }
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
        // Line 3's 1,100-byte id is fine: DynamoDB takes it, and its sort keys hold a
        // digest of it.
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].starts_with("line 2:") && problems[0].contains("too large"),
            "{problems:#?}"
        );
        assert!(
            problems[1].starts_with("line 4:") && problems[1].contains("0000-9999"),
            "{problems:#?}"
        );
        assert!(
            problems[2].starts_with("line 5:") && problems[2].contains("bytes"),
            "{problems:#?}"
        );

        let fine = chat("").replace("00:00:00Z\",\"created_at", "00:00:00.000123Z\",\"created_at");
        let loaded = parse(fine.as_bytes(), "x").unwrap();
        assert_eq!(loaded.notes.len(), 1, "{:?}", loaded.notes);
        assert!(loaded.notes[0].starts_with("line 1: timestamp: stored with millisecond precision"));
    }

    /// DynamoDB takes ids up to 2,048 bytes (a partition key): so does the loader,
    /// in every id field. It refuses one byte more, naming the line and the limit,
    /// and an empty key, which DynamoDB refuses too.
    #[test]
    fn accepts_what_dynamodb_accepts_and_refuses_only_what_it_refuses() {
        let id = |c: char| c.to_string().repeat(2048);
        // 2,048 bytes ending in `tail`.
        let ending = |c: char, tail: &str| format!("{}{tail}", c.to_string().repeat(2048 - tail.len()));
        let mut records: Vec<Record> = common::synth::sessions(3, 6)
            .chain(common::synth::leads(3, 1))
            .chain(common::synth::chat_messages(3, 1))
            .collect();
        for record in &mut records {
            match record {
                Record::Session(s) => s.session_id = ending('s', &s.session_id).into(),
                Record::Message(m) => {
                    m.session_id = ending('s', &m.session_id).into();
                    m.message_id = ending('m', &m.message_id).into();
                }
                Record::Lead(l) => {
                    l.lead_id = id('l').into();
                    l.company_id = id('c').into();
                    l.chatbot_id = id('b').into();
                }
                Record::ChatMessage(c) => {
                    c.id = "é".repeat(1024).into();
                    c.client_id = id('k').into();
                    c.conversation_id = "#%".repeat(1024).into();
                }
            }
        }
        let text: String = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        let loaded = parse(text.as_bytes(), "x")
            .unwrap_or_else(|e| panic!("{}", e.to_string().chars().take(300).collect::<String>()));
        assert_eq!(loaded.records, records);

        let mut too_long = records.iter().find(|r| matches!(r, Record::Lead(_))).unwrap().clone();
        let Record::Lead(l) = &mut too_long else { unreachable!() };
        l.company_id = format!("{}x", id('c')).into();
        let mut empty = records
            .iter()
            .find(|r| matches!(r, Record::ChatMessage(_)))
            .unwrap()
            .clone();
        let Record::ChatMessage(c) = &mut empty else {
            unreachable!()
        };
        c.conversation_id = "".into();
        let text = format!(
            "{}\n{}\n",
            serde_json::to_string(&too_long).unwrap(),
            serde_json::to_string(&empty).unwrap()
        );
        let Err(LoadError::Invalid(problems)) = parse(text.as_bytes(), "x") else {
            panic!("refused")
        };
        assert_eq!(
            problems,
            [
                "line 1: company_id is 2049 bytes; as a DynamoDB key it may be at most 2048",
                "line 2: conversation_id is empty; DynamoDB refuses an empty key",
            ]
        );
    }

    /// Records are the same only when their table keys are: ids that merely join to
    /// the same text are not duplicates.
    #[test]
    fn duplicates_are_found_by_table_key() {
        let lead = common::synth::leads(5, 1).next().unwrap();
        let Record::Lead(mut a) = lead else { unreachable!() };
        let mut b = a.clone();
        (a.lead_id, a.company_id) = ("x/y".into(), "z".into());
        (b.lead_id, b.company_id) = ("x".into(), "y/z".into());
        let text = [Record::Lead(a.clone()), Record::Lead(b), Record::Lead(a)]
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect::<String>();
        let Err(LoadError::Invalid(problems)) = parse(text.as_bytes(), "x") else {
            panic!("the third line repeats the first")
        };
        assert_eq!(problems, ["line 3: duplicate record leads x/y"]);
    }
}
