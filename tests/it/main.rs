//! The built binary end to end, one module per feature, in one test binary.
//!
//! The rules every module keeps:
//! - Loopback only: every server binds 127.0.0.1 (`localhost` names a second origin on the same
//!   machine), and no test reaches the internet; a host that must not resolve is `.invalid`.
//! - astro runs through `support::Astro` alone, with none of the variables it reads and no proxy
//!   unless the test sets them.
//! - A failure is asserted as ClickHouse meets it, with `support::assert_failed`: exit status 1,
//!   nothing on stdout, one line on stderr. Call sites add their own checks of the line.
//! - Time is asserted only as a lower bound (a wait that must have happened); a budget a test
//!   sets leaves slack for a loaded machine.
//! - Temporary files go under the system temporary directory, named with the process id.
//! - A helper two modules need lives in `support.rs`; one that a single module needs stays there.

mod cluster; // astro init --cluster: the replicated schema and the check of every replica
mod compression; // gzip, deflate, br and zstd answers; --max-bytes counts decoded bytes
mod credentials; // headers file, bearer, Basic auth, API key parameter: where each goes, never shown
mod cursor; // --cursor-stdin, the incremental cursor from executable()'s input
mod fan_out; // --concurrency, --max-rps, --each-row: the same rows whatever the concurrency
mod fetch; // one answer: rows and formats, retries, the time budget, the byte cap, the failure line
mod http_faults; // malformed HTTP, absurd sizes, connections closed: what counts as an attempt
mod install; // astro install and uninstall into temporary server directories
mod load; // astro load and astro init against a recording stand-in for ClickHouse's HTTP interface
mod oauth; // OAuth2 client credentials: the token asked for, reused, renewed, kept on its origin
mod pagination; // --paginate: every paginator style, all pages or nothing, loops, the origin
mod real_apis; // --record, POST and GraphQL bodies, --stop-when, --total and --total-header
mod records; // --records pointers and --require
mod redirects; // redirects to another scheme, or beyond --max-redirects
mod support; // the loopback servers, the Astro builder, assert_failed, shared bodies and runners
mod tls; // HTTPS against the platform certificate store, TLS failures not retried
mod udf; // astro udf in executable_pool mode: blocks, the guard, the block's budget and byte cap
