"""The ``docrag route`` command: JSON shape, table output, options reaching the router, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from docrag.cli import app

runner = CliRunner()


def test_route_json_shape(docs, bad_docs, tmp_path):
    shutil.copy(docs["multi"], tmp_path / "multi.pdf")
    shutil.copy(bad_docs["encrypted"], tmp_path / "locked.pdf")
    res = runner.invoke(app, ["route", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) >= {"pages", "errors"}
    assert [(p["page"], p["route"], p["label"]) for p in out["pages"]] == [
        (1, "text", "text"),
        (2, "visual", "layout"),
        (3, "visual", "layout"),
    ]
    page = out["pages"][0]
    assert set(page) == {"file", "page", "route", "label", "ocr", "ambiguous", "confidence", "reasons", "signals"}
    assert page["file"].endswith("multi.pdf") and isinstance(page["signals"]["n_chars"], int)
    assert out["errors"] == [
        {"file": str(tmp_path / "locked.pdf"), "error": "encrypted: a password is required to open it"}
    ]


def test_route_table_output(docs):
    res = runner.invoke(app, ["route", str(docs["scan"]), str(docs["table"])])
    assert res.exit_code == 0
    assert "scanned" in res.stdout and "layout" in res.stdout and "no text layer" in res.stdout
    assert "2 pages (visual: 2)" in res.stdout


def test_visual_pages_option_reaches_the_router(docs):
    res = runner.invoke(app, ["route", str(docs["prose"]), "--json", "--visual-pages", "all"])
    page = json.loads(res.stdout)["pages"][0]
    assert page["route"] == "visual" and page["label"] == "text"


def test_config_file_sets_thresholds(docs, tmp_path):
    cfg = tmp_path / "docrag.toml"
    cfg.write_text("[router]\nlayout_min_share = 0.99\n")
    res = runner.invoke(app, ["route", str(docs["table"]), "--json", "--config", str(cfg)])
    assert json.loads(res.stdout)["pages"][0]["label"] == "text"
    cfg.write_text("[router]\nno_such_knob = 1\n")
    res = runner.invoke(app, ["route", str(docs["table"]), "--config", str(cfg)])
    assert res.exit_code != 0 and "no_such_knob" in res.output


def test_unsupported_files_named_explicitly_are_errors(tmp_path):
    note = tmp_path / "notes.xyz"
    note.write_text("x")
    res = runner.invoke(app, ["route", str(note), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stdout)["errors"] == [{"file": str(note), "error": "unsupported file type .xyz"}]


def test_exit_code_is_1_when_nothing_could_be_read(bad_docs):
    res = runner.invoke(app, ["route", str(bad_docs["empty"]), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stdout)["errors"][0]["error"] == "the file is empty (0 bytes)"


def test_console_script_runs_in_a_subprocess(docs):
    exe = shutil.which("docrag", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the docrag console script is installed with the package"
    proc = subprocess.run([exe, "route", str(docs["slide"]), "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pages"][0]["label"] == "layout"
    assert proc.stderr == ""  # quiet by default


def test_ctrl_c_while_the_commands_load_is_one_line_not_a_traceback():
    """The console script's entry loads the commands inside its own Ctrl-C handler: an interrupt while they
    import (here raised by an import hook, where a real Ctrl-C lands in the first half-second) is one line."""
    hook = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'docrag.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from docrag.entry import main\n"
        "sys.argv = ['docrag', '--help']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", hook], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (130, "interrupted\n")
    # and the console script is that entry
    proc = subprocess.run([sys.executable, "-m", "docrag.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "search" in proc.stdout
    script = Path(sys.executable).parent / "docrag"
    assert "from docrag.entry import main" in script.read_text()
