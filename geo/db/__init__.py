"""The database: private cluster, engine, schema and migrations, data revisions, memo."""
