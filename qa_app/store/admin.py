"""Aliases, versions and partitions: what lets a server re-index without downtime and keep corpora
apart. The embedded Milvus Lite 2.5.1 has none of them; every verb here says so instead of failing."""

from __future__ import annotations

from collections.abc import Sequence

from qa_app.errors import StoreUnavailable
from qa_app.store.compat import EMBEDDED_VERSION, MILVUS_ERRORS, is_lite, not_found, reason, unimplemented
from qa_app.store.connection import Connection

VERSION_SEPARATOR = "__"  # NAME__2: the second build of the collection behind the alias NAME


async def resolve_alias(connection: Connection, name: str) -> str:
    """The collection `name` means: what an alias points to, else the name itself."""
    try:
        described = await connection.attempt(lambda c: c.describe_alias(name, timeout=connection.timeout))
    except MILVUS_ERRORS as exc:
        if unimplemented(exc) or not_found(exc):
            return name
        raise StoreUnavailable(f"Milvus is not answering ({connection.uri}): {reason(exc)}") from None
    return str(described.get("collection_name") or name)


async def point_alias(connection: Connection, collection: str, alias: str) -> bool:
    """Make `alias` name `collection`, atomically where it named another; False without aliases."""
    try:
        try:
            await connection.attempt(lambda c: c.alter_alias(collection, alias, timeout=connection.timeout))
        except MILVUS_ERRORS as exc:
            if not not_found(exc):
                raise
            await connection.attempt(lambda c: c.create_alias(collection, alias, timeout=connection.timeout))
    except MILVUS_ERRORS as exc:
        if unimplemented(exc):
            return False
        raise StoreUnavailable(f"cannot point alias {alias!r} at {collection!r}: {reason(exc)}") from None
    return True


async def versions(connection: Connection, name: str) -> list[str]:
    """The collections behind the alias `name` (NAME__1, NAME__2, ...), oldest first."""
    names = await connection.call(lambda c: c.list_collections(timeout=connection.timeout))
    prefix = name + VERSION_SEPARATOR
    return sorted((n for n in names if n.startswith(prefix) and n[len(prefix):].isdigit()),
                  key=lambda n: int(n[len(prefix):]))


async def server_version(connection: Connection) -> str:
    try:
        return str(await connection.attempt(lambda c: c.get_server_version(timeout=connection.timeout)))
    except MILVUS_ERRORS as exc:
        if not unimplemented(exc):
            raise StoreUnavailable(f"Milvus is not answering ({connection.uri}): {reason(exc)}") from None
        return EMBEDDED_VERSION


class Partitions:
    """A collection's partitions, one per corpus, where the backend has them (found out on first use)."""

    def __init__(self, connection: Connection, collection: str) -> None:
        self.connection = connection
        self.collection = collection
        self.supported: bool | None = None
        self._known: set[str] | None = None
        self._version: str | None = None

    async def version(self) -> str:
        if self._version is None:
            self._version = await server_version(self.connection)
        return self._version

    async def ensure(self, name: str) -> bool:
        """Create (and load) the partition `name`; False where the backend has no partitions (Lite 2.5.1,
        which would silently ignore partition_name on insert)."""
        if self.supported is False:
            return False
        connection, timeout = self.connection, self.connection.timeout
        try:
            if not await connection.attempt(lambda c: c.has_partition(self.collection, name, timeout=timeout)):
                await connection.attempt(lambda c: c.create_partition(self.collection, name, timeout=timeout))
                await connection.attempt(lambda c: c.load_partitions(self.collection, [name], timeout=timeout))
            if self._known is not None:
                self._known.add(name)
        except MILVUS_ERRORS as exc:
            if not unimplemented(exc):
                raise StoreUnavailable(f"cannot create partition {name!r}: {reason(exc)}") from None
            self.supported = False
            return False
        self.supported = True
        return True

    async def to_search(self, corpora: Sequence[str]) -> list[str] | None:
        """Partitions to search, where the backend has them: only those that exist (a search naming a
        missing partition fails, and the corpus clause in the expression says the rest)."""
        if not corpora or self.supported is False or is_lite(await self.version()):
            return None
        if self._known is None or not set(corpora) <= self._known:  # another process may add one
            try:
                listed = await self.connection.attempt(
                    lambda c: c.list_partitions(self.collection, timeout=self.connection.timeout))
            except MILVUS_ERRORS as exc:
                if not unimplemented(exc):
                    raise StoreUnavailable(f"cannot list partitions: {reason(exc)}") from None
                self.supported = False
                return None
            self._known = set(listed)
        names = [c for c in corpora if c in self._known]
        return names or None

    async def drop(self, name: str) -> None:
        """Release and drop the partition `name`, where there is one."""
        if not await self.ensure(name):
            return
        connection, timeout = self.connection, self.connection.timeout
        try:  # a loaded partition must be released first; Lite 3.x has no partition-level loading
            await connection.attempt(lambda c: c.release_partitions(self.collection, [name], timeout=timeout))
        except MILVUS_ERRORS as exc:
            if not unimplemented(exc):
                raise StoreUnavailable(f"cannot release partition {name!r}: {reason(exc)}") from None
        await connection.call(lambda c: c.drop_partition(self.collection, name, timeout=timeout))
        self._known = None
