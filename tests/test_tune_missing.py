"""Without the tune extra (Optuna), ordinary runs are unaffected and a search says what to install.
The extra is hidden from a subprocess by blocking its import."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

# runs train.py with optuna made unimportable
BLOCKED = (
    "import runpy, sys; sys.modules['optuna'] = None; "
    f"sys.argv = ['train.py'] + sys.argv[1:]; runpy.run_path({str(ROOT / 'train.py')!r}, run_name='__main__')"
)


def _train(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED, *overrides], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_search_without_the_tune_extra_says_what_to_install(tmp_path):
    done = _train("hparams_search=lastfm_sasrec_cce", f"hydra.sweep.dir={tmp_path / 'search'}")
    assert done.returncode == 1
    assert "make install-tune" in done.stderr
    assert not (tmp_path / "search" / "study.db").exists()


def test_config_without_the_tune_extra_composes_silently(tmp_path):
    # --cfg job composes the whole config (plugins scanned) without training
    done = _train("--cfg", "job", "dataset=lastfm")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Error importing" not in done.stderr and "seqrec_optuna_sweeper" not in done.stderr
