//! The command line as an operator meets it: the default configuration
//! printed and checked, every fault of a file named by its key (a flag's
//! by the flag), environment variables for what a DaemonSet sets, JSON log
//! lines, and an exit status per kind of start-up failure.

use crate::common;

use std::process::{Command, Output};

use common::*;

fn podlogd(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podlogd"))
        .args(args)
        .env_remove("PODLOG_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("podlogd runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_default_configuration_is_printed_and_passes_its_check() {
    let t = Tree::new();
    let out = podlogd(&["--print-default-config"], &[]);
    assert!(out.status.success());
    let path = t.config(&String::from_utf8(out.stdout).unwrap());
    let check = podlogd(&["--check-config", path.to_str().unwrap()], &[]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stderr(&check).contains("the configuration is valid"));
    assert!(String::from_utf8_lossy(&podlogd(&["--version"], &[]).stdout).starts_with("podlogd "));
    let help = String::from_utf8_lossy(&podlogd(&["--help"], &[]).stdout).into_owned();
    for shown in [
        "Default: 127.0.0.1:10290",
        "[env: NODE_NAME=]",
        "[env: PODLOG_LISTEN=]",
        "[default: text]",
    ] {
        assert!(help.contains(shown), "--help lacks {shown:?}");
    }
}

#[test]
fn every_fault_is_named_by_the_key_or_flag_the_user_wrote() {
    let t = Tree::new();
    let path = t.config(
        "resyncInterval: 1ms\nmaxReads: 9999\nauthorization: {mode: Nope}\ncriEndpoint: ''\n",
    );
    let check = podlogd(&["--check-config", path.to_str().unwrap()], &[]);
    assert_eq!(check.status.code(), Some(64));
    let err = stderr(&check);
    for key in [
        "resyncInterval:",
        "maxReads:",
        "authorization.mode:",
        "criEndpoint:",
    ] {
        assert!(
            err.contains(&format!("bad configuration: {key}")),
            "{key} not named: {err}"
        );
    }
    assert!(!err.contains("--resync-interval"), "{err}");
    // The same mistake as a flag is named by the flag.
    let flag = podlogd(
        &[
            "--check-config",
            path.to_str().unwrap(),
            "--resync-interval",
            "2ms",
        ],
        &[],
    );
    assert!(
        stderr(&flag).contains("--resync-interval: \"2ms\""),
        "{}",
        stderr(&flag)
    );
    // A log filter that is no filter.
    let bad_log = podlogd(
        &[
            "--log-root",
            t.root.to_str().unwrap(),
            "--cri-endpoint",
            "none",
        ],
        &[("PODLOG_LOG", "=[")],
    );
    assert_eq!(bad_log.status.code(), Some(64));
    assert!(stderr(&bad_log).contains("PODLOG_LOG"));
}

#[tokio::test]
async fn environment_variables_set_what_a_daemonset_passes() {
    let t = Tree::new();
    write_file(
        &t.container("default", "web", "uid-1", "app").join("0.log"),
        &cri("2026-12-07T10:00:00Z", "stdout", "F", "hi"),
    );
    let d = Daemon::start_with_env(
        &t.root,
        &["--log-format", "json"],
        &[
            ("NODE_NAME", "node-from-env"),
            ("PODLOG_RESYNC_INTERVAL", "5s"),
        ],
    );
    assert_eq!(inventory(d.addr, "").await["node"], "node-from-env");
    // JSON log lines, one object each; the line on stdout too.
    let log = d.stderr();
    assert!(log.lines().count() > 0, "no log lines");
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{v}");
    }
    let out = &d.listening_line;
    let v: serde_json::Value =
        serde_json::from_str(out.trim_end()).unwrap_or_else(|e| panic!("stdout {out:?}: {e}"));
    assert_eq!(v["listening"], d.addr.to_string(), "{v}");
    assert_eq!(v["message"], format!("podlogd listening on {}", d.addr));
}

#[test]
fn each_kind_of_start_up_failure_has_its_exit_status() {
    let t = Tree::new();
    let missing = t.root.join("missing");
    let o = podlogd(
        &[
            "--log-root",
            missing.to_str().unwrap(),
            "--cri-endpoint",
            "none",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(66));
    let err = stderr(&o);
    assert!(err.contains("--log-root"), "{err}");
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "said twice: {err}"
    );
    // An address in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = podlogd(
        &[
            "--log-root",
            t.root.to_str().unwrap(),
            "--cri-endpoint",
            "none",
            "--listen",
            &addr,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(69), "{}", stderr(&o));
    assert!(stderr(&o).contains("--listen"), "{}", stderr(&o));
}

/// The DaemonSet keeps the capabilities the systemd unit keeps, no more,
/// and probes the endpoints podlogd serves without credentials.
#[test]
fn the_daemonset_and_the_unit_agree() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let ds: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo.join("deploy/kubernetes/daemonset.yaml")).unwrap(),
    )
    .unwrap();
    let c = &ds["spec"]["template"]["spec"]["containers"][0];
    let mut added: Vec<String> = c["securityContext"]["capabilities"]["add"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| format!("CAP_{}", v.as_str().unwrap()))
        .collect();
    added.sort();
    let unit = std::fs::read_to_string(repo.join("systemd/podlogd.service")).unwrap();
    let mut kept: Vec<String> = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    kept.sort();
    assert_eq!(added, kept);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
}
