//! The real `exportctl` binary as a user runs it: every command's `--json` result is
//! exactly one JSON document on stdout; logs and progress stay on stderr; progress
//! bars draw on a terminal (a pseudo-terminal made by `script`) and never in a pipe
//! or with `--quiet`; exit codes 0, 1 (a finding) and 2 (usage or configuration);
//! completions that bash really completes with.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use common::synth;
use integration_tests::{server, *};
use serde_json::Value;

/// `exportctl` with the stack's tables, bucket and queue (the rest from local.env),
/// stdin closed, stdout and stderr pipes, and no `CI` variable, so that only the
/// terminal decides whether bars draw.
fn exportctl(stack: &TestStack, args: &[&str]) -> Command {
    let mut cmd = Command::new(server::exportctl_path());
    cmd.args(args)
        .envs(server::stack_env(stack))
        // The test stack's queue was made with this visibility; `setup` keeps it.
        .env("SQS_VISIBILITY_SECONDS", "30")
        .env_remove("CI")
        .env("TERM", "xterm")
        .stdin(Stdio::null());
    cmd
}

/// A file of this test's own in the temporary folder.
fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("cli-{}-{name}", uuid::Uuid::new_v4().simple()))
}

fn run(stack: &TestStack, args: &[&str]) -> Output {
    exportctl(stack, args).output().expect("exportctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout as exactly one JSON value (and nothing else but its newline).
fn one_json(args: &[&str], out: &Output) -> Value {
    let stdout = text(&out.stdout);
    let mut values = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
    let first = values
        .next()
        .unwrap_or_else(|| panic!("`exportctl {}` printed no JSON: {stdout:?}", args.join(" ")))
        .unwrap_or_else(|e| panic!("`exportctl {}`: {e}: {stdout:?}", args.join(" ")));
    assert!(
        values.next().is_none(),
        "`exportctl {}` printed more than one JSON value: {stdout}",
        args.join(" ")
    );
    assert!(
        stdout.ends_with('\n') && stdout.trim_end().lines().count() == 1,
        "{stdout:?}"
    );
    first
}

/// A command that succeeds, with its one JSON document; stderr has no bar (a pipe).
fn json_ok(stack: &TestStack, args: &[&str]) -> Value {
    let out = run(stack, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "`exportctl {}`: {}{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_no_bar(&text(&out.stderr), args);
    one_json(args, &out)
}

/// What a progress bar leaves in a stream: carriage returns, cursor movements, the
/// bars' own text.
fn assert_no_bar(stderr: &str, args: &[&str]) {
    assert!(
        !stderr.contains('\r') && !stderr.contains("\x1b[") && !stderr.contains("/s, "),
        "`exportctl {}` drew a progress bar into a pipe: {stderr:?}",
        args.join(" ")
    );
}

/// A long-running command (`serve`, `worker`): its first stdout line, once it is
/// ready, must be its one JSON document; then it is stopped with SIGTERM.
fn first_line_of_long_runner(stack: &TestStack, args: &[&str]) -> Value {
    let mut child = exportctl(stack, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("exportctl starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "`exportctl {}` did not stop", args.join(" "));
        std::thread::sleep(Duration::from_millis(50));
    }
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("`exportctl {}`: {e}: {line:?}", args.join(" ")))
}

/// Every command that prints a result, with `--json`: one JSON document each, with
/// the fields a script reads.
#[tokio::test]
async fn every_command_prints_exactly_one_json_document() {
    let stack = TestStack::new("cli-json").await;
    let setup = json_ok(&stack, &["--json", "setup"]);
    assert!(setup["queue_url"].is_string() && setup["bucket"].is_string(), "{setup}");

    let seeded = json_ok(
        &stack,
        &[
            "seed",
            "--sessions",
            "3",
            "--leads",
            "40",
            "--chats",
            "30",
            "--seed",
            "4",
            "--json",
        ],
    );
    assert!(seeded["records"].as_u64().unwrap() >= 73, "{seeded}");

    let file = scratch("leads.jsonl");
    let lines: Vec<String> = synth::leads(99, 5)
        .map(|r| serde_json::to_string(&r).unwrap())
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let loaded = json_ok(&stack, &["--json", "load", file.to_str().unwrap()]);
    assert_eq!(loaded["records"], 5, "{loaded}");

    let backfill = json_ok(&stack, &["--json", "backfill", "--table", "leads"]);
    assert!(backfill.as_object().unwrap().len() == 1, "{backfill}");
    let check = json_ok(&stack, &["--json", "check-index"]);
    assert_eq!(check.as_object().unwrap().len(), 3, "{check}");

    let token = json_ok(&stack, &["--json", "token", "--role", "admin", "--sub", "cli-admin"]);
    assert!(token["token"].as_str().unwrap().split('.').count() == 3, "{token}");
    assert!(token["expires_at"].is_string(), "{token}");

    let tick = json_ok(&stack, &["--json", "schedules", "tick"]);
    assert!(tick["created"].is_array(), "{tick}");

    let bench = json_ok(
        &stack,
        &[
            "--json", "bench", "--export", "leads", "--format", "csv", "--rows", "500",
        ],
    );
    assert_eq!(bench["rows"], 500, "{bench}");

    let e2e = json_ok(
        &stack,
        &[
            "--json",
            "bench-e2e",
            "--export",
            "leads",
            "--format",
            "csv",
            "--rows",
            "150",
        ],
    );
    assert_eq!(e2e["rows"], 150, "{e2e}");

    let written = json_ok(
        &stack,
        &["--json", "native-export", "--table", "leads", "--segments", "2"],
    );
    let manifest = written["manifest"].as_str().unwrap().to_string();
    assert!(manifest.starts_with("s3://"), "{written}");
    let items = written["items"].as_u64().unwrap();
    assert!(items >= 40, "{written}");

    let job = json_ok(
        &stack,
        &[
            "--json",
            "convert",
            "--manifest",
            &manifest,
            "--kind",
            "leads",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        (job["status"].as_str(), job["rows"].as_u64()),
        (Some("succeeded"), Some(items)),
        "{job}"
    );

    let port = server::free_port().to_string();
    let serving = first_line_of_long_runner(&stack, &["--json", "serve", "--port", &port, "--tick-seconds", "0"]);
    assert_eq!(serving["url"], format!("http://127.0.0.1:{port}"), "{serving}");
    assert!(serving["routes"].as_array().unwrap().len() > 10, "{serving}");
    let worker = first_line_of_long_runner(&stack, &["worker", "--json"]);
    assert_eq!(
        worker["queue_url"],
        stack.ctx.config.jobs.queue_url.as_str(),
        "{worker}"
    );
}

/// Without `--json`, stdout is a short summary for people: never a metric line or a
/// log line, which go to stderr.
#[tokio::test]
async fn stdout_carries_only_the_result() {
    let stack = TestStack::new("cli-stdout").await;
    assert!(run(&stack, &["setup"]).status.success());
    stack.load(synth::leads(5, 30).collect()).await;
    let out = run(&stack, &["native-export", "--table", "leads"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = text(&out.stdout).trim().to_string();
    assert!(
        manifest.starts_with("s3://") && !manifest.contains('\n'),
        "{manifest:?}"
    );
    let out = run(
        &stack,
        &["convert", "--manifest", &manifest, "--kind", "leads", "--format", "csv"],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("succeeded: 30 rows"), "{stdout}");
    assert!(
        !stdout.contains("_aws") && !stdout.contains("\"level\""),
        "a metric or log line on stdout: {stdout}"
    );
    assert!(
        stderr.contains("\"_aws\""),
        "the export's metric line goes to stderr: {stderr}"
    );
    let token = run(&stack, &["token", "--role", "admin", "--sub", "a"]);
    assert_eq!(text(&token.stdout).trim().split('.').count(), 3, "the token alone");
    // A reader that goes away (`| head -1`) is not a failure of the command.
    let early = Command::new("bash")
        .args([
            "-c",
            &format!(
                "'{}' completions bash | (exec 0<&-; true); echo ${{PIPESTATUS[0]}}",
                server::exportctl_path().display()
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(text(&early.stdout).trim(), "0", "{}", text(&early.stderr));
    assert!(!text(&early.stderr).contains("panicked"), "{}", text(&early.stderr));
}

/// On a terminal, long commands draw their bars on stderr; `--quiet` and a pipe
/// silence them, and the result is the same.
#[tokio::test]
async fn progress_bars_draw_only_on_a_terminal() {
    let stack = TestStack::new("cli-bars").await;
    assert!(run(&stack, &["setup"]).status.success());
    let exe = server::exportctl_path();
    // `script` gives the command a pseudo-terminal, as an interactive shell would.
    let on_terminal = |args: &str| {
        let out = Command::new("script")
            .args(["-qfec", &format!("{} {args}", exe.display()), "/dev/null"])
            .envs(server::stack_env(&stack))
            .env("SQS_VISIBILITY_SECONDS", "30")
            .env_remove("CI")
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .output()
            .expect("script runs");
        assert!(out.status.success(), "{}", text(&out.stdout));
        text(&out.stdout)
    };
    let seed = "seed --sessions 5 --leads 2000 --chats 1500 --seed 8";
    let drawn = on_terminal(seed);
    assert!(
        drawn.contains("records (") && drawn.contains("/s, ") && drawn.contains('\r'),
        "no bar on a terminal: {drawn:?}"
    );
    // The bars are cleared when the work is over: the result has its own line.
    let last = drawn
        .rsplit(['\r', '\n'])
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(last.trim_start_matches("\x1b[2K").starts_with("seeded "), "{drawn:?}");
    let check = on_terminal("check-index --table leads");
    assert!(
        check.contains("items (") && check.contains("leads 0"),
        "a bar per segment: {check:?}"
    );

    let quiet = on_terminal(&format!("--quiet {seed}"));
    assert!(
        !quiet.contains("/s, ") && !quiet.contains("\x1b["),
        "--quiet drew: {quiet:?}"
    );
    assert!(quiet.contains("seeded "), "{quiet:?}");

    let args: Vec<&str> = seed.split(' ').collect();
    let piped = run(&stack, &args);
    assert!(piped.status.success());
    assert_no_bar(&text(&piped.stderr), &args);
    // Under CI even a terminal gets no bar.
    let under_ci = Command::new("script")
        .args(["-qfec", &format!("{} {seed}", exe.display()), "/dev/null"])
        .envs(server::stack_env(&stack))
        .env("CI", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!text(&under_ci.stdout).contains("/s, "), "{}", text(&under_ci.stdout));
}

/// 2 for usage and configuration errors (with `--json`, the error as the one
/// document), 1 for a finding; nothing on stdout without `--json`.
#[tokio::test]
async fn exit_codes_say_what_went_wrong() {
    let stack = TestStack::new("cli-exit").await;
    let cases: [(&[&str], &str); 7] = [
        (&["--json"], "usage"),
        (&["--json", "schedules"], "usage"),
        (&["--json", "no-such-command"], "usage"),
        (&["--json", "bench", "--rows", "many"], "usage"),
        (&["--json", "check-index", "--table", "nope"], "usage"),
        (&["--json", "load", "/nonexistent/file.jsonl"], "usage"),
        (&["--json", "completions", "bash"], "usage"),
    ];
    for (args, code) in cases {
        let out = run(&stack, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        let doc = one_json(args, &out);
        assert_eq!(doc["error"]["code"], code, "{args:?}: {doc}");
        assert!(!text(&out.stderr).is_empty(), "{args:?}: the reason on stderr too");
    }
    let unconfigured = exportctl(&stack, &["--json", "setup"])
        .env("JWT_SECRET", "")
        .output()
        .unwrap();
    assert_eq!(unconfigured.status.code(), Some(2));
    let doc = one_json(&["setup"], &unconfigured);
    assert_eq!(doc["error"]["code"], "configuration", "{doc}");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("JWT_SECRET"),
        "{doc}"
    );

    // An invalid file is an input error: nothing written, exit 2, the lines named.
    let bad = scratch("bad.jsonl");
    std::fs::write(&bad, "{\"table\": \"leads\"}\nnot json\n").unwrap();
    let out = run(&stack, &["load", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("line 2"), "{}", text(&out.stderr));

    // A finding: the report printed, exit 1.
    let out = run(&stack, &["--json", "check-index", "--table", "leads"]);
    assert_eq!(out.status.code(), Some(0), "an empty table is clean");
    let args = ["--help"];
    let help = run(&stack, &args);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("Exit codes"), "{}", text(&help.stdout));
}

/// bash and fish, given the generated scripts, complete subcommands, flags and
/// values; zsh parses its script and registers it.
#[tokio::test]
async fn completions_complete_in_bash() {
    let stack = TestStack::new("cli-completions").await;
    let exe = server::exportctl_path();
    // What bash does on Tab: COMP_WORDS, COMP_CWORD and the completion function.
    let complete = |words: &[&str]| {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let script = format!(
            "source <('{exe}' completions bash); COMP_WORDS=({words}); COMP_CWORD={cword}; \
             COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
             _exportctl exportctl \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            exe = exe.display(),
            words = quoted.join(" "),
            cword = words.len() - 1,
            line = words.join(" "),
        );
        let out = Command::new("bash").args(["-c", &script]).output().expect("bash runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let subcommands = complete(&["exportctl", "ch"]);
    assert!(subcommands.lines().any(|l| l == "check-index"), "{subcommands}");
    let flags = complete(&["exportctl", "backfill", "--s"]);
    assert!(flags.lines().any(|l| l == "--segments"), "{flags}");
    let shells = complete(&["exportctl", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.lines().any(|l| l == shell), "{shells}");
    }
    // fish completes with the script as a user's shell would (`complete -C` asks it
    // what Tab offers); zsh parses its script, and compinit registers it for
    // exportctl. `make test` installs both (`make shells`).
    for shell in ["zsh", "fish"] {
        assert!(
            Command::new(shell).arg("--version").output().is_ok(),
            "{shell} is not installed: `make shells` installs it"
        );
    }
    let fish = Command::new("fish")
        .args([
            "-c",
            &format!(
                "'{}' completions fish | source; complete -C 'exportctl ch'; complete -C 'exportctl bench --format '",
                exe.display()
            ),
        ])
        .output()
        .unwrap();
    let offered = text(&fish.stdout);
    assert!(fish.status.success(), "{}", text(&fish.stderr));
    assert!(offered.lines().any(|l| l.starts_with("check-index\t")), "{offered}");
    assert!(offered.lines().any(|l| l.starts_with("parquet")), "{offered}");
    let dir = std::env::temp_dir().join(format!("cli-zsh-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let zsh_script = run(&stack, &["completions", "zsh"]);
    assert!(zsh_script.status.success());
    std::fs::write(dir.join("_exportctl"), &zsh_script.stdout).unwrap();
    let parsed = Command::new("zsh")
        .arg("-n")
        .arg(dir.join("_exportctl"))
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", text(&parsed.stderr));
    let registered = Command::new("zsh")
        .args([
            "-fc",
            &format!(
                "fpath=('{}' $fpath); autoload -U compinit; compinit -u -D; print -r -- $_comps[exportctl]",
                dir.display()
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(
        text(&registered.stdout).trim(),
        "_exportctl",
        "{}",
        text(&registered.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
