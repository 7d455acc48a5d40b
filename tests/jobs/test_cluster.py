"""A real Spark standalone master + worker on 127.0.0.1 (infra/spark-standalone.sh) builds byte-identical shards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import FLICKR, GSM8K_TRAIN, REPO, build, cli

pytestmark = [pytest.mark.spark, pytest.mark.cluster]
SCRIPT = REPO / "infra" / "spark-standalone.sh"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("standalone")
    env = {**os.environ, "FREQINDEX_CLUSTER_DIR": str(state), "PYSPARK_PYTHON": sys.executable}
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, env=env, timeout=240
    )
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        url = started.stdout.strip().splitlines()[-1]
        assert url.startswith("spark://127.0.0.1:")
        yield url, state
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True, env=env, timeout=60)


def test_standalone_build_equals_local_build(cluster, tmp_path):
    url, state = cluster
    # spark.executor.cores fixes the executors' size: each shard task asks for all of one (stage-level
    # scheduling) and sorts its suffix array with both cores
    args = [
        "--text-field",
        "question",
        "--shards",
        "2",
        "--chunk-mb",
        "1",
        "--conf",
        "spark.executor.cores=2",
    ]
    p = cli(
        "build",
        FLICKR,
        GSM8K_TRAIN,
        "--text-per-line",
        *args,
        "--master",
        url,
        "-o",
        tmp_path / "cluster",
        "--json",
        check=0,
    )
    summary = json.loads(p.stdout)
    assert summary["shards"] == 2 and summary["chunks"] >= 4
    assert summary["shard_tasks"] == {
        "threads": 2,
        "concurrent": None,
        "cpus_per_task": 2,
        "spark_task_cpus": [2],  # Spark gave each shard task the two cores it asked for
    }
    build(
        [FLICKR, GSM8K_TRAIN],
        tmp_path / "local",
        text_per_line=True,
        text_field="question",
        shards=2,
        chunk_bytes=1 << 20,
        master="local[2]",
    )
    for name in sorted(os.listdir(tmp_path / "local" / "sa")):
        assert (tmp_path / "cluster" / "sa" / name).read_bytes() == (
            tmp_path / "local" / "sa" / name
        ).read_bytes(), name
    # the work really ran in the worker's executor, not in the driver
    apps = list((state / "work").glob("app-*"))
    assert apps and any((a / "0" / "stderr").exists() for a in apps)
    c1 = json.loads(cli("count", tmp_path / "cluster", " dog ", "--json", check=0).stdout)
    c2 = json.loads(cli("count", tmp_path / "local", " dog ", "--json", check=0).stdout)
    assert c1 == c2 and c1["count"] > 0


def _venv_at(root: Path) -> Path:
    """This very environment under another path: ``root/bin/python`` (a symlink to the base interpreter),
    the same pyvenv.cfg, and ``lib/pythonX.Y/site-packages`` symlinked to this venv's, so it imports
    freqindex and pyspark like the test's own Python while ``sys.executable`` names the new path."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (root / "bin").mkdir(parents=True)
    (root / "lib" / version).mkdir(parents=True)
    os.symlink(os.path.realpath(sys.executable), root / "bin" / "python")
    shutil.copy(Path(sys.prefix) / "pyvenv.cfg", root / "pyvenv.cfg")
    os.symlink(sysconfig.get_paths()["purelib"], root / "lib" / version / "site-packages")
    return root / "bin" / "python"


def test_spark_pyspark_python_is_honoured(cluster, tmp_path):
    """--conf spark.pyspark.python wins over the driver's own interpreter (the YARN / Kubernetes recipes
    rely on it): the worker's tasks report the interpreter they ran in."""
    if not (Path(sys.prefix) / "pyvenv.cfg").is_file():
        pytest.skip("the tests do not run in a virtual environment")
    url, _ = cluster
    python = _venv_at(tmp_path / "shipped-env")
    src = tmp_path / "q.jsonl"
    src.write_text("".join(GSM8K_TRAIN.read_text().splitlines(keepends=True)[:200]))
    p = cli(
        "build",
        src,
        "--text-field",
        "question",
        "--master",
        url,
        "--conf",
        f"spark.pyspark.python={python}",
        "-o",
        tmp_path / "idx",
        "--json",
        check=0,
    )
    summary = json.loads(p.stdout)
    assert summary["documents"] == 200 and summary["executor_python"] == [str(python)], summary
    assert str(python) != sys.executable


def test_standalone_embedding_equals_the_pure_core(cluster, tmp_path):
    pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")
    import shutil

    import numpy as np

    from freqindex.build import run_in_process
    from freqindex.vectors.stage import run_embedding

    url, _ = cluster
    src = tmp_path / "q.jsonl"
    src.write_text("".join(ln + "\n" for ln in GSM8K_TRAIN.read_text().splitlines()[:150]))
    build([src], tmp_path / "idx", text_field="question")
    shutil.copytree(tmp_path / "idx", tmp_path / "core")
    p = cli("embed", tmp_path / "idx", "--master", url, "--json", check=0, timeout=900)
    assert json.loads(p.stdout)["tasks"] >= 1
    run_embedding(str(tmp_path / "core"), run_in_process)
    a = np.concatenate([np.load(p) for p in sorted((tmp_path / "idx" / "vectors").glob("part-*.npy"))])
    b = np.concatenate([np.load(p) for p in sorted((tmp_path / "core" / "vectors").glob("part-*.npy"))])
    assert a.shape == b.shape and a.shape[0] >= 300 and np.allclose(a, b, atol=1e-5)
