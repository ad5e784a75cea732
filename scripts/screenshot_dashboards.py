"""Screenshots of MLflow's and optuna-dashboard's pages for a tiny finished run and search, checked.

    python scripts/screenshot_dashboards.py [--images docs/img] [--work outputs/dashboards]

1. trains a short LastFM run (5 epochs) with ``logger=[csv,mlflow]`` into an SQLite
   MLflow store, and runs a tiny 3-trial search (``hparams_search=lastfm_sasrec_cce``, a median
   pruner so the study holds each trial's per-epoch values), both under ``--work``;
2. starts ``mlflow ui`` and ``optuna-dashboard`` on free local ports;
3. loads the run's metric page and the study's page in headless Chromium, checks that the run
   (its name and its final test metrics) and every trial are on the pages (the DOM after the
   pages' JavaScript ran), and saves ``mlflow_run.png`` and ``optuna_dashboard.png`` into
   ``--images``.

Needs the ``tune`` and ``track`` extras (``pip install -e '.[tune,track]'``), the LastFM data
(``make data``) and Chromium (Debian: ``apt-get install chromium``; or ``CHROMIUM=/path``). Exits 1
with one paragraph when something is missing or a check fails; the servers are stopped either way.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_NAME = "lastfm-sasrec-cce-seed42"
TINY = ["dataset=lastfm", "dataset.max_users=60", "trainer.max_epochs=3", "num_threads=1", "trainer.progress=false"]
SHORT = ["dataset=lastfm", "trainer.max_epochs=5", "num_threads=1", "trainer.progress=false"]


class Failed(Exception):
    """A check or a step failed; the message says which and what to do."""


def chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise Failed(
        "Chromium is not installed: install it (Debian: apt-get install chromium) or set CHROMIUM=/path/to/it."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(*args: str, log: Path) -> None:
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise Failed(f"`train.py {' '.join(args)}` failed (exit {done.returncode}); its output is in {log}.")


def serve(command: list[str], url: str, log: Path, timeout: float = 180) -> subprocess.Popen:
    """Start a server in its own process group and wait until ``url`` answers 200."""
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise Failed(f"`{' '.join(command)}` exited ({server.returncode}); its output is in {log}.")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(2)
    stop(server)
    raise Failed(f"`{' '.join(command)}` did not answer {url} within {timeout:.0f} s; its output is in {log}.")


def stop(server: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def page_text(browser: str, url: str, png: Path | None = None) -> str:
    """The text of ``url`` once its JavaScript ran (headless Chromium's DOM); with ``png``, also a
    screenshot of it."""
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1000"]
    flags.append("--virtual-time-budget=25000")  # let the page's requests and rendering finish
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
    if png is not None:
        png.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*flags, f"--screenshot={png}", url], capture_output=True, timeout=180, check=False)
        if not png.is_file() or png.stat().st_size == 0:
            raise Failed(f"Chromium wrote no screenshot of {url} to {png}.")
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def expect(text: str, needles: list[str], where: str) -> None:
    missing = [n for n in needles if n not in text]
    if missing:
        raise Failed(
            f"{where} does not show {', '.join(repr(n) for n in missing)}; the page's text begins: {text[:400]!r}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "img", help="where the PNGs go")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "dashboards", help="run, search, logs")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    servers: list[subprocess.Popen] = []
    try:
        browser = chromium()
        for tool in ("mlflow", "optuna-dashboard"):
            if not (Path(sys.executable).parent / tool).is_file() and shutil.which(tool) is None:
                raise Failed(f"`{tool}` is not installed: pip install -e '.[tune,track]'.")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        store = f"sqlite:///{work / 'mlflow.db'}"
        run_dir = work / "run"
        logger = ["logger=[csv,mlflow]", f"logger.mlflow.tracking_uri={store}", f"logger.mlflow.run_name={RUN_NAME}"]
        train(*SHORT, *logger, f"hydra.run.dir={run_dir}", log=work / "run.log")
        pruner = "hydra.sweeper.pruner={_target_: optuna.pruners.MedianPruner, n_startup_trials: 2, n_warmup_steps: 2}"
        search = work / "search"
        train("-m", "hparams_search=lastfm_sasrec_cce", *TINY, "hydra.sweeper.n_trials=3", pruner,
              f"hydra.sweep.dir={search}", log=work / "search.log")  # fmt: skip

        bin_dir = Path(sys.executable).parent
        tool = lambda name: str(bin_dir / name) if (bin_dir / name).is_file() else name  # noqa: E731
        mlflow_port, optuna_port = free_port(), free_port()
        servers.append(
            serve(
                [tool("mlflow"), "ui", "--backend-store-uri", store, "--host", "127.0.0.1", "--port", str(mlflow_port)],
                f"http://127.0.0.1:{mlflow_port}/health",
                work / "mlflow-ui.log",
            )
        )
        study = f"sqlite:///{search / 'study.db'}"
        servers.append(
            serve(
                [tool("optuna-dashboard"), study, "--host", "127.0.0.1", "--port", str(optuna_port)],
                f"http://127.0.0.1:{optuna_port}/api/studies",
                work / "optuna-dashboard.log",
            )
        )

        run_id = json.loads((run_dir / "mlflow.json").read_text())["run_id"]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        base = f"http://127.0.0.1:{mlflow_port}/#/experiments/1"
        runs = page_text(browser, f"{base}/runs")
        expect(runs, [RUN_NAME], "MLflow's runs page")
        shot = args.images / "mlflow_run.png"
        run_page = page_text(browser, f"{base}/runs/{run_id}", shot)
        expect(run_page, [RUN_NAME, "final/test/ndcg_at_10", "model.hidden_size"], "MLflow's run page")

        from optuna import load_study

        trials = load_study(study_name="lastfm_sasrec_cce", storage=study).trials
        listing = page_text(browser, f"http://127.0.0.1:{optuna_port}/dashboard/studies/1/trials")
        expect(listing, [f"Trial {t.number}" for t in trials], "optuna-dashboard's trial list")
        shot2 = args.images / "optuna_dashboard.png"
        overview = page_text(browser, f"http://127.0.0.1:{optuna_port}/dashboard/studies/1", shot2)
        expect(overview, ["lastfm_sasrec_cce", "History", "Best Trial"], "optuna-dashboard's study page")
        print(
            f"MLflow: run {RUN_NAME} ({run_id}, test NDCG@10 {metrics['test/ndcg@10']:.4f}) on its page → {shot}\n"
            f"optuna-dashboard: {len(trials)} trials ({', '.join(t.state.name for t in trials)}) on the page → {shot2}"
        )
        return 0
    except Failed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            stop(server)


if __name__ == "__main__":
    sys.exit(main())
