//! Carries the schema (`sql/`) inside the binary, so `astro init` works from any directory:
//! writes `$OUT_DIR/schema_files.rs`, one `include_str!` per SQL file, in apply order.

use std::fmt::Write as _;
use std::path::Path;

/// The folders of `sql/` and the group each belongs to (see src/schema.rs).
const GROUPS: [(&str, &str); 3] = [
    ("sql", "Group::Both"),
    ("sql/embedded", "Group::EmbeddedOnly"),
    ("sql/schedule", "Group::Schedule"),
];

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut code = String::from("&[\n");
    for (folder, group) in GROUPS {
        let dir = Path::new(&root).join(folder);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
            .filter_map(|entry| {
                let path = entry.expect("a directory entry").path();
                let is_sql = path.is_file() && path.extension().is_some_and(|ext| ext == "sql");
                is_sql.then(|| path.file_name().unwrap().to_string_lossy().into_owned())
            })
            .collect();
        names.sort();
        for name in names {
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
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("schema_files.rs");
    std::fs::write(out, code).expect("write schema_files.rs");
}
