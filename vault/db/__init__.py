"""The database: engine and sessions, the unit of work, schema migrations."""
