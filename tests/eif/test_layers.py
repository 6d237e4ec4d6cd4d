"""Overlay2 layer semantics and tar encodings, checked through the exported member list."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from eif.conftest import DATA
from eif.tarbuild import add
from infra.image import tar_reader as tar
from infra.image.layers import MergedTree, apply_layer, export_members, init_layer_members
from infra.image.ramdisks import build_customer_ramdisk


def _layer(entries: list[tuple[str, dict[str, object]]]) -> list[tar.TarMember]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kwargs in entries:
            add(t, name, **kwargs)  # type: ignore[arg-type]
    data = buffer.getvalue()
    return list(tar.iter_members(io.BytesIO(data), len(data)))


def _export(*layers: list[tuple[str, dict[str, object]]]) -> dict[str, tar.TarMember]:
    tree = MergedTree()
    for layer in layers:
        apply_layer(tree, _layer(layer))
    return {m.name: m for m in export_members(tree)}


DIR = {"kind": tarfile.DIRTYPE, "mode": 0o755}


def test_whiteout_removes_a_lower_directory_subtree() -> None:
    merged = _export([("a/", DIR), ("a/b/", DIR), ("a/b/f", {"data": b"x"})], [("a/", DIR), ("a/.wh.b", {})])
    assert set(merged) == {"a/"}


def test_opaque_directory_hides_lower_entries_but_keeps_its_own() -> None:
    merged = _export(
        [("d/", DIR), ("d/old", {"data": b"1"}), ("d/sub/", DIR)],
        [("d/", DIR), ("d/new", {"data": b"2"}), ("d/.wh..wh..opq", {})],
    )
    assert set(merged) == {"d/", "d/new"}


def test_upper_directory_attributes_win() -> None:
    merged = _export([("d/", {"kind": tarfile.DIRTYPE, "mode": 0o700, "mtime": 1})],
                     [("d/", {"kind": tarfile.DIRTYPE, "mode": 0o755, "mtime": 2, "uid": 7})])  # fmt: skip
    assert (merged["d/"].mode, merged["d/"].mtime, merged["d/"].uid) == (0o755, 2, 7)


def test_file_replaced_by_directory_and_back() -> None:
    merged = _export([("x", {"data": b"f"})], [("x/", DIR), ("x/y", {"data": b"z"})], [("x", {"data": b"again"})])
    assert set(merged) == {"x"} and merged["x"].size == 5


def test_export_order_is_depth_first_sorted_by_name() -> None:
    merged = _export([("b/", DIR), ("a-b", {}), ("a/", DIR), ("a/z", {}), ("a.c", {}), ("B", {})])
    # filepath.Walk: "a" sorts before "a-b" within the root and is descended into first, unlike a plain
    # sort of full paths, which would put "a-b" ('-' < '/') before "a/z"
    assert list(merged) == ["B", "a/", "a/z", "a-b", "a.c", "b/"]


def test_second_path_of_a_hard_linked_file_is_exported_as_a_link_to_the_first() -> None:
    merged = _export([("z", {"data": b"same", "mtime": 5}), ("a", {"kind": tarfile.LNKTYPE, "link": "z", "mtime": 5})])
    assert merged["a"].type == tar.REGULAR and merged["z"].type == tar.HARDLINK and merged["z"].linkname == "a"


def test_init_layer_shadows_image_etc_hosts_and_directories() -> None:
    tree = MergedTree()
    apply_layer(tree, _layer([("etc/", {"kind": tarfile.DIRTYPE, "mode": 0o700}), ("etc/hosts", {"data": b"h"})]))
    apply_layer(tree, init_layer_members())
    merged = {m.name: m for m in export_members(tree)}
    assert merged["etc/"].mode == 0o755 and merged["etc/hosts"].size == 0 and merged["etc/hosts"].mode == 0o755
    assert merged["etc/mtab"].linkname == "/proc/mounts"


def _reencode(source: Path, target: Path, fmt: int) -> None:
    with tarfile.open(source) as src, tarfile.open(target, "w", format=fmt) as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isreg() else None  # type: ignore[union-attr]
            if member.isdir():
                member.name += "/"
            dst.addfile(member, io.BytesIO(data) if data is not None else None)


def test_gnu_format_export_with_long_names_and_large_ids_gives_cust_a(tmp_path: Path) -> None:
    from infra.image.image_config import load_image_config

    cust = DATA / "cust_A"
    gnu = tmp_path / "gnu.tar"
    _reencode(cust / "docker_export.tar", gnu, tarfile.GNU_FORMAT)
    assert b"././@LongLink" in gnu.read_bytes()
    build_customer_ramdisk(tmp_path / "o.cpio", rootfs_tar=gnu, config=load_image_config(cust / "image_inspect.json"))
    expected = json.loads((cust / "expected.json").read_text())["sha256"]
    assert hashlib.sha256((tmp_path / "o.cpio").read_bytes()).hexdigest() == expected
    assert os.path.getsize(tmp_path / "o.cpio") % 512 == 0
