//! The built binary end to end, against loopback servers (a fake API with faults on demand, a
//! recording stand-in for a ClickHouse server's HTTP interface). One test binary, a module per
//! command; no test reaches the internet.

mod cluster;
mod fetch;
mod hostile;
mod install;
mod load;
mod records;
mod support;
mod tls;
mod udf;
