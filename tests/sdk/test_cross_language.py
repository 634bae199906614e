"""Cross-language conformance: the Python, Go and TypeScript SDKs sign byte-identically (SPEC §2).

Every run draws fresh random inputs (seed printed; FLK_CROSS_SEED=<n> replays a run) that aim at
the hard parts of the signing rule: half-way cases of the 9-place rounding, numbers whose binary
value and shortest decimal disagree, exponent-form printing, -0.0, integer tokens, control and
non-BMP characters, epochs near 2^53, empty and non-ASCII HMAC secrets. Each line goes through the
three conformance commands of sdk/conformance.json and through a reference written straight from
SPEC §2 here; all four must agree exactly. The Go and TypeScript commands run with a PATH that
holds no Python at all (only `node` for the TypeScript one), so they cannot shell out to it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import shlex
import shutil
import subprocess
from decimal import ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"
N_LINES = 600
KEYS = ("payload", "sha256", "hmac_sig", "ed25519_sig")


# --- the reference: SPEC §2 verbatim -------------------------------------------------------


def ref_round9(x: float) -> float:
    wide = Context(prec=400)  # so that 1e+22 quantizes without overflow
    return float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP, context=wide))


def ref_sign(line: dict[str, Any]) -> dict[str, str]:
    pcs = line["pcs"]
    fields: dict[str, Any] = {k: pcs[k] for k in ("pcs_id", "merkle_root", "epoch", "shard_id")}
    for k in ("D_hat", "coh_star", "r", "budget"):
        fields[k] = ref_round9(float(pcs[k]))
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    digest = hashlib.sha256(payload.encode("ascii")).digest()
    seed = base64.b64decode(line["ed25519_seed_b64"], validate=True)
    mac = hmac.new(line["hmac_key"].encode(), digest, hashlib.sha256).digest()
    return {
        "payload": payload,
        "sha256": digest.hex(),
        "hmac_sig": base64.b64encode(mac).decode(),
        "ed25519_sig": base64.b64encode(SigningKey(seed).sign(digest).signature).decode(),
    }


# --- random inputs -------------------------------------------------------------------------


def half_way(rng: random.Random) -> float:
    """A decimal with exactly 10 fractional digits ending in 5 and at most 15 significant digits,
    so that its shortest repr is that very number: the 9-place rounding sits exactly on the half."""
    n = rng.randint(0, 5)
    whole = str(rng.randrange(10 ** (n - 1), 10**n)) if n else "0"
    frac = "".join(rng.choice("0123456789") for _ in range(9)) + "5"
    text = f"{'-' if rng.random() < 0.3 else ''}{whole}.{frac}"
    x = float(text)
    assert Decimal(repr(x)) == Decimal(text), text
    return x


def exponent_form(rng: random.Random) -> float:
    mant = rng.choice(
        ["1", "5", "1.5", "2.5", "9.99", "4.9", "5.1", "1.2345", str(rng.randint(1, 999))]
    )
    return float(f"{'-' if rng.random() < 0.2 else ''}{mant}e{rng.randint(-13, 22)}")


def binary_noise(rng: random.Random) -> float:
    """Values like 2.675 or 0.1 + 0.2 whose binary value is off the decimal one."""
    a: float = rng.choice([0.1, 0.2, 0.3, 0.7, 1.1, 2.675, 1.005, 1 / 3, 2 / 3, 1e-9, 5e-10])
    b: float = rng.choice([0.1, 0.2, 0.7, 1e-10, 3e-10, 0.0, 1.0])
    return rng.choice([a + b, a - b, a * 3, a / 7, (a + b) * 1e-5])


def any_double(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.4:
        return rng.uniform(-4, 4)
    if kind < 0.6:
        return rng.random() * 10.0 ** rng.randint(-12, 17)
    if kind < 0.8:  # 17 significant digits
        return float(f"{rng.randint(10**16, 10**17 - 1)}e{rng.randint(-26, 2)}")
    return rng.choice(
        [
            0.0,
            -0.0,
            1.0,
            -1.0,
            5e-324,
            -5e-324,
            1e-9,
            5e-10,
            -5e-10,
            4.999999999e-10,
            0.9999999995,
            1e15,
            1e16,
            9999999999999998.0,
            1e22,
            1.7976931348623157e308,
        ]
    )


def number(rng: random.Random) -> float | int:
    pick = rng.random()
    if pick < 0.3:
        return half_way(rng)
    if pick < 0.5:
        return exponent_form(rng)
    if pick < 0.6:
        return binary_noise(rng)
    if pick < 0.7:  # an integer token, which means the float
        return rng.choice(
            [0, 1, -1, 2, 3, 999999999999999, 10**20, -(2**53), rng.randint(-(10**9), 10**9)]
        )
    return any_double(rng)


ALPHABET = (
    [chr(c) for c in range(0x20, 0x7F)] * 3
    + [chr(c) for c in range(0x00, 0x20)]
    + ["\x7f", "\x80", "\xa0", "\xe9", "\xff"]
    + [
        "\u0100",
        "\u2028",
        "\u2029",
        "\ufeff",
        "\ufffd",
        "\ufffe",
        "\uffff",
        "\ud7ff",
        "\ue000",
        "\u6771",
        "\u4eac",
    ]
    + ["\U00010000", "\U0001d11e", "\U0001f600", "\U0001f9d1", "\U0010fffd", "\U0010ffff"]
    + ['"', "\\", "/", "<", ">", "&", "'"]
)


def text(rng: random.Random, max_len: int = 24) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, max_len)))


def hex64(rng: random.Random) -> str:
    return rng.randbytes(32).hex()


def make_line(rng: random.Random) -> dict[str, Any]:
    merkle_root = hex64(rng) if rng.random() < 0.7 else text(rng) or "m"
    epoch = rng.choice([0, 1, 2**53 - 1, 2**53 - 2, 2**31, 2**32 + 1, rng.randrange(0, 2**53)])
    shard_id = text(rng) or "s"
    pcs_id = hashlib.sha256(f"{merkle_root}|{epoch}|{shard_id}".encode()).hexdigest()
    if rng.random() < 0.2:
        pcs_id = text(rng)
    pcs = {
        "pcs_id": pcs_id,
        "merkle_root": merkle_root,
        "epoch": epoch,
        "shard_id": shard_id,
        "D_hat": number(rng),
        "coh_star": number(rng),
        "r": number(rng),
        "budget": number(rng),
    }
    if rng.random() < 0.2:  # unsigned fields ride along and must be ignored
        pcs.update(
            {"schema": "fractal-lba-kakeya", "scales": [2, 4], "regime": "mixed", "sig": "AAAA"}
        )
    return {
        "pcs": pcs,
        "hmac_key": rng.choice(["testsecret", "", "k\u00e9y-\U0001f511", text(rng, 80), "x" * 100]),
        "ed25519_seed_b64": base64.b64encode(rng.randbytes(32)).decode(),
    }


# --- running the commands ------------------------------------------------------------------


def _newest(paths: list[Path]) -> float:
    return max((p.stat().st_mtime for p in paths), default=0.0)


@pytest.fixture(scope="session")
def commands() -> dict[str, str]:
    """sdk/conformance.json, after building the Go binary and the TS dist if they are stale."""
    go_src = [*SDK.glob("go/**/*.go"), SDK / "go" / "go.mod"]
    ts_src = [
        *SDK.glob("ts/src/**/*.ts"),
        SDK / "ts" / "package.json",
        SDK / "ts" / "tsconfig.json",
    ]
    go_bin = SDK / "go" / "bin" / "pcs-conformance"
    ts_bin = SDK / "ts" / "dist" / "conformance.js"
    stale = (
        not go_bin.exists()
        or not ts_bin.exists()
        or go_bin.stat().st_mtime < _newest(go_src)
        or ts_bin.stat().st_mtime < _newest(ts_src)
    )
    if stale:
        subprocess.run(["bash", str(SDK / "build.sh")], check=True, cwd=ROOT, timeout=600)
    cmds: dict[str, str] = json.loads((SDK / "conformance.json").read_text(encoding="utf-8"))
    for lang in ("go", "ts"):
        assert cmds.get(lang), f"sdk/conformance.json has no {lang!r} command line"
    return cmds


def _env_without_python(tmp_path: Path, argv0: str) -> dict[str, str]:
    """A PATH holding only the command's own interpreter (node), never a Python."""
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    if "/" not in argv0:
        found = shutil.which(argv0)
        assert found, f"{argv0} is not installed"
        (bindir / argv0).symlink_to(found)
    for name in ("python", "python3", "python3.11", "python3.12", "python3.13"):
        assert shutil.which(name, path=str(bindir)) is None, f"{name} is reachable on the PATH"
    return {"PATH": str(bindir), "LANG": "C.UTF-8"}


