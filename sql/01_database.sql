-- The astro database: every astro table and view lives here. Atomic engine (the default), so
-- views and tables can be replaced without downtime.
CREATE DATABASE IF NOT EXISTS astro;
