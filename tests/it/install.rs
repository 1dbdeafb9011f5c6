//! `astro install` and `astro uninstall` into temporary server directories.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{ApiServer, Astro, Reply, astro, stderr, stdout};

struct Dirs {
    root: PathBuf,
    scripts: PathBuf,
    config: PathBuf,
}

impl Dirs {
    fn new(name: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("astro-install-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let scripts = root.join("user_scripts");
        let config = root.join("clickhouse-server");
        std::fs::create_dir_all(&scripts).unwrap();
        std::fs::create_dir_all(&config).unwrap();
        Self {
            root,
            scripts,
            config,
        }
    }

    fn args<'a>(&'a self, command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            command,
            "--user-scripts",
            self.scripts.to_str().unwrap(),
            "--config-dir",
            self.config.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args
    }

    /// Every file under the root, relative to it.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

const INSTALLED: [&str; 5] = [
    "clickhouse-server/astro_fetch_or_null_function.xml",
    "clickhouse-server/astro_function.xml",
    "clickhouse-server/astro_people_dictionary.xml",
    "user_scripts/.astro-install.json",
    "user_scripts/astro",
];

#[test]
fn install_writes_the_binary_and_the_xml_and_prints_the_reloads() {
    let dirs = Dirs::new("fresh");
    let output = astro(&dirs.args("install", &[]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(dirs.files(), INSTALLED);
    let binary = dirs.scripts.join("astro");
    assert_eq!(
        std::fs::read(&binary).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_astro")).unwrap()
    );
    assert_eq!(
        std::fs::metadata(&binary).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let udf = std::fs::read_to_string(dirs.config.join("astro_function.xml")).unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("clickhouse_config/functions/astro_function.xml"),
    )
    .unwrap();
    assert_eq!(udf, shipped);
    assert_eq!(
        stdout(&output),
        "SYSTEM RELOAD FUNCTIONS;\nSYSTEM RELOAD DICTIONARIES;\n"
    );
    // The installed binary runs and says what it is.
    let version = std::process::Command::new(&binary)
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    assert!(
        version.starts_with("astro ") && version.contains("commit "),
        "{version}"
    );
}

#[test]
fn install_is_idempotent_and_upgrades_its_own_files() {
    let dirs = Dirs::new("again");
    assert!(astro(&dirs.args("install", &[])).status.success());
    let again = astro(&dirs.args("install", &[]));
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stderr(&again).matches("unchanged").count(),
        4,
        "{}",
        stderr(&again)
    );
    // A new allowlist replaces the UDF file astro wrote before, without --force.
    let output = astro(&dirs.args("install", &["--allow-host", "api.example.com"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let udf = std::fs::read_to_string(dirs.config.join("astro_function.xml")).unwrap();
    assert!(
        udf.contains("<command>astro udf --chunk-header --allow-host api.example.com</command>"),
        "{udf}"
    );
}

#[test]
fn install_refuses_to_replace_a_file_it_did_not_write() {
    let dirs = Dirs::new("foreign");
    let foreign = dirs.config.join("astro_function.xml");
    std::fs::write(&foreign, "<functions><!-- the admin's own --></functions>").unwrap();
    let output = astro(&dirs.args("install", &[]));
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("not replacing") && message.contains("--force"),
        "{message}"
    );
    // Nothing at all was written.
    assert_eq!(dirs.files(), ["clickhouse-server/astro_function.xml"]);
    let forced = astro(&dirs.args("install", &["--force"]));
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(dirs.files(), INSTALLED);
}

#[test]
fn dry_run_writes_nothing() {
    let dirs = Dirs::new("dry");
    let output = astro(&dirs.args("install", &["--dry-run"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output).matches("would write").count(), 4);
    assert!(dirs.files().is_empty());
}

#[test]
fn uninstall_removes_exactly_what_install_wrote() {
    let dirs = Dirs::new("uninstall");
    let neighbour = dirs.config.join("other_function.xml");
    std::fs::write(&neighbour, "<functions/>").unwrap();
    assert!(astro(&dirs.args("install", &[])).status.success());
    // A file astro wrote and someone edited since is kept unless --force.
    std::fs::write(
        dirs.config.join("astro_people_dictionary.xml"),
        "<dictionaries/>",
    )
    .unwrap();
    let refused = astro(&dirs.args("uninstall", &[]));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("changed since astro wrote it"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(dirs.files().len(), 6);
    let output = astro(&dirs.args("uninstall", &["--force"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(dirs.files(), ["clickhouse-server/other_function.xml"]);
    let nothing = astro(&dirs.args("uninstall", &[]));
    assert_eq!(nothing.status.code(), Some(1));
    assert!(
        stderr(&nothing).contains("nothing to uninstall"),
        "{}",
        stderr(&nothing)
    );
}

#[test]
fn a_missing_directory_is_refused() {
    let dirs = Dirs::new("missing");
    let missing = dirs.root.join("no-such-dir");
    let output = astro(&[
        "install",
        "--user-scripts",
        missing.to_str().unwrap(),
        "--config-dir",
        dirs.config.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("(--user-scripts)"),
        "{}",
        stderr(&output)
    );
    assert!(dirs.files().is_empty());
}

#[test]
fn reload_runs_the_statements_on_the_server() {
    let dirs = Dirs::new("reload");
    let clickhouse = ApiServer::always(Reply::clickhouse_ok());
    let output = Astro::new(&dirs.args(
        "install",
        &["--reload", "--clickhouse-url", &clickhouse.url("/")],
    ))
    .env("CLICKHOUSE_PASSWORD", "pw")
    .run();
    assert!(output.status.success(), "{}", stderr(&output));
    let statements: Vec<String> = clickhouse
        .requests()
        .iter()
        .map(|request| String::from_utf8_lossy(&request.body).into_owned())
        .collect();
    assert_eq!(
        statements,
        ["SYSTEM RELOAD FUNCTIONS", "SYSTEM RELOAD DICTIONARIES"]
    );
    assert!(stdout(&output).is_empty());
}

/// Root runs uninstall: a manifest that lists anything but astro's own files in the two
/// directories (an absolute path elsewhere, a relative path that climbs out, another name) is
/// refused and named, with --force too, and nothing is removed.
#[test]
fn uninstall_never_removes_what_astro_does_not_write() {
    let dirs = Dirs::new("outside");
    assert!(astro(&dirs.args("install", &[])).status.success());
    let victim = dirs.root.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let manifest_path = dirs.scripts.join(".astro-install.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let fingerprint = |path: &Path| {
        // FNV-1a 64, as astro fingerprints its files: the entry must look right but for its path.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in std::fs::read(path).unwrap() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{hash:016x}")
    };
    let neighbour = dirs.config.join("users.xml");
    std::fs::write(&neighbour, "<clickhouse/>").unwrap();
    for planted in [
        victim.display().to_string(),
        "user_scripts/../../victim".to_owned(),
        format!("{}/../victim", dirs.scripts.display()),
        neighbour.display().to_string(),
    ] {
        let mut changed = manifest.clone();
        let fingerprint = fingerprint(if planted.ends_with("users.xml") {
            &neighbour
        } else {
            &victim
        });
        changed["files"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"path": planted, "fingerprint": fingerprint}));
        std::fs::write(&manifest_path, serde_json::to_vec(&changed).unwrap()).unwrap();
        for force in [&[][..], &["--force"][..]] {
            let output = crate::support::Astro::new(&dirs.args("uninstall", force))
                .current_dir(&dirs.root)
                .run();
            let message = crate::support::assert_failed(&output);
            assert!(
                message.contains("which astro never writes") && message.contains(&planted),
                "{planted}: {message}"
            );
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
            assert_eq!(
                std::fs::read_to_string(&neighbour).unwrap(),
                "<clickhouse/>"
            );
            assert!(dirs.scripts.join("astro").exists(), "nothing was removed");
        }
    }
}

/// Two installs at once leave a manifest that matches the files (a lock keeps them apart), so
/// the next uninstall removes everything without --force.
#[test]
fn two_installs_at_once_leave_a_consistent_manifest() {
    for round in 0..4 {
        let dirs = Dirs::new(&format!("twice-{round}"));
        let hosts = [
            "a.example.com",
            "b.example.com",
            "c.example.com",
            "d.example.com",
        ];
        let children: Vec<_> = hosts
            .iter()
            .map(|host| {
                crate::support::Astro::new(&dirs.args("install", &["--allow-host", host])).spawn()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", stderr(&output));
        }
        let output = astro(&dirs.args("uninstall", &[]));
        assert!(
            output.status.success(),
            "round {round}: {}",
            stderr(&output)
        );
        assert!(dirs.files().is_empty(), "{:?}", dirs.files());
    }
}
