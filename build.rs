//! Carries what a server needs inside the binary, so `astro init` and `astro install` work from
//! any directory: `$OUT_DIR/schema_files.rs` (one `include_str!` per file of `sql/`, in apply
//! order), `$OUT_DIR/server_config_files.rs` (the UDF and dictionary XML of
//! `clickhouse_config/`), and the build's description for `astro --version`.

use std::fmt::Write as _;
use std::path::Path;

/// The folders of `sql/` and the group each belongs to (see src/schema.rs).
const GROUPS: [(&str, &str); 3] = [
    ("sql", "Group::Both"),
    ("sql/embedded", "Group::EmbeddedOnly"),
    ("sql/schedule", "Group::Schedule"),
];

/// The server config files `astro install` writes: folder and the file-name ending the
/// stock server's `config.xml` globs for (`*_function.*ml`, `*_dictionary.*ml`).
const SERVER_CONFIG: [(&str, &str); 2] = [
    ("clickhouse_config/functions", "_function.xml"),
    ("clickhouse_config/dictionaries", "_dictionary.xml"),
];

/// The names of the files in `folder` ending with `suffix`, sorted.
fn files_in(root: &str, folder: &str, suffix: &str) -> Vec<String> {
    let dir = Path::new(root).join(folder);
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .filter_map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name()?.to_string_lossy().into_owned();
            (path.is_file() && name.ends_with(suffix)).then_some(name)
        })
        .collect();
    names.sort();
    names
}

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut code = String::from("&[\n");
    for (folder, group) in GROUPS {
        for name in files_in(&root, folder, ".sql") {
            let path = format!("{folder}/{name}");
            println!("cargo:rerun-if-changed={root}/{path}");
            writeln!(
                code,
                "    BuiltIn {{ path: {path:?}, group: {group}, text: include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/{path}\")) }},"
            )
            .unwrap();
        }
    }
    code.push_str("]\n");
    std::fs::write(Path::new(&out_dir).join("schema_files.rs"), code)
        .expect("write schema_files.rs");

    let mut config = String::from("&[\n");
    for (folder, suffix) in SERVER_CONFIG {
        for name in files_in(&root, folder, suffix) {
            let path = format!("{folder}/{name}");
            println!("cargo:rerun-if-changed={root}/{path}");
            writeln!(
                config,
                "    ({name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/{path}\"))),"
            )
            .unwrap();
        }
    }
    config.push_str("]\n");
    std::fs::write(Path::new(&out_dir).join("server_config_files.rs"), config)
        .expect("write server_config_files.rs");

    println!("cargo:rustc-env=ASTRO_BUILD={}", build_description(&root));
}

/// `0.1.0 (commit 1a2b3c4; x86_64-unknown-linux-musl, static: ...)`: what `astro
/// --version` says. The commit comes from ASTRO_GIT_COMMIT, else git, else `unknown` (a
/// source tree without git, or one git refuses to read).
fn build_description(root: &str) -> String {
    println!("cargo:rerun-if-env-changed=ASTRO_GIT_COMMIT");
    for head in [".git/HEAD", ".git/logs/HEAD"] {
        if Path::new(root).join(head).exists() {
            println!("cargo:rerun-if-changed={root}/{head}");
        }
    }
    let commit = std::env::var("ASTRO_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(|| {
            let output = std::process::Command::new("git")
                .args(["-C", root, "rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
            (output.status.success() && !commit.is_empty()).then_some(commit)
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let target = std::env::var("TARGET").unwrap_or_default();
    // crt-static: the C runtime is linked in (musl targets by default), so the binary needs no
    // libc of the machine it runs on.
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let linking = if features.split(',').any(|feature| feature == "crt-static") {
        "static: runs on any Linux of this architecture"
    } else {
        "dynamically linked: needs a libc as new as the build machine's"
    };
    format!(
        "{} (commit {commit}; {target}, {linking})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    )
}
