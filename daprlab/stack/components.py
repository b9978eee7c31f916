"""The resources daprd loads: the shared components/ folder, or a variant of it made for one run.

Two experiments of EXPERIMENTS.md need a variant: daprd without the resiliency policy, and a
separate Redis database per namespace. A variant is a copy in the state directory, made anew at
each start, so components/ stays the one source.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from daprlab.paths import COMPONENTS_DIR

RESILIENCY_FILE = "resiliency.yaml"
STATESTORE_FILE = "statestore.yaml"
# statestore.yaml ends with its metadata list: a further item goes at the end.
REDIS_DB_ITEM = '    - name: redisDB\n      value: "{db}"\n'


def resources_dir(state_dir: Path, resiliency: bool = True, redis_db: int | None = None) -> Path:
    """components/ itself, or a copy in `state_dir` without resiliency.yaml (daprd then applies
    no retry or timeout policy to the state store) and/or with the state store on Redis
    database `redis_db` instead of 0."""
    if resiliency and redis_db is None:
        return COMPONENTS_DIR
    name = "components" + ("-without-resiliency" if not resiliency else "")
    name += f"-redis-db-{redis_db}" if redis_db is not None else ""
    copy = state_dir / name
    shutil.rmtree(copy, ignore_errors=True)
    ignore = shutil.ignore_patterns(RESILIENCY_FILE) if not resiliency else None
    shutil.copytree(COMPONENTS_DIR, copy, ignore=ignore)
    if redis_db is not None:
        statestore = copy / STATESTORE_FILE
        text = statestore.read_text()
        assert text.rstrip().endswith('value: "true"'), "statestore.yaml no longer ends its list"
        statestore.write_text(text.rstrip("\n") + "\n" + REDIS_DB_ITEM.format(db=redis_db))
    return copy
