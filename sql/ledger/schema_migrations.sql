-- The ledger of applied schema files, kept by `astro init` in the astro database (like a
-- migration tool's history table): one row per file and version of its text, so a later init
-- applies only files that are new or changed, and says which. Every file is idempotent on its
-- own, so the ledger decides what to send, never what is correct.
-- Not a schema file itself: `astro init` creates it after the first file has created the
-- database, and records nothing about it. ReplacingMergeTree(applied_at) ORDER BY file: the
-- latest version of each file wins.
CREATE TABLE IF NOT EXISTS astro.schema_migrations
(
    file       String COMMENT 'the schema file, within sql/',
    fingerprint String COMMENT 'FNV-1a of the statements applied',
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC'),
    astro      String COMMENT 'astro --version that applied it'
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY file;
