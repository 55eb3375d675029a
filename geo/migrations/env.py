"""Alembic environment: the connection comes from geo.schema, never from an ini file."""

from alembic import context
from geoalchemy2 import alembic_helpers

from geo.model import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=alembic_helpers.include_object,
    process_revision_directives=alembic_helpers.writer,
    render_item=alembic_helpers.render_item,
    # PostGIS and tiger tables live in the same database: ignore what we did not define.
    include_name=lambda name, type_, parent: type_ != "table" or name in Base.metadata.tables,
)
with context.begin_transaction():
    context.run_migrations()
