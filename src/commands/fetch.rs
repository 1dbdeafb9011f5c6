//! `astro fetch`: one validated answer, printed as rows only once it is complete.

use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result};

use super::hint_for_default_url;
use crate::api;
use crate::cli::{FetchArgs, OutputKind};

pub(super) async fn run(args: FetchArgs) -> Result<()> {
    let url = args.api.url().map_err(anyhow::Error::msg)?;
    let client = args.api.client()?;
    let hint = |error| hint_for_default_url(error, args.api.is_default_url());
    // Both arms write only once the whole answer is fetched and validated.
    let mut stdout = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let written = match args.output {
        OutputKind::Raw => {
            let row = api::fetch_raw(&client, &url).await.map_err(hint)?;
            // Escaped straight into stdout: no second copy of a large payload in memory.
            args.format.write_raw(&mut stdout, &row)
        }
        OutputKind::People => {
            let answer = api::fetch_people(&client, &url).await.map_err(hint)?;
            let rows = args.format.people(answer.fetched_at);
            let mut written = Ok(());
            answer.for_each(|person| {
                if written.is_ok() {
                    written = rows.write(&mut stdout, &person.craft, &person.name);
                }
            });
            written
        }
    };
    written
        .and_then(|()| stdout.flush())
        .context("cannot write the rows to stdout")
}
