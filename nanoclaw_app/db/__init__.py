"""Central database: one writer connection, numbered migrations, and typed query modules per table group."""
