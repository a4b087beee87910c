"""PostgreSQL migrations: one file per schema version, numbered like the SQLite ones."""
