//! Console input is never lost, and input from a file makes a run repeat.
//!
//! Bytes piped or redirected into `rewind run` wait on the host until the
//! guest listens (its UART's receiver interrupt is on, or it polls), so
//! input sent while Linux boots reaches its shell; with a regular file on
//! stdin, when each byte reaches the guest depends on the guest alone, so
//! two runs end in the same state without a recording. A guest that only
//! idles once its input has ended gets one notice on stderr.

use serde_json::Value;
use std::path::Path;
use std::process::Stdio;

#[path = "common/exact.rs"]
mod exact;
#[path = "common/process.rs"]
mod process;
use exact::build;
use process::{path_arg as arg, scratch, Finished, REWIND};

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Runs `rewind ARGS --report FILE` with stdin from `input` (a file), and
/// returns the run and its report's state hash.
fn run_with_file(args: &[String], input: &Path, report: &Path) -> (Finished, String) {
    let mut args = args.to_vec();
    args.extend(strings(&["--report", &arg(report)]));
    let stdin = std::fs::File::open(input).expect("the input file");
    let run = process::run(REWIND, &args, Stdio::from(stdin));
    (run, state_hash(report))
}

fn state_hash(report: &Path) -> String {
    let text = std::fs::read_to_string(report).unwrap_or_default();
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    json["state_hash"].as_str().unwrap_or_default().to_string()
}

/// Runs `rewind ARGS` with `input` written into a pipe on its stdin at
/// once, before the guest can take any of it.
fn run_with_pipe(args: &[String], input: &Path) -> Finished {
    let command = format!("cat {} | {} {}", arg(input), REWIND, args.join(" "));
    process::run("sh", &strings(&["-c", &command]), Stdio::null())
}

#[test]
fn a_polling_guest_gets_file_and_pipe_input_and_file_input_repeats() {
    let elf = build("echo");
    let dir = scratch("console_input", "polling");
    let input = dir.join("input.txt");
    std::fs::write(&input, "hi\nyo\n").unwrap();
    let args = strings(&["run", "--firmware", "none", "--kernel", &arg(&elf)]);
    let (first, hash) = run_with_file(&args, &input, &dir.join("1.json"));
    let (second, again) = run_with_file(&args, &input, &dir.join("2.json"));
    for run in [&first, &second] {
        assert_eq!(run.code(), Some(0), "{}", run.describe());
        assert_eq!(run.stdout_text(), "hi\nyo\n", "{}", run.describe());
    }
    assert!(!hash.is_empty() && hash == again, "{hash} then {again}");
    let piped = run_with_pipe(&args, &input);
    assert_eq!(piped.code(), Some(0), "{}", piped.describe());
    assert_eq!(piped.stdout_text(), "hi\nyo\n", "{}", piped.describe());
}

/// Two commands piped in before Linux has booted both run; the same
/// commands from a file run the same way twice, to the same state.
#[test]
fn linux_keeps_console_input_sent_while_it_boots() {
    let dir = scratch("console_input", "linux");
    let input = dir.join("script.txt");
    std::fs::write(
        &input,
        "echo alpha-$((40+2))\necho beta-$((50+5))\npoweroff -f\n",
    )
    .unwrap();
    let args = strings(&["run", "--mem", "256M"]);
    let piped = run_with_pipe(&args, &input);
    let (first, hash) = run_with_file(&args, &input, &dir.join("1.json"));
    let (second, again) = run_with_file(&args, &input, &dir.join("2.json"));
    for run in [&piped, &first, &second] {
        let out = run.stdout_text();
        assert!(
            run.code() == Some(0) && out.contains("alpha-42") && out.contains("beta-55"),
            "a command sent early was lost\n{}",
            run.describe()
        );
    }
    assert!(!hash.is_empty() && hash == again, "{hash} then {again}");
    assert_eq!(first.stdout, second.stdout);
}

/// A guest that idles for ever once its input has ended: Rewind says so,
/// once, and how to end the run. (It retires a dozen instructions per
/// millisecond of guest time, so --stop-at ends this run after minutes of
/// guest time, well past the notice.)
#[test]
fn a_guest_that_only_idles_after_its_input_ends_gets_one_notice() {
    let elf = build("tick");
    let args = strings(&[
        "run",
        "--firmware",
        "none",
        "--kernel",
        &arg(&elf),
        "--stop-at",
        "2000000",
    ]);
    let run = process::run(REWIND, &args, Stdio::null());
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert_eq!(
        run.stderr.matches("every input has ended").count(),
        1,
        "no notice, or more than one\n{}",
        run.describe()
    );
    assert!(run.stderr.contains("Ctrl-C (SIGINT)"), "{}", run.describe());
}

/// Only the kernel's panic path ends a run as a kernel panic: a program
/// printing the kernel's panic lines goes on, and so does the run.
#[test]
fn a_program_printing_the_kernels_panic_lines_does_not_end_the_run() {
    let dir = scratch("console_input", "fake-panic");
    let input = dir.join("script.txt");
    std::fs::write(
        &input,
        "printf 'Kernel panic - not syncing: fake\\n---[ end Kernel panic - not syncing: fake ]---\\n'\n\
         echo still-$((1+1))\npoweroff -f\n",
    )
    .unwrap();
    let (run, _) = run_with_file(
        &strings(&["run", "--mem", "256M"]),
        &input,
        &dir.join("r.json"),
    );
    assert!(
        run.code() == Some(0)
            && run
                .stdout_text()
                .contains("end Kernel panic - not syncing: fake ]---")
            && run.stdout_text().contains("still-2"),
        "{}",
        run.describe()
    );
}

/// A guest failure code whose low byte is zero still fails the run.
#[test]
fn a_failure_code_of_256_exits_nonzero() {
    let elf = build("fail_256");
    let dir = scratch("console_input", "fail-256");
    let report = dir.join("r.json");
    let args = strings(&[
        "run",
        "--firmware",
        "none",
        "--kernel",
        &arg(&elf),
        "--report",
        &arg(&report),
    ]);
    let run = process::run(REWIND, &args, Stdio::null());
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["exit_reason"], "fail");
    assert_eq!(json["exit_code"], 1);
}
