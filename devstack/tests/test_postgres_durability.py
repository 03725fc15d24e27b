"""The local PostgreSQL keeps what it acknowledged: fsync, synchronous_commit and full_page_writes are on,
unless a caller (the benchmark) turns them off and says so."""

from __future__ import annotations

from pathlib import Path

from devstack.postgres import LocalPostgres, free_port

DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")


def test_a_server_started_the_default_way_is_durable(postgres_server: LocalPostgres) -> None:
    assert {name: postgres_server.psql(f"SHOW {name}") for name in DURABILITY} == dict.fromkeys(
        DURABILITY, "on"
    )


def test_a_cluster_made_with_durability_off_in_its_config_starts_durable(scratch_dir: Path) -> None:
    """Clusters made before kept `fsync = off` in postgresql.conf: the command line wins."""
    server = LocalPostgres(root=scratch_dir / "old-cluster", port=free_port())
    server.init()
    with (server.data_dir / "postgresql.conf").open("a") as conf:
        conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    server.start()
    try:
        assert {name: server.psql(f"SHOW {name}") for name in DURABILITY} == dict.fromkeys(DURABILITY, "on")
        server.stop()
        server.durable = False  # what the benchmark asks for
        server.start()
        assert {name: server.psql(f"SHOW {name}") for name in DURABILITY} == dict.fromkeys(DURABILITY, "off")
    finally:
        server.destroy()
