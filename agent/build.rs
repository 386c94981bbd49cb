//! Records the commit podlogd is built from, for `podlog_build_info`: the
//! `PODLOG_COMMIT` variable when the builder sets it (an image build
//! without `.git`), else `git rev-parse`, else `unknown`.

fn main() {
    println!("cargo:rerun-if-env-changed=PODLOG_COMMIT");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    if let Ok(head) = std::fs::read_to_string("../.git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=../.git/{r}");
        }
    }
    if std::env::var_os("PODLOG_COMMIT").is_some() {
        return;
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|c| !c.is_empty());
    if let Some(c) = commit {
        println!("cargo:rustc-env=PODLOG_COMMIT={c}");
    }
}
