"""Every migration file is applied, once, in the order of its number."""

from importlib import resources

from gateway import storage


def test_every_sql_file_is_a_migration_in_number_order() -> None:
    files = sorted(
        p.name for p in resources.files("gateway.sql").iterdir() if p.name.endswith(".sql")
    )
    assert list(storage.MIGRATIONS) == files
