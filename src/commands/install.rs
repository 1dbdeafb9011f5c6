//! `astro install` and `astro uninstall`: put astro into a ClickHouse server's own directories
//! (the running binary into the user scripts directory, the UDF and dictionary XML carried in
//! the binary into the config directory), and take out exactly what was put in.
//!
//! A manifest in the user scripts directory (`.astro-install.json`) records every file written
//! and its fingerprint, so a later install replaces only files astro wrote and uninstall
//! removes only those; a file someone else wrote or edited is left alone unless `--force`.
//!
//! Root runs these, so nothing is trusted that could point elsewhere: only `astro` in the user
//! scripts directory and `astro*_function.xml` / `astro*_dictionary.xml` in the config
//! directory are ever written or removed, whatever the manifest says (even with `--force`);
//! files are written through a temporary file created exclusively under a random name (never
//! through a link planted at a known name); the manifest is rewritten after each file, so a
//! failure halfway leaves a manifest of what was written; and an exclusive lock on the user
//! scripts directory keeps two installs (or an install and an uninstall) from interleaving.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::clickhouse_client::Server;
use crate::fingerprint::fnv1a;
use crate::text;

/// The UDF and dictionary XML of `clickhouse_config/`, as (file name, text).
const SERVER_CONFIG: &[(&str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/server_config_files.rs"));

const MANIFEST: &str = ".astro-install.json";

/// The server's directories astro installs into, as given.
pub(crate) struct Dirs {
    /// The server's user_scripts_path (`--user-scripts`).
    pub(crate) user_scripts: PathBuf,
    /// The server's config directory (`--config-dir`).
    pub(crate) config_dir: PathBuf,
}

/// What `astro install` and `astro uninstall` share.
pub(crate) struct Common {
    pub(crate) dirs: Dirs,
    /// Replace (or remove) files astro did not write, or that were changed since.
    pub(crate) force: bool,
    /// Say what would be done, and do nothing.
    pub(crate) dry_run: bool,
    /// Run the reload statements on this server instead of printing them.
    pub(crate) reload: Option<Server>,
}

/// One install, as the command line built it.
pub(crate) struct Install {
    pub(crate) common: Common,
    /// Flags the UDF's command line gets beyond the shipped ones (its allowlist).
    pub(crate) udf_flags: Vec<String>,
}

/// One uninstall, as the command line built it.
pub(crate) struct Uninstall {
    pub(crate) common: Common,
}

/// What SQL makes a running server read the new files.
const RELOAD: [&str; 2] = ["SYSTEM RELOAD FUNCTIONS", "SYSTEM RELOAD DICTIONARIES"];

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    /// The `astro --version` that wrote the files.
    astro: String,
    files: Vec<Written>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Written {
    path: PathBuf,
    /// [`fnv1a`] of the content, as 16 hex digits.
    fingerprint: String,
}

/// One file to be written.
struct Planned {
    path: PathBuf,
    content: Vec<u8>,
    executable: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Action {
    Create,
    /// The file holds these bytes already.
    Unchanged,
    /// astro wrote the file before, and nobody changed it since.
    Update,
    /// Someone else wrote or changed the file: only with --force.
    Replace,
}

fn fingerprint(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a(bytes))
}

fn manifest_path(user_scripts: &Path) -> PathBuf {
    user_scripts.join(MANIFEST)
}

/// Whether astro writes `path`: `<user-scripts>/astro`, or an `astro*_function.xml` or
/// `astro*_dictionary.xml` directly in `<config-dir>` (both directories canonical). Nothing else
/// is ever written or removed, whatever a manifest lists.
fn is_ours(path: &Path, user_scripts: &Path, config_dir: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    let config_file = name.starts_with("astro")
        && (name.ends_with("_function.xml") || name.ends_with("_dictionary.xml"));
    (dir == user_scripts && name == "astro") || (dir == config_dir && config_file)
}

/// An exclusive lock on the user scripts directory, held while an install or uninstall reads
/// and writes the manifest and the files (a lock on the directory itself: no lock file to plant
/// or leave behind).
fn lock(user_scripts: &Path) -> Result<fs::File> {
    let dir = fs::File::open(user_scripts)
        .with_context(|| format!("cannot open {}", user_scripts.display()))?;
    dir.lock()
        .with_context(|| format!("cannot lock {}", user_scripts.display()))?;
    Ok(dir)
}

fn read_manifest(user_scripts: &Path) -> Result<Option<Manifest>> {
    let path = manifest_path(user_scripts);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a manifest astro wrote", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The directory, which must exist: astro installs into a server's directories, it does not
/// invent them (a typo would otherwise install where no server looks).
fn existing_dir(dir: &Path, flag: &str) -> Result<PathBuf> {
    fs::canonicalize(dir)
        .ok()
        .filter(|path| path.is_dir())
        .with_context(|| {
            format!(
                "{} does not exist or is not a directory ({flag}); is the ClickHouse server installed there?",
                dir.display()
            )
        })
}

/// The UDF XML with the allowlist of the command line in place of the shipped one.
fn with_udf_flags(xml: &str, flags: &[String]) -> Result<String> {
    if flags.is_empty() {
        return Ok(xml.to_owned());
    }
    let start = xml
        .find("<command>astro udf")
        .context("the UDF XML has no `astro udf` command line")?;
    let end = start
        + xml[start..]
            .find("</command>")
            .context("the UDF XML's command line is not closed")?;
    // The values were checked by the command line parser: host names and addresses only, with
    // nothing XML would read as markup.
    let mut command = xml[start..end].trim_end().to_owned();
    for flag in flags {
        command.push(' ');
        command.push_str(flag);
    }
    Ok(format!("{}{command}{}", &xml[..start], &xml[end..]))
}

fn plan(udf_flags: &[String], user_scripts: &Path, config_dir: &Path) -> Result<Vec<Planned>> {
    let exe = std::env::current_exe().context("cannot find the running binary")?;
    let binary = fs::read(&exe).with_context(|| format!("cannot read {}", exe.display()))?;
    let mut planned = vec![Planned {
        path: user_scripts.join("astro"),
        content: binary,
        executable: true,
    }];
    for (name, text) in SERVER_CONFIG {
        let text = if name.ends_with("_function.xml") {
            with_udf_flags(text, udf_flags)?
        } else {
            (*text).to_owned()
        };
        planned.push(Planned {
            path: config_dir.join(name),
            content: text.into_bytes(),
            executable: false,
        });
    }
    Ok(planned)
}

fn action(file: &Planned, manifest: Option<&Manifest>) -> Result<Action> {
    let current = match fs::read(&file.path) {
        Ok(current) => current,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Action::Create),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", file.path.display()));
        }
    };
    if current == file.content {
        return Ok(Action::Unchanged);
    }
    let ours = manifest.is_some_and(|manifest| {
        manifest.files.contains(&Written {
            path: file.path.clone(),
            fingerprint: fingerprint(&current),
        })
    });
    Ok(if ours {
        Action::Update
    } else {
        Action::Replace
    })
}

/// Writes `content` to `path` whole or not at all (a server may be running the old binary: a
/// rename never meets "text file busy"). The temporary file is created exclusively (O_EXCL)
/// under a random name in the same directory, so a link planted there is never written
/// through; its mode is set on the open file, and it is removed if anything fails.
fn write_atomically(path: &Path, content: &[u8], executable: bool) -> Result<()> {
    let dir = path
        .parent()
        .context("a file to install has no directory")?;
    let written = (|| -> std::io::Result<()> {
        let mut file = tempfile::Builder::new()
            .prefix(".astro-install.")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        file.write_all(content)?;
        use std::os::unix::fs::PermissionsExt;
        let mode = if executable { 0o755 } else { 0o644 };
        file.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|error| error.error)?;
        Ok(())
    })();
    written.with_context(|| format!("cannot write {}", path.display()))
}

