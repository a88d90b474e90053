"""`smcd-check kernel`: build the project's Linux 6.12 loopback-ism kernel and run scenarios in it.

* ``smcd-check kernel build`` - fetch Debian's linux-source-6.12 (private apt configuration),
  tinyconfig + the project's fragment, ``make -j2 bzImage`` (niced), cached under
  ``$XDG_CACHE_HOME/smcd-check/kernel/<version>-<config hash>/bzImage``.
* ``smcd-check kernel run [SCENARIO...]`` - boot that image in qemu (TCG), run the scenarios
  (default: all but ``wrap`` and those that reproduce a kernel fault), print what the kernel
  did and how it compares with the spec (or, for the urgent-data scenarios, with the expected
  behaviour each check writes down with its kernel function).
  Exit 0: every scenario ran and every comparison agreed; 1: a finding (a comparison
  disagreed, a scenario failed or the guest hung); 2: bad usage or nothing to boot.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from smcd_check.cli.common import EXIT_FINDING, EXIT_INTERRUPTED, EXIT_OK, echo_json, fail_input


def _progress(quiet: bool) -> Any:
    t0 = time.monotonic()

    def say(msg: str) -> None:
        if not quiet:
            click.echo(f"[{time.monotonic() - t0:6.1f} s] {msg}", err=True)

    return say


@click.group(name="kernel")
def command() -> None:
    """Build and run the real Linux 6.12 loopback-ism kernel in qemu."""


@command.command(name="build")
@click.option("--force", is_flag=True, help="Rebuild even if a cached image exists.")
@click.option("--keep-tree", is_flag=True,
              help="Keep the extracted source and object files (about 1.6 GB) after the build.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Parallel make jobs.")
@click.option("--version", "version", default=None,
              help="Debian linux-source-6.12 version (default: 6.12.118-1 if offered, else the "
                   "newest).")
@click.option("--json", "as_json", is_flag=True, help="Print the image's details as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def build_cmd(force: bool, keep_tree: bool, jobs: int, version: str | None, as_json: bool,
              quiet: bool) -> None:
    """Build (or find in the cache) the kernel image with CONFIG_SMC_LO."""
    from smcd_check.conformance.kernel.build import (
        KernelBuildError,
        MissingBuildDependency,
        build,
    )

    try:
        image = build(force=force, keep_tree=keep_tree, jobs=jobs, version=version,
                      progress=_progress(quiet))
    except MissingBuildDependency as exc:
        fail_input(str(exc))
    except KernelBuildError as exc:
        first, _, rest = str(exc).partition("\n")
        if rest:
            click.echo(rest, err=True)
        fail_input(first)
    except KeyboardInterrupt:
        click.echo("interrupted: the build tree is kept; run again to continue", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if as_json:
        echo_json({"path": str(image.path), "version": image.version,
                   "config_hash": image.config_hash, "sha256": image.sha256,
                   "build_seconds": image.build_seconds})
    else:
        click.echo(str(image.path))


def _summary_lines(name: str, data: dict[str, Any]) -> list[str]:
    from smcd_check.conformance.kernel.checks import clc_of, diag_socks
    from smcd_check.conformance.kernel.wire import DIAG_MODES, clc_kind

    lines = []
    err = data.get("error")
    if err:
        lines.append(f"  harness: ERROR {err}")
    for conn in clc_of(data) if "frames" in data else []:
        c = " ".join(f"{clc_kind(m)}({len(m)})" for m in conn["c2s"]) or "-"
        s = " ".join(f"{clc_kind(m)}({len(m)})" for m in conn["s2c"]) or "-"
        lines.append(f"  port {conn['client_port']}: client sent {c}; server sent {s}")
    socks = diag_socks(data, "open") or diag_socks(data, "before")
    for sock in socks:
        fb = sock.get("fallback", {})
        ci = sock.get("conninfo")
        extra = ""
        if ci:
            extra = f", rmbe {ci['rmbe_size']}, sndbuf {ci['sndbuf_size']}"
        lines.append(
            f"  diag {sock['sport']}->{sock['dport']}: {DIAG_MODES.get(sock['mode'], '?')}"
            f", reason {fb.get('reason', 0):#010x}, peer {fb.get('peer_diagnosis', 0):#010x}"
            + extra
        )
    for t in data.get("transfers_urg", []):
        lines.append(
            f"  transfer {t['dir']} ({'inline' if t['inline'] else 'out of band'}): "
            f"{t['sent']}/{t['total']} bytes sent, {t['marks']} urgent, "
            f"{t['elapsed_us'] / 1e6:.2f} s"
            + (f", STALL at '{t['writer_step']}'" if t.get("writer_stall") else ""))
    for c in data.get("cases", []):
        stalls = [st["step"] for st in c.get("steps", []) if st.get("stall")]
        lines.append(f"  case {c.get('case')}: {len(c.get('steps', []))} steps"
                     + (f", stalled: {'; '.join(stalls)}" if stalls else ""))
    for t in data.get("transfers", []):
        lines.append(
            f"  transfer {t['dir']}: {t['received']}/{t['total']} bytes in "
            f"{t['elapsed_us'] / 1e6:.2f} s, mismatch {t['mismatch_at']}"
        )
    return lines


def _not_a_kernel_image(path: Path) -> str:
    """Why ``path`` cannot be booted as an x86 bzImage ("" when it looks like one).

    The x86 boot protocol puts the magic "HdrS" at offset 0x202 of the setup header
    (Documentation/arch/x86/boot.rst); qemu's -kernel needs it, and a file without it would boot
    nothing and time out as NO RESULT.
    """
    try:
        with path.open("rb") as f:
            head = f.read(0x210)
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if len(head) < 0x206 or head[0x202:0x206] != b"HdrS":
        return ("not a Linux kernel image (no x86 boot header 'HdrS' at offset 0x202); "
                "give a bzImage, e.g. the one `smcd-check kernel build` prints")
    return ""


@command.command(name="run")
@click.argument("scenarios", nargs=-1)
@click.option("--list", "list_only", is_flag=True, help="List the scenarios and exit.")
@click.option("--all", "run_all", is_flag=True,
              help="Run every scenario, including the slow 'wrap' (about 1.07 GB through a 16 "
                   "KiB DMB); not those that reproduce a kernel fault (name them).")
@click.option("--json", "as_json", is_flag=True,
              help="Print results and checks as JSON (frames only with --frames).")
@click.option("--frames", is_flag=True, help="Include the captured frames in --json output.")
@click.option("--timeout", type=click.FloatRange(5, 7200), default=None,
              help="Kill the guest after this many seconds (default: from the scenarios).")
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Boot this bzImage instead of the cached one.")
@click.option("--console", "console_log", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Save the guest's serial console to this file.")
@click.option("--pcap-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write each scenario's capture on lo as DIR/<scenario>.pcap.")
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None,
              help="Save each scenario as DIR/<scenario>.pcap + .json (+ boot.json): golden "
                   "captures that `kernel_checks` can re-check without qemu.")
@click.option("--no-check", is_flag=True, help="Only report; do not compare with the spec.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def run_cmd(scenarios: tuple[str, ...], list_only: bool, run_all: bool, as_json: bool,
            frames: bool, timeout: float | None, image: Path | None, console_log: Path | None,
            pcap_dir: Path | None, save_dir: Path | None, no_check: bool,
            quiet: bool) -> None:
    """Boot the kernel in qemu and run SCENARIOS (default: all but 'wrap')."""
    from smcd_check.conformance.kernel import qemu as K

    if list_only:
        if as_json:
            echo_json([{"name": s.name, "doc": s.doc, "slow": s.slow, "finding": s.finding,
                        "alone": s.alone} for s in K.SCENARIOS])
        else:
            for s in K.SCENARIOS:
                tag = " [kernel fault; run alone]" if s.alone else (
                    " [kernel fault]" if s.finding else "")
                click.echo(f"{s.name:18} {s.doc}{tag}")
        return
    if scenarios and run_all:
        fail_input("give scenario names or --all, not both")
    names = list(scenarios) or [s.name for s in K.SCENARIOS
                                if not s.finding and (run_all or not s.slow)]
    unknown = [n for n in names if n not in K.SCENARIO_NAMES]
    if unknown:
        fail_input(f"unknown scenario(s) {', '.join(unknown)}; see --list")
    if image is not None:
        why = _not_a_kernel_image(image)
        if why:
            fail_input(f"--image {image}: {why}")
    try:
        result = K.run(names, image=image, timeout=timeout, progress=_progress(quiet),
                       console_log=console_log)
    except K.KernelRunError as exc:
        fail_input(str(exc))
    data = {n: dict(r.data) for n, r in result.scenarios.items()}
    if pcap_dir is not None:
        from smcd_check.conformance.kernel.wire import frames_of, write_pcap

        pcap_dir.mkdir(parents=True, exist_ok=True)
        for n, d in data.items():
            if d.get("frames"):
                write_pcap(pcap_dir / f"{n}.pcap", frames_of(d))
    if save_dir is not None:
        K.save_captures(result, save_dir)
    checks = []
    if not no_check:
        from smcd_check.conformance.kernel.checks import all_checks

        checks = all_checks(data, names)
    failed = [c for c in checks if not c.ok]
    bad_scen = [n for n, d in data.items() if d.get("error")]
    finding = bool(failed or bad_scen or result.missing or result.timed_out)
    if as_json:
        out = K.result_json(result, with_frames=frames)
        out["checks"] = [c.to_json() for c in checks]
        out["findings"] = len(failed) + len(bad_scen) + len(result.missing)
        echo_json(out)
    else:
        click.echo(f"kernel: {result.image}; boot + scenarios {result.boot_seconds:.1f} s")
        for n in names:
            got = data.get(n)
            if got is None:
                why = "timed out" if result.timed_out else "stopped"
                click.echo(f"{n}: NO RESULT (guest {why})")
                continue
            click.echo(f"{n}: {'ERROR' if got.get('error') else 'ran'}")
            for line in _summary_lines(n, got):
                click.echo(line)
        if checks:
            agree = [c for c in checks if c.kind != "finding"]
            click.echo(f"checks: {sum(c.ok for c in agree)}/{len(agree)} agree with the spec")
            for c in checks:
                if c.kind == "claim" and c.ok:
                    click.echo(f"  CLAIM HOLDS {c.scenario}: {c.subject}")
            for c in failed:
                word = "FINDING (kernel fault reproduced)" if c.kind == "finding" else "DISAGREE"
                click.echo(f"  {word} {c.kind} {c.scenario} {c.subject}: {c.detail}")
                for k, v in c.evidence.items():
                    click.echo(f"    {k}: {v}")
        if result.missing:
            click.echo("console tail:\n  " + "\n  ".join(result.console_tail))
    if result.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_FINDING if finding else EXIT_OK)
