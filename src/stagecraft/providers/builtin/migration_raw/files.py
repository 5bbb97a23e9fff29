"""Migration files of the ``raw`` engine: ``<version>_<title>.sql`` in one directory."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from stagecraft.providers.migration import MigrationFile, MigrationFileError, display_path

FILE_NAME = re.compile(r"^(?P<version>\d+)(?:_(?P<title>.*))?\.sql$", re.IGNORECASE)
NO_TRANSACTION = re.compile(r"^\s*--\s*stagecraft:no-transaction\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class SqlMigration(MigrationFile):
    """A ``.sql`` migration file: its text and whether it runs in a transaction."""

    text: str = ""
    transactional: bool = True


def discover(directory: Path, database: str = "main") -> list[SqlMigration]:
    """Read and parse every ``*.sql`` migration in ``directory`` (not recursive)."""
    if not directory.is_dir():
        raise MigrationFileError(
            f"database {database}: migration directory {display_path(directory)} does not exist",
            hint=f"create it, or fix databases.{database}.migrations.path in stagecraft.yml",
        )
    found: dict[int, SqlMigration] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() != ".sql":
            continue
        migration = _read_file(path, database)
        other = found.get(migration.version)
        if other is not None:
            raise MigrationFileError(
                f"{display_path(path)} and {display_path(other.path)} have the same version "
                f"{migration.version} (database {database})",
                hint="give each migration a unique numeric prefix",
            )
        found[migration.version] = migration
    return [found[v] for v in sorted(found)]


def _read_file(path: Path, database: str) -> SqlMigration:
    match = FILE_NAME.fullmatch(path.name)
    if match is None:
        raise MigrationFileError(
            f"{display_path(path)}: migration file name must start with a version number "
            f"(database {database})",
            hint="name files like 0001_create_users.sql; the number orders them",
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationFileError(
            f"{display_path(path)}: not valid UTF-8 (byte {exc.start})",
            hint="save the file as UTF-8",
        ) from None
    return SqlMigration(
        version=int(match["version"]),
        name=path.name,
        path=path,
        checksum=checksum(data),
        text=text,
        transactional=NO_TRANSACTION.search(text) is None,
    )


def checksum(data: bytes) -> str:
    """SHA-256 of a file's bytes, with CRLF line ends counted as LF."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()