fn write_manifest(user_scripts: &Path, files: Vec<Written>) -> Result<()> {
    let manifest = Manifest {
        astro: env!("ASTRO_BUILD").to_owned(),
        files,
    };
    let mut text = serde_json::to_vec_pretty(&manifest).context("cannot write the manifest")?;
    text.push(b'\n');
    write_atomically(&manifest_path(user_scripts), &text, false)
}

pub(super) async fn install(job: Install) -> Result<()> {
    let args = &job.common;
    let user_scripts = existing_dir(&args.dirs.user_scripts, "--user-scripts")?;
    let config_dir = existing_dir(&args.dirs.config_dir, "--config-dir")?;
    let _lock = lock(&user_scripts)?;
    let manifest = read_manifest(&user_scripts)?;
    let planned = plan(&job.udf_flags, &user_scripts, &config_dir)?;
    let mut actions = Vec::with_capacity(planned.len());
    for file in &planned {
        actions.push(action(file, manifest.as_ref())?);
    }
    let refused: Vec<String> = planned
        .iter()
        .zip(&actions)
        .filter(|(_, action)| **action == Action::Replace)
        .map(|(file, _)| file.path.display().to_string())
        .collect();
    if !refused.is_empty() && !args.force {
        bail!(
            "not replacing {}: astro did not write {} (or it was changed since); check, then run again with --force",
            refused.join(", "),
            text::one_or_many(refused.len(), "it", "them")
        );
    }
    // Everything astro wrote before that it still writes or may remove (a file no longer
    // shipped stays recorded, so uninstall still removes it); entries that point anywhere else
    // are dropped.
    let mut recorded: Vec<Written> = manifest
        .map(|manifest| manifest.files)
        .unwrap_or_default()
        .into_iter()
        .filter(|old| is_ours(&old.path, &user_scripts, &config_dir))
        .collect();
    let mut report = std::io::stderr().lock();
    let mut write = |file: &Planned| write_atomically(&file.path, &file.content, file.executable);
    let steps = planned.iter().zip(&actions);
    for (file, action) in steps {
        let verb = match (action, args.dry_run) {
            (Action::Unchanged, _) => "unchanged",
            (Action::Create, false) => "wrote",
            (Action::Create, true) => "would write",
            (Action::Update | Action::Replace, false) => "replaced",
            (Action::Update | Action::Replace, true) => "would replace",
        };
        if !args.dry_run {
            install_file(file, action, &mut recorded, &user_scripts, &mut write)?;
        }
        writeln!(report, "astro install: {verb} {}", file.path.display())?;
    }
    if args.dry_run {
        return Ok(());
    }
    drop(report);
    reload(args.reload.as_ref()).await
}

