"""The kernel tooling without booting anything: cache keys, dependency messages, the initramfs
writer, the console parser, the guest-timeout handling and the CLI's input errors."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from smcd_check.cli.kernel import command as kernel_cli
from smcd_check.conformance.kernel import build as B
from smcd_check.conformance.kernel import qemu as K


def test_config_hash_ignores_comments_blank_lines_and_order() -> None:
    """Two fragments with the same options in another order, with other comments, are the
    same cache key; changing one option is a different key."""
    a = "# one\nCONFIG_SMC=y\n\nCONFIG_SMC_LO=y\n"
    b = "CONFIG_SMC_LO=y\n# another comment\nCONFIG_SMC=y\n"
    c = "CONFIG_SMC_LO=n\nCONFIG_SMC=y\n"
    assert B.config_hash(a) == B.config_hash(b)
    assert B.config_hash(a) != B.config_hash(c)
    assert len(B.config_hash(a)) == 12


def test_project_fragment_enables_loopback_ism_and_what_the_harness_needs() -> None:
    lines = set(B.fragment_lines(B.fragment_text()))
    for opt in ("CONFIG_SMC=y", "CONFIG_SMC_LO=y", "CONFIG_SMC_DIAG=y", "CONFIG_PACKET=y",
                "CONFIG_BLK_DEV_INITRD=y", "CONFIG_RD_GZIP=y", "CONFIG_SERIAL_8250_CONSOLE=y"):
        assert opt in lines


def test_cache_root_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert B.cache_root() == tmp_path / "smcd-check" / "kernel"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert B.cache_root() == Path.home() / ".cache" / "smcd-check" / "kernel"


def test_find_image_only_returns_images_of_the_current_fragment(tmp_path: Path) -> None:
    frag = "CONFIG_SMC_LO=y\n"
    h = B.config_hash(frag)
    assert B.find_image(tmp_path, frag) is None
    for version in ("6.12.117-1", "6.12.118-1"):
        d = tmp_path / f"{version}-{h}"
        d.mkdir()
        (d / "bzImage").write_bytes(b"x")
        (d / "image.json").write_text(json.dumps({"version": version, "sha256": "ab"}))
    other = tmp_path / "6.12.119-1-000000000000"
    other.mkdir()
    (other / "bzImage").write_bytes(b"x")
    (other / "image.json").write_text(json.dumps({"version": "6.12.119-1"}))
    img = B.find_image(tmp_path, frag)
    assert img is not None and img.version == "6.12.118-1" and img.config_hash == h


def test_missing_build_tool_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(B.shutil, "which", lambda t: None if t in ("flex", "bc") else real(t))
    err = B.missing_dependencies()
    assert err is not None
    assert "flex" in str(err) and "apt-get install" in str(err)
    assert {"flex", "bc"} <= set(err.packages)


def test_kernel_build_cli_exits_2_naming_missing_packages(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no cached image there
    monkeypatch.setattr(B.shutil, "which", lambda t: None)
    res = CliRunner().invoke(kernel_cli, ["build", "-q"])
    assert res.exit_code == 2
    assert "missing build dependencies" in res.output and "flex" in res.output


def test_cpio_newc_archive_lists_with_the_system_cpio(tmp_path: Path) -> None:
    """The initramfs writer produces an archive GNU cpio reads back, names and contents."""
    cpio = shutil.which("cpio")
    if cpio is None:
        pytest.skip("cpio not installed")
    blob = K.cpio_newc([("bin", 0o040755, b""), ("bin/hello", 0o100755, b"hi there\n"),
                        ("init", 0o100755, b"#!/bin/sh\n")])
    out = subprocess.run([cpio, "-t", "--quiet"], input=blob, capture_output=True,
                         check=True).stdout.decode().split()
    assert out == ["bin", "bin/hello", "init"]
    subprocess.run([cpio, "-id", "--quiet"], input=blob, cwd=tmp_path, check=True)
    assert (tmp_path / "bin" / "hello").read_bytes() == b"hi there\n"


def _result_lines(name: str, doc: dict[str, object]) -> list[str]:
    blob = json.dumps(doc).encode()
    b64 = base64.b64encode(blob).decode()
    return ([f"@@SMCD-BEGIN {name} {len(blob)}"]
            + [f"@@SMCD-DATA {b64[i:i + 76]}" for i in range(0, len(b64), 76)]
            + [f"@@SMCD-END {name}"])


def test_console_parser_collects_results_between_kernel_noise() -> None:
    lines = ["[    0.1] random kernel line", *_result_lines("smcd", {"name": "smcd", "x": 1}),
             "garbage", *_result_lines("noueid", {"name": "noueid", "error": ""}),
             "@@SMCD-HARNESS-DONE"]
    p = K.ConsoleParser()
    for ln in lines:
        p.feed_line(ln + "\r\n")
    assert set(p.results) == {"smcd", "noueid"}
    assert p.results["smcd"].data["x"] == 1 and p.done


def test_console_parser_reports_a_garbled_result_instead_of_crashing() -> None:
    lines = _result_lines("smcd", {"name": "smcd"})
    lines[1] = "@@SMCD-DATA !!!notbase64"
    res = K.parse_console("\n".join(lines))
    assert "garbled" in res["smcd"].error


def test_run_rejects_unknown_scenarios_before_booting() -> None:
    with pytest.raises(K.KernelRunError, match="unknown scenario"):
        K.run(["no-such-scenario"])


def test_cli_run_unknown_scenario_is_exit_2() -> None:
    res = CliRunner().invoke(kernel_cli, ["run", "bogus"])
    assert res.exit_code == 2 and "unknown scenario" in res.output


def test_cli_run_list_names_every_scenario() -> None:
    res = CliRunner().invoke(kernel_cli, ["run", "--list", "--json"])
    assert res.exit_code == 0
    assert [s["name"] for s in json.loads(res.output)] == list(K.SCENARIO_NAMES)


def test_harness_knows_exactly_the_scenarios_the_host_lists(tmp_path: Path) -> None:
    """The C harness's table and the Python table name the same scenarios, in order."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    binary = K.compile_harness(tmp_path)
    out = subprocess.run([str(binary), "--list"], capture_output=True, text=True,
                         check=True).stdout
    assert [ln.split("\t")[0] for ln in out.splitlines()] == list(K.SCENARIO_NAMES)


