from __future__ import annotations

import io
import json
import shlex
import subprocess
from pathlib import Path

from flk_pcs.conformance import run

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "sdk/vectors/pcs-vectors.json").read_text(encoding="utf-8"))
KEYS = ("payload", "sha256", "hmac_sig", "ed25519_sig")


def _lines() -> str:
    return "".join(
        json.dumps({"pcs": v["pcs"], "hmac_key": v["hmac_key"],
                    "ed25519_seed_b64": v["ed25519_seed_b64"]}) + "\n"
        for v in VECTORS["signing"]
    )


def test_the_listed_command_reproduces_every_signing_vector() -> None:
    command = json.loads((REPO / "sdk/conformance.json").read_text())["python"]
    result = subprocess.run(shlex.split(command), input=_lines(), capture_output=True,
                            text=True, cwd=REPO, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outputs) == len(VECTORS["signing"])
    for v, out in zip(VECTORS["signing"], outputs, strict=True):
        assert {k: out[k] for k in KEYS} == {k: v[k] for k in KEYS}, v["name"]


def test_bad_lines_are_reported_and_the_rest_still_processed() -> None:
    good = _lines().splitlines()[0]
    stdin = io.StringIO("not json\n" + '{"pcs": []}\n' + '{"pcs": {"pcs_id": "x"}}\n'
                        + good + "\n" + '{"pcs": {}, "hmac_key": 1}\n')
    stdout = io.StringIO()
    assert run(stdin, stdout) == 1
    out = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [o.get("error") for o in out] == ["malformed_json", "not_an_object", "missing_field",
                                             None, "missing_field"]
    assert out[3]["hmac_sig"] == VECTORS["signing"][0]["hmac_sig"]


def test_absent_keys_give_null_signatures() -> None:
    v = VECTORS["signing"][0]
    stdout = io.StringIO()
    assert run(io.StringIO(json.dumps({"pcs": v["pcs"]}) + "\n"), stdout) == 0
    out = json.loads(stdout.getvalue())
    assert out["payload"] == v["payload"] and out["hmac_sig"] is None and out["ed25519_sig"] is None
