"""Properties of the customer ramdisk for arbitrary small filesystems (beyond the cust_A vector)."""

from __future__ import annotations

import io
import tarfile

from hypothesis import given, settings
from hypothesis import strategies as st

from eif.eif_bytes import parse_newc
from eif.tarbuild import add
from infra.image import tar_reader as tar
from infra.image.image_config import ImageConfig
from infra.image.ramdisks import write_customer_cpio

names = st.text(alphabet="abcXY-._", min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))
files = st.dictionaries(
    st.lists(names, min_size=1, max_size=3).map(tuple),
    st.tuples(st.binary(max_size=40), st.integers(0, 0o7777), st.integers(0, 70000), st.integers(1, 2**31)),
    max_size=8,
)


def _tar(tree: dict[tuple[str, ...], tuple[bytes, int, int, int]], shuffle_seed: int) -> bytes:
    entries: dict[str, dict[str, object]] = {}
    for path, (data, mode, uid, mtime) in tree.items():
        for depth in range(1, len(path)):
            entries.setdefault("/".join(path[:depth]) + "/", {"kind": tarfile.DIRTYPE, "mode": 0o755, "mtime": 7})
        entries["/".join(path)] = {"data": data, "mode": mode, "uid": uid, "mtime": mtime}
    # drop files that are also used as directories
    entries = {n: e for n, e in entries.items() if not (e.get("kind") is None and n + "/" in entries)}
    order = sorted(entries)
    order = order[shuffle_seed % max(len(order), 1) :] + order[: shuffle_seed % max(len(order), 1)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in order:
            add(t, name, **entries[name])  # type: ignore[arg-type]
    return buffer.getvalue()


def _cpio(data: bytes, config: ImageConfig) -> bytes:
    stream = io.BytesIO(data)
    members = tar.read_rootfs_members(stream, len(data))
    out = io.BytesIO()
    write_customer_cpio(out, members, lambda m: tar.read_data(stream, m), config)
    return out.getvalue()


CONFIG = ImageConfig(cmd=("/x",), entrypoint=None, env=("A=1",))


@settings(max_examples=60)
@given(tree=files, seed=st.integers(0, 50))
def test_every_rootfs_file_is_carried_with_its_attributes(
    tree: dict[tuple[str, ...], tuple[bytes, int, int, int]], seed: int
) -> None:
    archive = _tar(tree, seed)
    entries = parse_newc(_cpio(archive, CONFIG))
    by_name = {e["name"]: e for e in entries}
    with tarfile.open(fileobj=io.BytesIO(archive)) as t:
        for member in t.getmembers():
            if member.isreg():
                entry = by_name["rootfs/" + member.name]
                assert entry["data"] == t.extractfile(member).read()  # type: ignore[union-attr]
                assert entry["mode"] == 0o100000 | member.mode
                assert (entry["uid"], entry["mtime"]) == (member.uid, member.mtime)
    assert [e["ino"] for e in entries] == list(range(721, 721 + len(entries)))
    assert [e["name"] for e in entries][-3:] == ["cmd", "env", "TRAILER!!!"]


@settings(max_examples=30)
@given(tree=files, seed_a=st.integers(0, 50), seed_b=st.integers(0, 50))
def test_member_order_of_the_input_does_not_matter(
    tree: dict[tuple[str, ...], tuple[bytes, int, int, int]], seed_a: int, seed_b: int
) -> None:
    assert _cpio(_tar(tree, seed_a), CONFIG) == _cpio(_tar(tree, seed_b), CONFIG)


@settings(max_examples=150)
@given(data=st.data())
def test_corrupted_export_tar_gives_a_build_error_or_a_ramdisk(data: st.DataObject) -> None:
    from pathlib import Path

    from infra.image.errors import BuildError

    original = (Path(__file__).resolve().parent.parent / "data" / "eif" / "cust_A" / "docker_export.tar").read_bytes()
    blob = bytearray(original)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    candidate = bytes(blob[: data.draw(st.integers(0, len(blob)))])
    try:
        _cpio(candidate, CONFIG)
    except BuildError as err:
        assert err.code.startswith("TAR_") and err.reason
