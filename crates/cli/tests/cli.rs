//! The `qcs` binary as a user runs it.

use std::process::Command;

fn qcs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_qcs"))
        .args(args)
        .output()
        .expect("the qcs binary runs")
}

#[test]
fn info_names_the_compiled_backend() {
    let out = qcs(&["info"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = if cfg!(feature = "ndarray") {
        "backend: ndarray"
    } else if cfg!(feature = "wgpu") {
        "backend: wgpu"
    } else {
        "backend: flex"
    };
    assert!(text.contains(expected), "{text}");
}

#[test]
fn an_unknown_command_fails_with_usage() {
    let out = qcs(&["reconstrukt"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
