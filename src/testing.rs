//! What the property tests of several modules share: their configuration and the strategy for
//! text that looks like a URL.

use proptest::prelude::*;

/// `cases` cases a run; a failure prints its minimal input, and no regression files are left in
/// the source tree.
pub(crate) fn with_cases(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text that often parses as a URL, and sometimes barely: any text, odd schemes, hosts with
/// user info and ports, queries with secret-looking names, bracketed and numeric addresses.
pub(crate) fn url_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(https?|ftp|file|data|ws|x-y):(//)?\\PC{0,80}",
        "https?://[a-z0-9.:@\\[\\]%_-]{0,30}(:[0-9]{0,6})?/[ -~]{0,60}",
        "https?://h\\.example/[a-z]{0,5}\\?[a-zA-Z_%0-9=&;#+ ]{0,60}",
        "https?://\\[[0-9a-f:.]{0,40}\\]/",
        "https?://(0x[0-9a-f]{1,8}|[0-9]{1,10}|[0-9]{1,3}(\\.[0-9]{1,4}){0,3})/",
    ]
}
