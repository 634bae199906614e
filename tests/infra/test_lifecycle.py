"""`flk up` / `down` / `up` on a second, independent instance, and the clear errors for bad
states: a taken port, no Java, a jar that does not verify, a server that never gets healthy."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flk.errors import PlatformError
from infra import jvm, ports
from infra import platform as plat
from infra.layout import REDIS, Layout
from infra.procs import Service, Supervisor
from tests.conftest import (
    FLK,
    SCRATCH_NO_JAVA,
    SCRATCH_PORT_CONFLICT,
    SCRATCH_UP_DOWN_UP,
    scratch_env,
)

pytestmark = pytest.mark.platform


def _flk(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLK, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _scratch_layout(env: dict[str, str]) -> Layout:
    from flk.config import Config
    from infra.layout import load_layout

    return load_layout(Config(None, environ=env))


@pytest.mark.slow
def test_up_down_up(scratch_home: Path) -> None:
    env = scratch_env(scratch_home, SCRATCH_UP_DOWN_UP)
    layout = _scratch_layout(env)
    try:
        t0 = time.monotonic()
        first = _flk(env, "up")
        assert first.returncode == 0, first.stderr
        print(f"first start (jars from the local Maven cache): {time.monotonic() - t0:.1f} s")
        again = _flk(env, "up")  # harmless when already running
        assert again.returncode == 0 and "Already running" in again.stdout, again.stdout
        st = json.loads(_flk(env, "status", "--json").stdout)
        assert st["healthy"] is True
        for region in ("eu-west", "us-east"):  # the pipeline's own processes are reported too
            apps = {k: v["healthy"] for k, v in st["regions"][region].items()
                    if k.startswith(("gateway-", "worker-"))}  # fmt: skip
            assert apps == {"worker-0": True, "gateway-0": True, "gateway-1": True}, apps
        ids = {r: st["regions"][r]["kafka"]["cluster_id"] for r in ("eu-west", "us-east")}

        down = _flk(env, "down")
        assert down.returncode == 0, down.stderr
        assert Supervisor(layout.run_dir).recorded() == []
        assert plat.strays(layout) == [], "a process was left behind"
        busy = [p for r in layout.regions for p in (r.port(92), r.port(79), r.port(33))
                if not ports.is_free(p)]  # fmt: skip
        assert busy == []
        stopped = _flk(env, "status")
        assert stopped.returncode == 1 and "NOT healthy" in stopped.stdout

        t0 = time.monotonic()
        second = _flk(env, "up")
        assert second.returncode == 0, second.stderr
        print(f"warm start: {time.monotonic() - t0:.1f} s")
        st2 = json.loads(_flk(env, "status", "--json").stdout)
        # Same data directories: the clusters keep their identity across restarts.
        assert {r: st2["regions"][r]["kafka"]["cluster_id"] for r in ids} == ids
    finally:
        plat.down(layout)
    assert plat.strays(layout) == []


def test_port_conflict_names_port_and_holder(scratch_home: Path) -> None:
    env = scratch_env(scratch_home, SCRATCH_PORT_CONFLICT)
    layout = _scratch_layout(env)
    taken = layout.regions[1].port(REDIS)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1', {taken})); s.listen();"
         "time.sleep(120)"]
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while ports.is_free(taken) and time.monotonic() < deadline:
            time.sleep(0.05)
        result = _flk(env, "up")
        assert result.returncode == 1
        assert f"Port {taken} (needed by redis (us-east)) is already in use by pid {holder.pid}" \
            in result.stderr, result.stderr
        assert "FLK_PORT_BASE" in result.stderr  # the hint
        assert "Traceback" not in result.stderr
        # Nothing half-started.
        assert Supervisor(layout.run_dir).recorded() == []
        assert plat.strays(layout) == []
    finally:
        holder.kill()
        holder.wait()
        plat.down(layout)


def test_missing_java_says_which_version(tmp_path: Path) -> None:
    env = scratch_env(tmp_path / "home", SCRATCH_NO_JAVA)
    env["JAVA_HOME"] = str(tmp_path / "no-such-jdk")
    result = _flk(env, "up")
    assert result.returncode == 1
    assert "No Java runtime found" in result.stderr and "Java 17 or newer" in result.stderr
    assert "Traceback" not in result.stderr


def test_old_java_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "jdk" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    (fake / "java").chmod(0o755)
    os.environ["JAVA_HOME"], saved = str(fake.parent), os.environ.get("JAVA_HOME")
    try:
        with pytest.raises(PlatformError, match="is Java 11; Kafka .* needs Java 17 or newer"):
            jvm.java_bin()
    finally:
        if saved is None:
            del os.environ["JAVA_HOME"]
        else:
            os.environ["JAVA_HOME"] = saved


def test_tampered_jar_does_not_verify(platform: Layout, tmp_path: Path) -> None:
    jars = jvm.ensure_jars(platform)
    copy = tmp_path / "jars"
    shutil.copytree(jars, copy)
    jvm.verify(copy, jvm.read_lock())  # the real download verifies
    victim = copy / f"kafka-clients-{jvm.kafka_version()}.jar"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(PlatformError, match=f"{victim.name} does not verify: sha256"):
        jvm.verify(copy, jvm.read_lock())
    victim.unlink()
    with pytest.raises(PlatformError, match=f"missing \\['{victim.name}'\\]"):
        jvm.verify(copy, jvm.read_lock())


def test_failed_download_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text(
        jvm.POM.read_text().replace("<kafka.version>", "<kafka.version>0.0.0-no-such-")
    )
    monkeypatch.setattr(jvm, "POM", pom)
    with pytest.raises(PlatformError, match="Downloading the Kafka .* jars from Maven Central"):
        jvm._resolve(tmp_path / "out")


def test_unhealthy_server_times_out_with_log_tail(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "run")
    script = "import sys,time; print('booting the thing', flush=True); time.sleep(60)"
    svc = Service(
        name="never-healthy", region="test", argv=[sys.executable, "-c", script],
        log=tmp_path / "never.log", health=lambda: False,
    )  # fmt: skip
    with pytest.raises(PlatformError) as err:
        sup.start(svc, timeout_s=2)
    assert "did not become healthy within 2 s" in err.value.message
    assert "booting the thing" in err.value.message
    assert sup.recorded() == []


def test_crashing_server_reports_exit_and_log(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "run")
    svc = Service(
        name="crasher", region="test",
        argv=[sys.executable, "-c", "import sys; print('bad config line 3'); sys.exit(3)"],
        log=tmp_path / "crash.log", health=lambda: False,
    )  # fmt: skip
    with pytest.raises(PlatformError, match="exited while starting(.|\n)*bad config"):
        sup.start(svc, timeout_s=10)


def test_port_holder_is_found() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not ports.is_free(port)
        assert ports.holder(port).startswith(f"pid {os.getpid()} ")
