"""Boot the cached 6.12.118 kernel with one reproducer as the guest program and print its lines
(the kernel findings of the README, "Full duplex and urgent data").

    python docs/repro/run_repro.py urgent_at_mark     # ~10 s: the urgent-oob-open finding
    python docs/repro/run_repro.py urgent_wrap_skip   # ~60 s: the urgent-ignored finding
    python docs/repro/run_repro.py urgent_blocked_reader  # ~4 s: a blocked reader skips a lone
                                                          # urgent byte (no stall)

``urgent_at_mark``: three trials on one connected pair each: TCP (control), SMC-D with
recv(MSG_OOB) right after the urgent byte arrived (the finding: the next send gets EAGAIN
forever, the reader has nothing), SMC-D with a plain recv() first (control: the byte is skipped,
the next send works). ``urgent_wrap_skip``: 65535 * 16352 - 1 pattern bytes, one ignored urgent
byte (it ends lap 0xfffe), then reads of 1, 16351, 16351, 16351 bytes: the last shows the
pattern byte the kernel skipped. Needs gcc, qemu-system-x86_64, busybox-static and the kernel
image of ``smcd-check kernel build``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from smcd_check.conformance.kernel import qemu
from smcd_check.conformance.kernel.build import find_image

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    name = argv[1] if len(argv) > 1 else "urgent_at_mark"
    if not (HERE / f"{name}.c").is_file():
        print(f"unknown reproducer {name!r}: urgent_at_mark, urgent_wrap_skip or "
              "urgent_blocked_reader", file=sys.stderr)
        return 2
    image = find_image()
    busybox = qemu.busybox_path()
    if image is None or busybox is None or qemu.qemu_missing():
        print("needs the cached kernel image, busybox-static and qemu", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / name
        subprocess.run(
            [
                "gcc",
                "-O2",
                "-static",
                "-pthread",
                "-w",
                "-I",
                str(qemu.HARNESS_SOURCE.parent),
                "-o",
                str(binary),
                str(HERE / f"{name}.c"),
            ],
            check=True,
        )
        initrd = qemu.build_initramfs(binary, busybox, Path(tmp) / "initrd.gz")
        out = subprocess.run(
            [
                qemu.QEMU,
                "-accel",
                "tcg",
                "-m",
                "512",
                "-nographic",
                "-no-reboot",
                "-kernel",
                str(image.path),
                "-initrd",
                str(initrd),
                "-append",
                "console=ttyS0 quiet loglevel=1 panic=-1 smcd.run=",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(("@@OOB", "@@WRAP"))]
    print("\n".join(lines))
    return 0 if any("done" in ln for ln in lines) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