/// Writes one file (unless it holds its content already) with `write`, then the manifest with
/// it recorded: a failure halfway leaves a record of what was written, for the next install or
/// an uninstall.
fn install_file(
    file: &Planned,
    action: &Action,
    recorded: &mut Vec<Written>,
    user_scripts: &Path,
    write: &mut impl FnMut(&Planned) -> Result<()>,
) -> Result<()> {
    if *action != Action::Unchanged {
        write(file)?;
    }
    let written = Written {
        path: file.path.clone(),
        fingerprint: fingerprint(&file.content),
    };
    match recorded.iter_mut().find(|old| old.path == file.path) {
        Some(old) => *old = written,
        None => recorded.push(written),
    }
    write_manifest(user_scripts, recorded.clone())
}

pub(super) async fn uninstall(job: Uninstall) -> Result<()> {
    let args = &job.common;
    let user_scripts = existing_dir(&args.dirs.user_scripts, "--user-scripts")?;
    let config_dir = existing_dir(&args.dirs.config_dir, "--config-dir")?;
    let _lock = lock(&user_scripts)?;
    let Some(manifest) = read_manifest(&user_scripts)? else {
        bail!(
            "nothing to uninstall: no {} in {} (--user-scripts must be the directory astro was installed into)",
            MANIFEST,
            user_scripts.display()
        );
    };
    let foreign: Vec<String> = manifest
        .files
        .iter()
        .filter(|file| !is_ours(&file.path, &user_scripts, &config_dir))
        .map(|file| file.path.display().to_string())
        .collect();
    if !foreign.is_empty() {
        bail!(
            "not removing anything: the manifest {} lists {}, which astro never writes (only astro in {} and astro*_function.xml or astro*_dictionary.xml in {}); --force does not change this",
            manifest_path(&user_scripts).display(),
            foreign.join(", "),
            user_scripts.display(),
            config_dir.display()
        );
    }
    let mut changed = Vec::new();
    for file in &manifest.files {
        if let Ok(current) = fs::read(&file.path)
            && fingerprint(&current) != file.fingerprint
        {
            changed.push(file.path.display().to_string());
        }
    }
    if !changed.is_empty() && !args.force {
        bail!(
            "not removing {}: changed since astro wrote {}; check, then run again with --force",
            changed.join(", "),
            text::one_or_many(changed.len(), "it", "them")
        );
    }
    let mut report = std::io::stderr().lock();
    for file in &manifest.files {
        // The entry itself, a link included (never what a link points to).
        let verb = match (fs::symlink_metadata(&file.path).is_ok(), args.dry_run) {
            (false, _) => "already gone",
            (true, true) => "would remove",
            (true, false) => {
                fs::remove_file(&file.path)
                    .with_context(|| format!("cannot remove {}", file.path.display()))?;
                "removed"
            }
        };
        writeln!(report, "astro uninstall: {verb} {}", file.path.display())?;
    }
    if args.dry_run {
        return Ok(());
    }
    let path = manifest_path(&user_scripts);
    fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    drop(report);
    reload(args.reload.as_ref()).await
}

