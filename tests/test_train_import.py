"""Without torch, the package still imports and pyfaiss_dpq.train says how to get the extra."""

import subprocess
import sys

BLOCK_TORCH = "import sys; sys.modules['torch'] = None\n"


def _run(code: str, cwd) -> subprocess.CompletedProcess:
    # cwd: never the repository root, whose source tree would shadow the install.
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_package_imports_without_torch(tmp_path):
    out = _run("import pyfaiss_dpq, pyfaiss_dpq.cli, pyfaiss_dpq.demo; print(pyfaiss_dpq.IndexDPQ(8, 2).levels)",
               tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


def test_train_without_torch_names_the_extra(tmp_path):
    out = _run("import pyfaiss_dpq.train", tmp_path)
    assert out.returncode != 0
    assert "ImportError" in out.stderr and "pip install pyfaiss-dpq[train]" in out.stderr


def test_cli_train_without_torch_is_a_clear_error(tmp_path):
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((20, 4), np.float32))
    out = _run(f"from pyfaiss_dpq.cli import main; raise SystemExit(main(['train', r'{tmp_path / 'x.npy'}', '-o', 'm.pt']))",
               tmp_path)
    assert out.returncode == 2
    assert "pip install pyfaiss-dpq[train]" in out.stderr
