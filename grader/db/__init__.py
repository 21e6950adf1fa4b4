"""The grader's one database: `schema` (every table), `engine` (the SQLAlchemy database engine, SQLite's
pragmas, the migrations run at start), `store` (the submissions' records and their compare-and-set leases)
and `migrations/` (Alembic's history; revision ids never change, so every existing database upgrades)."""