def run(cmd: str, stdin: str, env: dict[str, str] | None) -> list[dict[str, Any]]:
    proc = subprocess.run(
        shlex.split(cmd),
        input=stdin.encode("utf-8"),
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"{cmd!r} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[:2000]}"
    )
    lines = proc.stdout.decode("utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_three_sdks_sign_random_inputs_identically(
    commands: dict[str, str], tmp_path: Path
) -> None:
    assert commands.get("python"), "sdk/conformance.json has no 'python' command line"
    seed = int(os.environ.get("FLK_CROSS_SEED") or random.SystemRandom().randrange(2**63))
    print(f"cross-language seed: {seed}  (replay: FLK_CROSS_SEED={seed})")
    rng = random.Random(seed)
    inputs = [make_line(rng) for _ in range(N_LINES)]
    # Half the lines escape everything (\uXXXX, surrogate pairs), half send raw UTF-8.
    stdin = "".join(json.dumps(x, ensure_ascii=rng.random() < 0.5) + "\n" for x in inputs)
    expected = [ref_sign(x) for x in inputs]

    outputs = {"python": run(commands["python"], stdin, None)}
    for lang in ("go", "ts"):
        argv0 = shlex.split(commands[lang])[0]
        outputs[lang] = run(commands[lang], stdin, _env_without_python(tmp_path / lang, argv0))

    failures: list[str] = []
    for lang, out in outputs.items():
        assert len(out) == len(inputs), (
            f"{lang}: {len(out)} output lines for {len(inputs)} inputs (seed {seed})"
        )
        for i, (got, want) in enumerate(zip(out, expected, strict=True)):
            diff = {k: (got.get(k), want[k]) for k in KEYS if got.get(k) != want[k]}
            if diff:
                failures.append(f"{lang} line {i}: input {json.dumps(inputs[i])}: {diff}")
    assert not failures, (
        f"seed {seed}: {len(failures)} out of {3 * len(inputs)} outputs differ from SPEC §2:\n"
        + "\n".join(failures[:10])
    )
    # Byte-identical payload text across the three, not only equal after parsing.
    for i in range(len(inputs)):
        assert (
            outputs["python"][i]["payload"]
            == outputs["go"][i]["payload"]
            == outputs["ts"][i]["payload"]
        )


