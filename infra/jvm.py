"""The Java runtime and the pinned Kafka jars the platform runs on."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from flk.errors import PlatformError
from infra.layout import REPO_ROOT, Layout

JAVA_MAJOR = 17
POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"
LOCK = REPO_ROOT / "infra" / "kafka" / "jars.sha256"


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    assert match, f"{POM} names no kafka.version"
    return match.group(1)


def java_bin() -> str:
    """The `java` to run, after checking it is version 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise PlatformError(
            f"No Java runtime found: Kafka {kafka_version()} needs Java {JAVA_MAJOR} or newer",
            hint="install one (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME",
        )
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except OSError as exc:
        raise PlatformError(f"Could not run {java}: {exc}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < JAVA_MAJOR:
        raise PlatformError(
            f"{java} is Java {major or 'of unknown version'}; Kafka {kafka_version()} needs "
            f"Java {JAVA_MAJOR} or newer",
            hint="install Java 17+ or point JAVA_HOME at one",
        )
    return java


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_lock() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            entries[name] = digest
    return entries


def _resolve(into: Path) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise PlatformError(
            "Maven (mvn) is needed to fetch the pinned Kafka jars from Maven Central",
            hint="install it (e.g. `apt-get install maven`)",
        )
    cmd = [
        mvn, "-B", "-q", "-C", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={into}", "-DincludeScope=runtime",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise PlatformError(
            f"Downloading the Kafka {kafka_version()} jars from Maven Central failed:\n{tail}",
            hint="check that Maven Central is reachable; the command was: " + " ".join(cmd),
        )


def verify(directory: Path, lock: dict[str, str]) -> None:
    present = {p.name for p in directory.glob("*.jar")}
    missing = sorted(set(lock) - present)
    extra = sorted(present - set(lock))
    if missing or extra:
        raise PlatformError(
            f"The jars in {directory} do not match {LOCK.name}: "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}",
            hint="if infra/kafka/pom.xml changed on purpose, run `flk platform lock-jars`",
        )
    for name, expected in sorted(lock.items()):
        actual = _sha256(directory / name)
        if actual != expected:
            raise PlatformError(
                f"{name} does not verify: sha256 {actual}, expected {expected} ({LOCK.name})",
                hint="delete the download cache (~/.m2/repository/org/apache/...) and retry",
            )


def ensure_jars(layout: Layout) -> Path:
    """The directory of verified Kafka jars, downloading them on first use."""
    target = layout.lib_dir / f"kafka-{kafka_version()}"
    lock = read_lock()
    stamp = target / ".verified"
    lock_id = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == lock_id:
        return target
    layout.lib_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=layout.lib_dir) as tmp:
        staging = Path(tmp) / "jars"
        _resolve(staging)
        verify(staging, lock)
        (staging / ".verified").write_text(lock_id)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def write_lock(layout: Layout) -> Path:
    """Resolve the pom's jars afresh and record their hashes (after a deliberate upgrade)."""
    with tempfile.TemporaryDirectory(dir=layout.lib_dir if layout.lib_dir.exists() else None) as t:
        staging = Path(t) / "jars"
        _resolve(staging)
        lines = [f"# sha256 of every jar resolved from {POM.name} (Kafka {kafka_version()})"]
        lines += [f"{_sha256(p)}  {p.name}" for p in sorted(staging.glob("*.jar"))]
    LOCK.write_text("\n".join(lines) + "\n")
    return LOCK


def classpath(jars: Path) -> str:
    return str(jars / "*")