def test_a_hung_guest_is_killed_at_the_timeout_and_reported(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    """A 'qemu' that prints one result and then hangs is killed (with its children) at the
    timeout; the run reports the timeout, the result it got, and the scenario it did not."""
    if K.busybox_path() is None or shutil.which("gcc") is None:
        pytest.skip("needs busybox-static (and gcc, which run() checks for)")
    pidfile = tmp_path / "child.pid"
    fake = tmp_path / "fake-qemu"
    lines = "\n".join(_result_lines("noueid", {"name": "noueid", "error": ""}))
    fake.write_text(
        f"#!/bin/sh\ncat <<'EOF'\n{lines}\nEOF\n"
        f"sleep 300 & echo $! > {pidfile}\nwait\n"
    )
    fake.chmod(0o755)
    image = tmp_path / "bzImage"
    image.write_bytes(b"not a kernel")
    monkeypatch.setattr(K, "QEMU", str(fake))
    dummy = tmp_path / "harness"
    dummy.write_bytes(b"\x7fELF")
    monkeypatch.setattr(K, "compile_harness", lambda root=None: dummy)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    t0 = time.monotonic()
    res = K.run(["noueid", "smcd"], image=image, timeout=3)
    assert time.monotonic() - t0 < 30
    assert res.timed_out
    assert "noueid" in res.scenarios and res.missing == ("smcd",)
    child = int(pidfile.read_text())
    time.sleep(0.2)
    stat = Path(f"/proc/{child}/stat")
    # the guest's whole process group is gone (dead, or a zombie waiting for init to reap it)
    assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z"


def test_busybox_detection_rejects_a_dynamic_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(K, "BUSYBOX_CANDIDATES", (sys.executable,))
    assert K.busybox_path() is None