def test_go_and_ts_refuse_the_same_unsignable_inputs(
    commands: dict[str, str], tmp_path: Path
) -> None:
    """A lone surrogate, a non-finite number or an epoch outside [0, 2^53) cannot be signed."""
    good = {
        "pcs_id": "p",
        "merkle_root": "m",
        "epoch": 1,
        "shard_id": "s",
        "D_hat": 1.0,
        "coh_star": 0.5,
        "r": 0.25,
        "budget": 0.5,
    }
    bad = [
        json.dumps({"pcs": {**good, **change}})
        for change in (
            {"shard_id": "\ud800x"},
            {"D_hat": float("nan")},
            {"budget": float("inf")},
            {"epoch": 2**53},
            {"epoch": -1},
        )
    ]
    stdin = "\n".join([json.dumps({"pcs": good, "hmac_key": "k"}), *bad]) + "\n"
    for lang in ("go", "ts"):
        argv0 = shlex.split(commands[lang])[0]
        proc = subprocess.run(
            shlex.split(commands[lang]),
            input=stdin.encode(),
            capture_output=True,
            cwd=ROOT,
            env=_env_without_python(tmp_path / lang, argv0),
            timeout=60,
        )
        assert proc.returncode == 1, f"{lang}: exit {proc.returncode}, want 1"
        out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
        assert len(out) == 1 + len(bad), f"{lang}: {out}"
        want = ref_sign({"pcs": good, "hmac_key": "k", "ed25519_seed_b64": "A" * 43 + "="})
        assert out[0]["payload"] == want["payload"]
        assert out[0]["hmac_sig"] == want["hmac_sig"]
        assert out[0]["ed25519_sig"] is None
        assert [o.get("error") for o in out[1:]] == ["invalid_input"] * len(bad), (
            f"{lang}: {out[1:]}"
        )
