"""Build and cache the project's own Linux 6.12 kernel with SMC-D loopback-ism (CONFIG_SMC_LO).

Theory of operation
-------------------
No Debian kernel package ships loopback-ism built in (trixie's 6.12 has ``CONFIG_SMC_LO`` off),
so the project builds a minimal one from Debian's ``linux-source-6.12``:

1. **fetch**: a private apt configuration (its own ``sources.list`` naming Debian trixie,
   trixie-updates is not needed, trixie-security and trixie-backports; its own lists and cache
   directories, selected with ``APT_CONFIG``) so the machine's apt sources are never touched;
   ``apt-get update`` then ``apt-get download linux-source-6.12`` (about 150 MB).
2. **extract**: ``dpkg-deb -x`` and ``tar -xJf`` of ``usr/src/linux-source-6.12.tar.xz``.
3. **configure**: ``make tinyconfig``, merge the project's fragment
   (``smc_lo.config``, package data) with ``scripts/kconfig/merge_config.sh``, ``make
   olddefconfig``, then verify that every ``=y`` line of the fragment survived (a fragment
   option that Kconfig dropped is an error, not a silent difference).
4. **build**: ``nice -n 10 make -j2 bzImage`` (the machine is shared), with phase lines, elapsed
   time and a filtered tail of the build log on failure.

The image is cached outside the work tree, keyed by the source package version and a hash of
the fragment's meaningful lines (comments, blank lines and order do not count)::

    $XDG_CACHE_HOME/smcd-check/kernel/          (default ~/.cache/smcd-check/kernel/)
        apt/                    private apt configuration, lists and archives
        debs/                   linux-source-6.12_<version>_all.deb
        src/<version>/          extracted tree (removed after a successful build)
        <version>-<hash>/bzImage, image.json, build.log, config

``find_image()`` returns a cached image for the current fragment without any network access;
the tests and ``smcd-check kernel run`` use it.

Not done here: cross-architecture builds, other kernel versions than Debian's 6.12 series,
signature checking beyond what apt does for the package itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: the Debian source package (binary package name) holding the kernel tree
SOURCE_PACKAGE = "linux-source-6.12"
#: the version the project's golden captures were made with (used when apt offers it)
PREFERRED_VERSION = "6.12.118-1"
#: the fragment merged on top of tinyconfig (package data next to this module)
FRAGMENT_PATH = Path(__file__).with_name("smc_lo.config")

#: executable -> Debian package, for the "missing build dependency" message
BUILD_TOOLS: dict[str, str] = {
    "gcc": "gcc",
    "make": "make",
    "flex": "flex",
    "bison": "bison",
    "bc": "bc",
    "xz": "xz-utils",
    "perl": "perl",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "tar": "tar",
}
#: header -> Debian package
BUILD_HEADERS: dict[str, str] = {
    "/usr/include/gelf.h": "libelf-dev",
    "/usr/include/openssl/opensslv.h": "libssl-dev",
}

Progress = Callable[[str], None]


class KernelBuildError(Exception):
    """The kernel could not be fetched, configured or built (message names the step)."""


class MissingBuildDependency(KernelBuildError):
    """A tool or header the build needs is not installed; ``packages`` names the apt packages."""

    def __init__(self, missing: Sequence[str], packages: Sequence[str]) -> None:
        self.missing = tuple(missing)
        self.packages = tuple(sorted(set(packages)))
        super().__init__(
            f"missing build dependencies: {', '.join(self.missing)}; install them with: "
            f"apt-get install {' '.join(self.packages)}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelImage:
    """A built, cached kernel image."""

    path: Path
    version: str
    config_hash: str
    sha256: str
    build_seconds: float | None = None


def cache_root() -> Path:
    """The kernel cache folder: ``$XDG_CACHE_HOME/smcd-check/kernel`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "smcd-check" / "kernel"


def fragment_lines(text: str) -> tuple[str, ...]:
    """The meaningful lines of a Kconfig fragment: no comments or blanks, sorted."""
    lines = {ln.strip() for ln in text.splitlines()}
    return tuple(sorted(ln for ln in lines if ln and not ln.startswith("#")))


def config_hash(text: str) -> str:
    """12 hex digits identifying a fragment (independent of comments, blanks and order)."""
    body = "\n".join(fragment_lines(text)) + "\n"
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def fragment_text() -> str:
    return FRAGMENT_PATH.read_text()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_image(root: Path | None = None, fragment: str | None = None) -> KernelImage | None:
    """A cached image built from the current fragment (newest version first), or None.

    Never touches the network.
    """
    root = root or cache_root()
    chash = config_hash(fragment if fragment is not None else fragment_text())
    if not root.is_dir():
        return None
    found: list[KernelImage] = []
    for d in root.iterdir():
        if not d.name.endswith("-" + chash):
            continue
        img, meta = d / "bzImage", d / "image.json"
        if not (img.is_file() and meta.is_file()):
            continue
        try:
            info = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        found.append(
            KernelImage(
                path=img,
                version=str(info.get("version", d.name[: -len(chash) - 1])),
                config_hash=chash,
                sha256=str(info.get("sha256", "")),
                build_seconds=info.get("build_seconds"),
            )
        )
    if not found:
        return None

    def key(k: KernelImage) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", k.version))

    return max(found, key=key)


def missing_dependencies() -> MissingBuildDependency | None:
    """None if every build tool and header is present, else the error naming them."""
    missing: list[str] = []
    packages: list[str] = []
    for tool, pkg in BUILD_TOOLS.items():
        if shutil.which(tool) is None:
            missing.append(tool)
            packages.append(pkg)
    for header, pkg in BUILD_HEADERS.items():
        if not Path(header).exists():
            missing.append(header)
            packages.append(pkg)
    return MissingBuildDependency(missing, packages) if missing else None


# ------------------------------------------------------------------------------ apt (private)

def _machine_mirrors() -> tuple[str, str]:
    """(debian mirror URI, debian-security URI) taken from the machine's own apt sources."""
    main, security = "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
    texts: list[str] = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.suffix in (".list", ".sources") or p.name == "sources.list":
            try:
                texts.append(p.read_text())
            except OSError:
                continue
    for uri in re.findall(r"(?:URIs:|deb)\s+(\S+://\S+)", "\n".join(texts)):
        uri = uri.rstrip("/")
        if uri.endswith("/debian-security"):
            security = uri
        elif uri.endswith("/debian"):
            main = uri
    return main, security


def apt_env(root: Path) -> dict[str, str]:
    """Environment selecting the private apt configuration under ``root/apt``."""
    apt = root / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "etc/sources.list.d",
                "etc/preferences.d"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    main, security = _machine_mirrors()
    (apt / "etc" / "sources.list").write_text(
        f"deb {main} trixie main\n"
        f"deb {main} trixie-backports main\n"
        f"deb {security} trixie-security main\n"
    )
    conf = apt / "apt.conf"
    conf.write_text(
        f'Dir::Etc::SourceList "{apt}/etc/sources.list";\n'
        f'Dir::Etc::SourceParts "{apt}/etc/sources.list.d";\n'
        f'Dir::Etc::Preferences "{apt}/etc/preferences";\n'
        f'Dir::Etc::PreferencesParts "{apt}/etc/preferences.d";\n'
        f'Dir::State::Lists "{apt}/lists";\n'
        f'Dir::Cache "{apt}/cache";\n'
    )
    env = dict(os.environ)
    env["APT_CONFIG"] = str(conf)
    env["DEBIAN_FRONTEND"] = "noninteractive"
    return env


def _run(cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
         what: str) -> str:
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True,
                              check=False)
    except OSError as exc:
        raise KernelBuildError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise KernelBuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def available_versions(root: Path, progress: Progress) -> list[str]:
    """Versions of linux-source-6.12 the private apt sources offer (after apt-get update)."""
    env = apt_env(root)
    progress("fetch: apt-get update (private APT_CONFIG, Debian trixie sources)")
    _run(["apt-get", "-q", "update"], env=env, what="apt-get update")
    out = _run(["apt-cache", "madison", SOURCE_PACKAGE], env=env, what="apt-cache madison")
    versions = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 2 and parts[0] == SOURCE_PACKAGE and parts[1] not in versions:
            versions.append(parts[1])
    if not versions:
        raise KernelBuildError(f"the Debian trixie sources offer no {SOURCE_PACKAGE}")
    return versions


def fetch_source(root: Path, version: str, progress: Progress) -> Path:
    """Download the .deb of ``version`` (kept in ``root/debs``); return its path."""
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    name = f"{SOURCE_PACKAGE}_{version}_all.deb"
    deb = debs / name
    if deb.is_file() and deb.stat().st_size > 0:
        progress(f"fetch: {name} already cached")
        return deb
    progress(f"fetch: apt-get download {SOURCE_PACKAGE}={version} (about 150 MB)")
    _run(["apt-get", "-q", "download", f"{SOURCE_PACKAGE}={version}"], cwd=debs,
         env=apt_env(root), what="apt-get download")
    if not deb.is_file():
        raise KernelBuildError(f"apt-get download did not produce {deb}")
    return deb


def extract_source(root: Path, deb: Path, version: str, progress: Progress) -> Path:
    """Unpack the kernel tree of ``deb`` into ``root/src/<version>``; return the tree."""
    dest = root / "src" / version
    tree = dest / SOURCE_PACKAGE
    if (tree / "Makefile").is_file():
        progress(f"extract: source tree already at {tree}")
        return tree
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    unpack = dest / "deb"
    progress("extract: dpkg-deb -x")
    _run(["dpkg-deb", "-x", str(deb), str(unpack)], what="dpkg-deb -x")
    tarballs = sorted(unpack.glob("usr/src/linux-source-*.tar.xz"))
    if not tarballs:
        raise KernelBuildError(f"{deb.name} holds no usr/src/linux-source-*.tar.xz")
    progress(f"extract: tar -xJf {tarballs[0].name} (about 30 s)")
    _run(["nice", "-n", "10", "tar", "-xJf", str(tarballs[0]), "-C", str(dest)],
         what="tar -xJf")
    shutil.rmtree(unpack, ignore_errors=True)
    if not (tree / "Makefile").is_file():
        raise KernelBuildError(f"no kernel Makefile after extracting into {tree}")
    return tree


# ------------------------------------------------------------------------------ configure/build

_FILTER = re.compile(r"error|warning: |Error|\*\*\*|undefined reference|No rule", re.I)


def _make(tree: Path, obj: Path, args: Sequence[str], log: Path, progress: Progress,
          *, phase: str, jobs: int) -> None:
    cmd = ["nice", "-n", "10", "make", f"O={obj}", f"-j{jobs}", *args]
    t0 = time.monotonic()
    last = t0
    ncc = 0
    with log.open("a") as logf:
        logf.write(f"$ {' '.join(cmd)}\n")
        logf.flush()
        try:
            proc = subprocess.Popen(cmd, cwd=tree, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace")
        except OSError as exc:
            raise KernelBuildError(f"{phase}: cannot run make: {exc}") from exc
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                logf.write(line)
                if line.lstrip().startswith(("CC", "LD", "AS", "AR")):
                    ncc += 1
                now = time.monotonic()
                if now - last >= 30:
                    last = now
                    progress(f"{phase}: {now - t0:5.0f} s, {ncc} objects; {line.strip()[:70]}")
            rc = proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
            raise
    if rc != 0:
        lines = log.read_text(errors="replace").splitlines()
        picked = [ln for ln in lines if _FILTER.search(ln)][-12:] or lines[-12:]
        raise KernelBuildError(
            f"{phase} failed (make exit {rc}); build log {log}; last relevant lines:\n"
            + "\n".join(picked)
        )
    progress(f"{phase}: done in {time.monotonic() - t0:.0f} s")


def configure(tree: Path, obj: Path, fragment: str, log: Path, progress: Progress) -> None:
    """tinyconfig + fragment + olddefconfig in the object folder ``obj``; verify the result."""
    obj.mkdir(parents=True, exist_ok=True)
    frag = obj.parent / "fragment.config"
    frag.write_text(fragment)
    progress("configure: make tinyconfig")
    _make(tree, obj, ["tinyconfig"], log, progress, phase="configure", jobs=1)
    progress("configure: merge the smcd-check fragment, make olddefconfig")
    _run(["bash", str(tree / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(obj),
          str(obj / ".config"), str(frag)], cwd=tree, what="merge_config.sh")
    _make(tree, obj, ["olddefconfig"], log, progress, phase="configure", jobs=1)
    text = (obj / ".config").read_text()
    final = set(fragment_lines(text))
    lost = [ln for ln in fragment_lines(fragment) if ln.endswith("=y") and ln not in final]
    # a symbol the .config does not mention at all does not exist in this kernel (e.g.
    # CONFIG_SOCK_DIAG: sock_diag is always built in 6.12): say so, it changes nothing;
    # a symbol Kconfig knows but set otherwise lost a dependency: that is an error
    unknown = [ln for ln in lost if re.search(rf"\b{re.escape(ln.split('=')[0])}\b", text) is None]
    dropped = [ln for ln in lost if ln not in unknown]
    if unknown:
        progress("configure: not Kconfig symbols of this kernel (ignored): " + ", ".join(unknown))
    if dropped:
        raise KernelBuildError(
            "Kconfig dropped fragment options (a dependency is missing): " + ", ".join(dropped)
        )


def build(*, force: bool = False, keep_tree: bool = False, jobs: int = 2,
          root: Path | None = None, version: str | None = None,
          progress: Progress = print) -> KernelImage:
    """Fetch, configure and build the kernel image; return the cached image.

    Reuses a cached image for the current fragment unless ``force``.

    Raises:
        MissingBuildDependency: naming the apt packages to install.
        KernelBuildError: any other failure, naming the step.
    """
    root = root or cache_root()
    fragment = fragment_text()
    chash = config_hash(fragment)
    if not force:
        cached = find_image(root, fragment)
        if cached is not None and (version is None or cached.version == version):
            progress(f"cached image: {cached.path} ({cached.version}, config {chash})")
            return cached
    dep = missing_dependencies()
    if dep is not None:
        raise dep
    t_start = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    if version is None:
        offered = available_versions(root, progress)
        version = PREFERRED_VERSION if PREFERRED_VERSION in offered else offered[0]
    progress(f"source: {SOURCE_PACKAGE} {version}; config hash {chash}")
    deb = fetch_source(root, version, progress)
    tree = extract_source(root, deb, version, progress)
    out = root / f"{version}-{chash}"
    obj = out / "build"
    log = out / "build.log"
    out.mkdir(parents=True, exist_ok=True)
    if not (obj / ".config").is_file() or force:
        configure(tree, obj, fragment, log, progress)
    progress(f"build: nice -n 10 make -j{jobs} bzImage (8-15 min on 2 busy cores)")
    _make(tree, obj, ["bzImage"], log, progress, phase="build", jobs=jobs)
    built = obj / "arch" / "x86" / "boot" / "bzImage"
    if not built.is_file():
        raise KernelBuildError(f"make succeeded but {built} is missing")
    shutil.copy2(built, out / "bzImage")
    shutil.copy2(obj / ".config", out / "config")
    seconds = time.monotonic() - t_start
    image = KernelImage(path=out / "bzImage", version=version, config_hash=chash,
                        sha256=_sha256(out / "bzImage"), build_seconds=round(seconds, 1))
    (out / "image.json").write_text(json.dumps({
        "version": version, "config_hash": chash, "sha256": image.sha256,
        "build_seconds": image.build_seconds, "source_package": SOURCE_PACKAGE,
    }, indent=2) + "\n")
    if not keep_tree:
        shutil.rmtree(obj, ignore_errors=True)
        shutil.rmtree(root / "src" / version, ignore_errors=True)
    progress(f"image: {image.path} ({image.path.stat().st_size // 1024} KiB, "
             f"sha256 {image.sha256[:16]}..., {seconds:.0f} s)")
    return image
