"""pytest-xdist workers share the caches: concurrent writers of the plan cache and the patched-prefix memo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import json, sys
from pathlib import Path
from machinedesc.plan.pipeline import load_plan
from machinedesc.plan.steps import plan_to_data
from machinedesc.qemu.build import prefix
for _ in range(3):
    plan = load_plan(Path(sys.argv[1]), {}, cache=True)
print(json.dumps([plan_to_data(plan), str(prefix())]))
"""


def test_concurrent_workers_share_the_caches_without_races(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = dict(os.environ, MACHINEDESC_CACHE=str(cache), PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(REPO / "boards" / "soc.yaml")], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outs]
    assert all(err == "" for _, err in outs), [err for _, err in outs]  # no warning about a broken entry
    results = {out for out, _ in outs}
    assert len(results) == 1  # every worker got the same plan and the same prefix
    # Each cache entry is a whole JSON file; no temporary file is left behind.
    entries = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    assert entries and all(not name.rsplit("/", 1)[-1].startswith(".") for name in entries), entries
    for entry in cache.rglob("*.json"):
        json.loads(entry.read_text())
