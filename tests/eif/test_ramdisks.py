"""``trustdial eif ramdisk``: linuxkit-identical bootstrap and customer ramdisks."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from eif.conftest import DATA, run_cli
from eif.eif_bytes import parse_newc
from eif.tarbuild import add, docker_save

BOOT = DATA / "boot_A"
CUST = DATA / "cust_A"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _expected(folder: Path) -> dict[str, object]:
    return json.loads((folder / "expected.json").read_text())


def _customer(tmp_path: Path, rootfs: Path, config: object) -> tuple[int, dict[str, object], Path]:
    if not isinstance(config, Path):
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
    else:
        config_path = config
    out = tmp_path / "out.cpio"
    status, result, _ = run_cli(
        "trustdial", "eif", "ramdisk", "--rootfs", str(rootfs), "--config", str(config_path), "--output", str(out)
    )
    return status, result, out


def test_bootstrap_ramdisk_matches_linuxkit_boot_a(tmp_path: Path) -> None:
    out = tmp_path / "boot.cpio"
    status, result, err = run_cli(
        "trustdial", "eif", "ramdisk", "--bootstrap", "--init", str(BOOT / "init"), "--nsm", str(BOOT / "nsm.ko"),
        "--output", str(out),
    )  # fmt: skip
    assert status == 0, err
    assert _sha256(out) == _expected(BOOT)["sha256"]
    assert result["sha384"] == _expected(BOOT)["sha384"]


def test_bootstrap_entries_match_listing(tmp_path: Path) -> None:
    out = tmp_path / "boot.cpio"
    run_cli("trustdial", "eif", "ramdisk", "--bootstrap", "--init", str(BOOT / "init"), "--nsm", str(BOOT / "nsm.ko"),
            "--output", str(out))  # fmt: skip
    entries = parse_newc(out.read_bytes())
    expected = _expected(BOOT)["entries"]
    assert [{k: e[k] for k in ("ino", "mode", "uid", "gid", "nlink", "mtime", "size", "name")} for e in entries] == (
        expected
    )
    assert all(e["dev"] == (3, 1) for e in entries)
    assert out.stat().st_size % 512 == 0


def test_bootstrap_is_independent_of_umask_and_file_mtimes(tmp_path: Path) -> None:
    digests = []
    for i, (umask, mtime) in enumerate([("022", 5), ("077", 1_999_999_999)]):
        folder = tmp_path / str(i)
        folder.mkdir()
        for name in ("init", "nsm.ko"):
            (folder / name).write_bytes((BOOT / name).read_bytes())
            os.chmod(folder / name, 0o600 if i else 0o755)
            os.utime(folder / name, (mtime, mtime))
        cmd = (
            f"umask {umask} && exec {Path(sys.executable).parent / 'trustdial'} eif ramdisk --bootstrap "
            f"--init {folder / 'init'} --nsm {folder / 'nsm.ko'} --output {folder / 'b.cpio'}"
        )
        env = {**os.environ, "LC_ALL": "C" if i else "C.UTF-8"}
        subprocess.run(["sh", "-c", cmd], check=True, env=env, capture_output=True, timeout=120)
        digests.append(_sha256(folder / "b.cpio"))
    assert digests[0] == digests[1] == _expected(BOOT)["sha256"]


def test_customer_ramdisk_from_docker_export_matches_cust_a(tmp_path: Path) -> None:
    status, result, out = _customer(tmp_path, CUST / "docker_export.tar", CUST / "image_inspect.json")
    assert status == 0, result
    assert _sha256(out) == _expected(CUST)["sha256"]


def test_customer_ramdisk_entries_match_listing(tmp_path: Path) -> None:
    _, _, out = _customer(tmp_path, CUST / "docker_export.tar", CUST / "image_inspect.json")
    lines = [line for line in (CUST / "cpio_listing.txt").read_text().splitlines() if not line.startswith("#")]
    for entry, line in zip(parse_newc(out.read_bytes()), lines, strict=True):
        ino, mode, uid, gid, nlink, mtime, size, _rdev, name = line.split(" ", 8)
        assert (entry["ino"], entry["mode"], entry["uid"], entry["gid"]) == (int(ino), int(mode, 8), int(uid), int(gid))
        assert (entry["nlink"], entry["mtime"], entry["size"]) == (int(nlink), int(mtime), int(size))
        assert entry["name"] == name.split(" -> ")[0]


def test_customer_ramdisk_from_image_layers_matches_cust_a(tmp_path: Path) -> None:
    inspect = json.loads((CUST / "image_inspect.json").read_text())
    config = {"architecture": "amd64", "os": "linux", "config": inspect["Config"]}
    archive = tmp_path / "image.tar"
    docker_save(archive, [(CUST / "layer1.tar").read_bytes(), (CUST / "layer2.tar").read_bytes()], config)
    out = tmp_path / "layers.cpio"
    status, _, err = run_cli("trustdial", "eif", "ramdisk", "--image", str(archive), "--config",
                                  str(CUST / "image_inspect.json"), "--output", str(out))  # fmt: skip
    assert status == 0, err
    assert _sha256(out) == _expected(CUST)["sha256"]


def test_customer_ramdisk_from_oci_archive_with_gzip_layers_matches_cust_a(tmp_path: Path) -> None:
    from infra.image.image_archive import build_customer_ramdisk_from_image

    inspect = json.loads((CUST / "image_inspect.json").read_text())
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": inspect["Config"]}).encode()
    blobs = {}

    def blob(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest

    layers = [gzip.compress((CUST / n).read_bytes(), mtime=0) for n in ("layer1.tar", "layer2.tar")]
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": blob(config)},
                           "layers": [{"digest": blob(layer)} for layer in layers]}).encode()  # fmt: skip
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": blob(manifest)}]}).encode()
    archive = tmp_path / "oci.tar"
    with tarfile.open(archive, "w") as t:
        add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add(t, "index.json", index)
        for digest, data in blobs.items():
            add(t, f"blobs/sha256/{digest[7:]}", data)
    build_customer_ramdisk_from_image(tmp_path / "oci.cpio", image_tar=archive)
    assert _sha256(tmp_path / "oci.cpio") == _expected(CUST)["sha256"]


def _reshuffled(source: Path, target: Path, seed: int) -> None:
    with tarfile.open(source) as src:
        members = [(m, src.extractfile(m).read() if m.isreg() else None) for m in src.getmembers()]  # type: ignore[union-attr]
    random.Random(seed).shuffle(members)
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as dst:
        for m, data in members:
            if m.isdir():
                m.name += "/"
            dst.addfile(m, io.BytesIO(data) if data is not None else None)


def test_reshuffled_export_stream_gives_the_same_ramdisk(tmp_path: Path) -> None:
    shuffled = tmp_path / "shuffled.tar"
    _reshuffled(CUST / "docker_export.tar", shuffled, seed=7)
    assert shuffled.read_bytes() != (CUST / "docker_export.tar").read_bytes()
    status, _, out = _customer(tmp_path, shuffled, CUST / "image_inspect.json")
    assert status == 0
    assert _sha256(out) == _expected(CUST)["sha256"]


def _minimal_rootfs(path: Path, extra: list[tuple[str, dict[str, object]]] | None = None) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        add(t, "bin/", kind=tarfile.DIRTYPE, mode=0o755)
        add(t, "bin/app", b"#!/bin/sh\n", mode=0o755)
        for name, kwargs in extra or []:
            add(t, name, **kwargs)  # type: ignore[arg-type]


def _files(out: Path) -> dict[str, bytes]:
    return {str(e["name"]): e["data"] for e in parse_newc(out.read_bytes())}  # type: ignore[misc]


def test_entrypoint_is_used_when_cmd_is_absent(tmp_path: Path) -> None:
    _minimal_rootfs(tmp_path / "r.tar")
    status, _, out = _customer(tmp_path, tmp_path / "r.tar", {"Config": {"Entrypoint": ["/bin/app", "-x"]}})
    assert status == 0
    assert _files(out)["cmd"] == b"/bin/app\n-x\n"


def test_cmd_wins_over_entrypoint_and_they_are_not_merged(tmp_path: Path) -> None:
    _minimal_rootfs(tmp_path / "r.tar")
    config = [{"Config": {"Entrypoint": ["/bin/app"], "Cmd": ["serve", "--port", "1"]}}]
    status, _, out = _customer(tmp_path, tmp_path / "r.tar", config)
    assert status == 0
    assert _files(out)["cmd"] == b"serve\n--port\n1\n"


def test_env_entries_keep_special_characters(tmp_path: Path) -> None:
    _minimal_rootfs(tmp_path / "r.tar")
    env = ["A=x y=z", 'B="quoted" $HOME \\n', "C=ünï 文件", "D="]
    status, _, out = _customer(tmp_path, tmp_path / "r.tar", {"config": {"Cmd": ["/bin/app"], "Env": env}})
    assert status == 0
    assert _files(out)["env"] == "".join(e + "\n" for e in env).encode()


def test_image_without_cmd_or_entrypoint_is_refused(tmp_path: Path) -> None:
    _minimal_rootfs(tmp_path / "r.tar")
    status, result, out = _customer(tmp_path, tmp_path / "r.tar", {"Config": {"Env": []}})
    assert status == 2 and result["code"] == "IMAGE_CONFIG_INVALID"
    assert not out.exists()


def test_device_nodes_and_fifos_are_carried(tmp_path: Path) -> None:
    extra = [
        ("dev/", {"kind": tarfile.DIRTYPE, "mode": 0o755}),
        ("dev/null", {"kind": tarfile.CHRTYPE, "mode": 0o666, "dev": (1, 3)}),
        ("dev/loop0", {"kind": tarfile.BLKTYPE, "mode": 0o660, "dev": (7, 0)}),
        ("run/", {"kind": tarfile.DIRTYPE, "mode": 0o755}),
        ("run/pipe", {"kind": tarfile.FIFOTYPE, "mode": 0o600}),
    ]
    _minimal_rootfs(tmp_path / "r.tar", extra)
    status, _, out = _customer(tmp_path, tmp_path / "r.tar", {"Config": {"Cmd": ["/bin/app"]}})
    assert status == 0
    entries = {e["name"]: e for e in parse_newc(out.read_bytes())}
    assert entries["rootfs/dev/null"]["mode"] == 0o020666 and entries["rootfs/dev/null"]["rdev"] == (1, 3)
    assert entries["rootfs/dev/loop0"]["mode"] == 0o060660 and entries["rootfs/dev/loop0"]["rdev"] == (7, 0)
    assert entries["rootfs/run/pipe"]["mode"] == 0o010600


def test_missing_touched_entries_are_created_in_sorted_order(tmp_path: Path) -> None:
    _minimal_rootfs(tmp_path / "r.tar")
    _, _, out = _customer(tmp_path, tmp_path / "r.tar", {"Config": {"Cmd": ["/bin/app"]}})
    names = [e["name"] for e in parse_newc(out.read_bytes())]
    created = names[names.index("rootfs/bin/app") + 1 : names.index("rootfs/bin/app") + 10]
    assert created == [
        "rootfs/dev", "rootfs/dev/pts", "rootfs/dev/shm", "rootfs/etc", "rootfs/etc/hosts", "rootfs/etc/mtab",
        "rootfs/etc/resolv.conf", "rootfs/proc", "rootfs/sys",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kwargs", "code"),
    [
        ("../escape", {"kind": tarfile.REGTYPE}, "TAR_UNSAFE_PATH"),
        ("/etc/abs", {"kind": tarfile.REGTYPE}, "TAR_UNSAFE_PATH"),
        ("bin/a/../../../x", {"kind": tarfile.REGTYPE}, "TAR_UNSAFE_PATH"),
        ("bin/hl", {"kind": tarfile.LNKTYPE, "link": "../../etc/shadow"}, "TAR_UNSAFE_PATH"),
        ("bin/hl2", {"kind": tarfile.LNKTYPE, "link": "/etc/shadow"}, "TAR_UNSAFE_PATH"),
        ("bin/sl", {"kind": tarfile.SYMTYPE, "link": "../../../etc/shadow"}, "TAR_UNSAFE_PATH"),
        ("bin/app", {"kind": tarfile.REGTYPE}, "TAR_DUPLICATE_MEMBER"),
    ],
)
def test_unsafe_or_ambiguous_members_are_refused_without_output(
    tmp_path: Path, name: str, kwargs: dict[str, object], code: str
) -> None:
    _minimal_rootfs(tmp_path / "r.tar", [(name, kwargs)])
    status, result, out = _customer(tmp_path, tmp_path / "r.tar", {"Config": {"Cmd": ["/bin/app"]}})
    assert status == 2 and result["code"] == code
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "r.tar"]


def test_absolute_symlink_inside_the_rootfs_is_accepted(tmp_path: Path) -> None:
    _minimal_rootfs(tmp_path / "r.tar", [("bin/sh", {"kind": tarfile.SYMTYPE, "link": "/bin/app"})])
    status, _, out = _customer(tmp_path, tmp_path / "r.tar", {"Config": {"Cmd": ["/bin/app"]}})
    assert status == 0 and _files(out)["rootfs/bin/sh"] == b"/bin/app"


def test_malformed_tar_checksum_is_refused(tmp_path: Path) -> None:
    _minimal_rootfs(tmp_path / "r.tar")
    data = bytearray((tmp_path / "r.tar").read_bytes())
    data[0] ^= 0x20
    (tmp_path / "r.tar").write_bytes(bytes(data))
    status, result, out = _customer(tmp_path, tmp_path / "r.tar", {"Config": {"Cmd": ["/bin/app"]}})
    assert status == 2 and result["code"] == "TAR_MALFORMED"
    assert not out.exists()


def test_truncated_tar_is_refused(tmp_path: Path) -> None:
    _minimal_rootfs(tmp_path / "r.tar", [("big", {"data": b"x" * 5000})])
    data = (tmp_path / "r.tar").read_bytes()
    end = data.index(b"x" * 100)
    (tmp_path / "r.tar").write_bytes(data[: end + 1000])
    status, result, _ = _customer(tmp_path, tmp_path / "r.tar", {"Config": {"Cmd": ["/bin/app"]}})
    assert status == 2 and result["code"] == "TAR_MALFORMED"


def test_layer_hard_link_to_a_lower_layer_is_refused(tmp_path: Path) -> None:
    lower, upper = io.BytesIO(), io.BytesIO()
    with tarfile.open(fileobj=lower, mode="w") as t:
        add(t, "a", b"data")
    with tarfile.open(fileobj=upper, mode="w") as t:
        add(t, "b", kind=tarfile.LNKTYPE, link="a")
    docker_save(tmp_path / "img.tar", [lower.getvalue(), upper.getvalue()], {"config": {"Cmd": ["/a"]}})
    status, result, _ = run_cli("trustdial", "eif", "ramdisk", "--image", str(tmp_path / "img.tar"), "--config",
                                str(CUST / "image_inspect.json"), "--output", str(tmp_path / "o.cpio"))  # fmt: skip
    assert status == 2 and result["code"] == "TAR_UNSAFE_PATH"
    assert not (tmp_path / "o.cpio").exists()


def _dot_rooted(source: Path, target: Path, root: tarfile.TarInfo | None) -> None:
    """``source`` as ``tar -C DIR -c .`` would store it: a ``./`` root entry, then every name (and hard-link
    target) under ``./``."""
    with tarfile.open(source) as src, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as dst:
        if root is not None:
            dst.addfile(root)
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
            m.pax_headers = {k: v for k, v in m.pax_headers.items() if k not in ("path", "linkpath")}
            m.name = "./" + m.name + ("/" if m.isdir() else "")
            if m.islnk():
                m.linkname = "./" + m.linkname
            dst.addfile(m, io.BytesIO(data) if data is not None else None)


def _root_entry(kind: bytes = tarfile.DIRTYPE, name: str = "./") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, 0o755, 1_700_000_000
    if kind == tarfile.SYMTYPE:
        info.linkname = "/"
    return info


def test_a_dot_rooted_rootfs_tar_gives_the_docker_export_ramdisk(tmp_path: Path) -> None:
    # GNU tar / mmdebstrap layout of the same tree: the cpio must be linuxkit's bytes for docker export's stream
    rooted = tmp_path / "rooted.tar"
    _dot_rooted(CUST / "docker_export.tar", rooted, _root_entry())
    with tarfile.open(rooted) as t:
        assert t.getnames()[0] == "." and all(n == "." or n.startswith("./") for n in t.getnames())
    status, result, out = _customer(tmp_path, rooted, CUST / "image_inspect.json")
    assert status == 0, result
    assert _sha256(out) == _expected(CUST)["sha256"]


@pytest.mark.parametrize(
    ("root", "name", "kwargs", "code"),
    [
        (_root_entry(), "./../escape", {"kind": tarfile.REGTYPE}, "TAR_UNSAFE_PATH"),
        (_root_entry(), ".//etc/abs", {"kind": tarfile.REGTYPE}, "TAR_UNSAFE_PATH"),
        (_root_entry(), "./bin/a/../../../x", {"kind": tarfile.REGTYPE}, "TAR_UNSAFE_PATH"),
        (_root_entry(), "./bin/hl", {"kind": tarfile.LNKTYPE, "link": "./../etc/shadow"}, "TAR_UNSAFE_PATH"),
        (_root_entry(), "./bin/sl", {"kind": tarfile.SYMTYPE, "link": "../../etc/shadow"}, "TAR_UNSAFE_PATH"),
        (_root_entry(), "./bin/app", {"kind": tarfile.REGTYPE}, "TAR_DUPLICATE_MEMBER"),  # also stored as bin/app
        (_root_entry(), "./", {"kind": tarfile.DIRTYPE}, "TAR_DUPLICATE_MEMBER"),
        (_root_entry(tarfile.SYMTYPE), "./x", {"kind": tarfile.REGTYPE}, "TAR_UNSAFE_PATH"),
        (_root_entry(tarfile.REGTYPE, "."), "./x", {"kind": tarfile.REGTYPE}, "TAR_UNSAFE_PATH"),
        (None, "./.", {"kind": tarfile.DIRTYPE}, "TAR_UNSAFE_PATH"),  # only one leading ./ goes: "." is the root
    ],
)
def test_hostile_members_of_a_dot_rooted_tar_are_still_refused(
    tmp_path: Path, root: tarfile.TarInfo | None, name: str, kwargs: dict[str, object], code: str
) -> None:
    with tarfile.open(tmp_path / "r.tar", "w", format=tarfile.PAX_FORMAT) as t:
        if root is not None:
            t.addfile(root)
        add(t, "bin/", kind=tarfile.DIRTYPE, mode=0o755)
        add(t, "bin/app", b"#!/bin/sh\n", mode=0o755)
        add(t, name, **kwargs)  # type: ignore[arg-type]
    status, result, out = _customer(tmp_path, tmp_path / "r.tar", {"Config": {"Cmd": ["/bin/app"]}})
    assert status == 2 and result["code"] == code, result
    assert not out.exists()