/// Runs the reload statements on the server, or prints them for the user to run.
async fn reload(server: Option<&Server>) -> Result<()> {
    let Some(server) = server else {
        let mut out = std::io::stdout().lock();
        for statement in RELOAD {
            writeln!(out, "{statement};")?;
        }
        return Ok(());
    };
    for statement in RELOAD {
        server.execute(statement, statement).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_config_is_carried() {
        let names: Vec<&str> = SERVER_CONFIG.iter().map(|(name, _)| *name).collect();
        assert!(names.contains(&"astro_function.xml"), "{names:?}");
        assert!(
            names.iter().any(|name| name.ends_with("_dictionary.xml")),
            "{names:?}"
        );
    }

    #[test]
    fn the_allowlist_goes_into_the_udf_command_line() {
        let (_, xml) = SERVER_CONFIG
            .iter()
            .find(|(name, _)| *name == "astro_function.xml")
            .unwrap();
        let flags = ["--allow-host".to_owned(), "api.example.com".to_owned()];
        let changed = with_udf_flags(xml, &flags).unwrap();
        assert!(
            changed.contains(
                "<command>astro udf --chunk-header --allow-host api.example.com</command>"
            ),
            "{changed}"
        );
        assert_eq!(with_udf_flags(xml, &[]).unwrap(), *xml);
        assert!(with_udf_flags("<functions/>", &flags).is_err());
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("astro-unit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::canonicalize(&dir).unwrap()
    }

    /// Only astro's own file names, directly in the two directories, are ever written or
    /// removed; `..`, other directories and other names are not.
    #[test]
    fn only_astros_own_files_are_ours() {
        let (us, config) = (Path::new("/srv/us"), Path::new("/etc/ch"));
        for ours in [
            "/srv/us/astro",
            "/etc/ch/astro_function.xml",
            "/etc/ch/astro_people_dictionary.xml",
            "/etc/ch/astro_fetch_or_null_function.xml",
        ] {
            assert!(is_ours(Path::new(ours), us, config), "{ours}");
        }
        for not_ours in [
            "/etc/passwd",
            "/srv/us/astro_function.xml",
            "/etc/ch/astro",
            "/etc/ch/users.xml",
            "/etc/ch/other_function.xml",
            "/srv/us/../victim",
            "/srv/us/sub/astro",
            "us/../../victim",
            "astro",
            "",
        ] {
            assert!(!is_ours(Path::new(not_ours), us, config), "{not_ours}");
        }
    }

    /// A link planted at the name the temporary file used to have is never written through.
    #[test]
    fn a_planted_link_is_not_written_through() {
        let dir = scratch("planted");
        let outside = scratch("planted-outside").join("victim");
        fs::write(&outside, b"precious").unwrap();
        let planted = dir.join(format!(".astro-install.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&outside, &planted).unwrap();
        write_atomically(&dir.join("astro"), b"binary", true).unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
        assert_eq!(fs::read(dir.join("astro")).unwrap(), b"binary");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.join("astro"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(
            fs::symlink_metadata(&planted)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    /// A write that fails halfway leaves a manifest of what was written before it.
    #[test]
    fn the_manifest_records_each_file_as_it_is_written() {
        let dir = scratch("halfway");
        let planned: Vec<Planned> = ["astro", "astro_function.xml"]
            .iter()
            .map(|name| Planned {
                path: dir.join(name),
                content: name.as_bytes().to_vec(),
                executable: false,
            })
            .collect();
        let mut recorded = Vec::new();
        let mut write = |file: &Planned| {
            if file.path.ends_with("astro_function.xml") {
                bail!("the config directory is read-only")
            }
            write_atomically(&file.path, &file.content, file.executable)
        };
        install_file(
            &planned[0],
            &Action::Create,
            &mut recorded,
            &dir,
            &mut write,
        )
        .unwrap();
        install_file(
            &planned[1],
            &Action::Create,
            &mut recorded,
            &dir,
            &mut write,
        )
        .unwrap_err();
        let manifest = read_manifest(&dir).unwrap().unwrap();
        assert_eq!(manifest.files.len(), 1);
        assert_eq!(manifest.files[0].path, dir.join("astro"));
        assert_eq!(manifest.files[0].fingerprint, fingerprint(b"astro"));
    }
}
