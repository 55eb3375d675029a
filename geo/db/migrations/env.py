"""Alembic environment: the connection comes from geo.db.schema, never from an ini file."""

from alembic import context
from geoalchemy2 import alembic_helpers

import geo.core.work  # noqa: F401  (its tables on the same metadata)
from geo.core.model import Base


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    # GiST indexes on geom are written by hand in the migrations, not declared in the model.
    if type_ == "index" and reflected and compare_to is None and str(name).endswith("_geom"):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=include_object,
    process_revision_directives=alembic_helpers.writer,
    render_item=alembic_helpers.render_item,
    # PostGIS and tiger tables live in the same database: ignore what we did not define.
    include_name=lambda name, type_, parent: type_ != "table" or name in Base.metadata.tables,
)
with context.begin_transaction():
    context.run_migrations()
