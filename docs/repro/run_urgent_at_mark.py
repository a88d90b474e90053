"""Boot the cached 6.12.118 kernel with ``urgent_at_mark.c`` as the guest program and print its
lines: the reproducer of the ``urgent-oob-open`` finding (README, "Full duplex and urgent data").

    python docs/repro/run_urgent_at_mark.py

Three trials on one connected pair each: TCP (control), SMC-D with recv(MSG_OOB) right after
the urgent byte arrived (the finding: the next send gets EAGAIN forever, the reader has
nothing), SMC-D with a plain recv() first (control: the byte is skipped, the next send works).
Needs gcc, qemu-system-x86_64, busybox-static and the kernel image of ``smcd-check kernel build``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from smcd_check.conformance.kernel import qemu
from smcd_check.conformance.kernel.build import find_image

HERE = Path(__file__).resolve().parent


def main() -> int:
    image = find_image()
    busybox = qemu.busybox_path()
    if image is None or busybox is None or qemu.qemu_missing():
        print("needs the cached kernel image, busybox-static and qemu", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "urgent_at_mark"
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
                str(HERE / "urgent_at_mark.c"),
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
            timeout=180,
            check=False,
        )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("@@OOB")]
    print("\n".join(lines))
    return 0 if any("done" in ln for ln in lines) else 1


if __name__ == "__main__":
    raise SystemExit(main())
