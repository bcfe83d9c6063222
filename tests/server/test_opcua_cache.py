"""The cached standard address space (fillfinish/opcua_cache.py, decision 0027): written once, read lazily by every
later server start, used only when complete and private, and a second writer never waits for the first."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from asyncua import Server, ua

from fillfinish import opcua_cache


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder with a shelf written by standard_space_shelf (once for the module: writing takes seconds)."""
    import asyncio

    folder = tmp_path_factory.mktemp("opcua") / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(opcua_cache.CACHE_ENV, str(folder))
        assert opcua_cache.ready_shelf() is None
        assert asyncio.run(opcua_cache.standard_space_shelf()) is not None
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(opcua_cache.CACHE_ENV, str(folder))
    return folder


async def test_written_once_then_a_server_starts_from_it_with_the_standard_nodes(
        written: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(opcua_cache.CACHE_ENV, str(written))
    shelf = opcua_cache.ready_shelf()
    assert shelf is not None and shelf.parent == written
    assert not [p for p in written.iterdir() if ".build-" in p.name]  # moved into place, nothing half-written left
    assert await opcua_cache.standard_space_shelf() == shelf  # a later call finds it ready
    server = Server()
    await server.init(shelf)
    status = server.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_State))
    assert await status.read_browse_name() == ua.QualifiedName("State", 0)
    objects = await server.nodes.objects.get_children()
    assert server.nodes.server in objects  # browsing follows references into the shelf


async def test_a_shelf_others_may_write_is_not_used(written: Path, cache: Path) -> None:
    import shutil

    shutil.copytree(written, cache)
    os.chmod(cache, 0o700)
    shelf = opcua_cache.ready_shelf()
    assert shelf is not None and shelf.parent == cache
    part = next(p for p in cache.iterdir() if p.name.startswith(shelf.name) and p.stat().st_size > 0)
    os.chmod(part, 0o666)  # group and others may write it: a pickle anyone could replace
    assert opcua_cache.ready_shelf() is None


async def test_while_another_process_writes_it_the_server_is_built_as_before(cache: Path) -> None:
    path = opcua_cache.shelf_path()
    cache.mkdir(mode=0o700)
    lock = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held by "another writer" (flock is per open file description)
        assert await opcua_cache.standard_space_shelf() is None  # no waiting
    finally:
        os.close(lock)


async def test_a_cache_folder_that_cannot_be_written_means_no_cache(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv(opcua_cache.CACHE_ENV, str(blocked / "cache"))
    assert await opcua_cache.standard_space_shelf() is None
