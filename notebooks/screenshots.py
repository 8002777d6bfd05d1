"""Screenshots of notebooks/tour.ipynb running in JupyterLab, for the docs.

    .venv/bin/python notebooks/screenshots.py                 # -> docs/screenshots/notebook-{plots,ui}.png
    .venv/bin/python notebooks/screenshots.py --out /tmp/shots --timeout 1800
    .venv/bin/python notebooks/screenshots.py --notebook other.ipynb --skip-ui

Needs `pip install -r requirements-notebook.txt` (JupyterLab 4) and Playwright for Python driving Debian's
chromium (/usr/bin/chromium; never `playwright install`). It copies the notebook into a temp folder (the repo's
copy is never touched), starts JupyterLab there on a free 127.0.0.1 port with a random token (PYTHONPATH = the
repo root, RLHF_LAB_SESSIONS = a temp folder, OMP_NUM_THREADS passed through as set), opens the notebook in
headless chromium, runs Run All Cells and waits until every code cell has run and the kernel is idle (failing at
the first error output, or after --timeout seconds). Then it takes two viewport screenshots: the cell of a plotly
figure (by default the last one: the tour's PPO figure) and the cell whose output is the inline Gradio app
(nb.ui()), once a text (--ui-text, "rlhf_lab") shows inside its iframe. The kernel, the server and the browser are
shut down on every exit; on a failure the temp folder is kept, with failure.png and jupyter.log in it.

This runs the whole notebook: for the tour that is the model, the reward model and PPO, minutes of CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PLOT_SELECTOR = ".jp-OutputArea .js-plotly-plot"  # the output node itself is the plot div
IFRAME_SELECTOR = ".jp-OutputArea iframe"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# JupyterLab user settings for a clean, deterministic page: no news/update toasts, and every cell attached to
# the DOM (the default "contentVisibility" windowing would let off-screen cells skip rendering).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/themes.jupyterlab-settings": {"theme": "JupyterLab Light"},
}

# The notebook panel for `name` (stored on window for the later calls) once its kernel is connected and idle.
JS_FIND_NOTEBOOK = """name => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return 'no app';
  const w = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === name && w.content);
  if (!w) return 'no notebook';
  window.__shotsPanel = w;
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  if (!w.sessionContext.isReady || !kernel) return 'no kernel';
  return kernel.status;
}"""

JS_SAVE = "() => window.__shotsPanel && window.jupyterapp.commands.execute('docmanager:save')"

JS_RUN_ALL = """async () => {
  const app = window.jupyterapp, w = window.__shotsPanel;
  app.shell.activateById(w.id);
  app.shell.collapseLeft(); app.shell.collapseRight();  // the notebook gets the whole width
  await app.commands.execute('notebook:clear-all-cell-outputs');
  window.__shotsRunAll = null;
  app.commands.execute('notebook:run-all-cells').then(
    ok => { window.__shotsRunAll = {ok: ok !== false}; },
    err => { window.__shotsRunAll = {ok: false, error: String(err)}; });
}"""

# Per code cell: its execution count, whether its prompt shows [*] (running or queued), its first error output.
JS_STATE = """() => {
  const w = window.__shotsPanel;
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  const cells = [];
  w.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    const source = cell.model.sharedModel.getSource();
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    const outputs = cell.model.outputs.toJSON();
    const err = outputs.find(o => o.output_type === 'error');
    cells.push({index, empty: !source.trim(), head: source.split('\\n')[0], count: cell.model.executionCount,
                running: !!prompt && prompt.textContent.includes('*'),
                error: err ? {ename: err.ename, evalue: err.evalue, traceback: err.traceback} : null});
  });
  return {cells, kernel: kernel ? kernel.status : 'none', runAll: window.__shotsRunAll};
}"""

# Make cell `index` the active cell (command mode, no editor focus) so the screenshot shows the usual highlight.
JS_SELECT_CELL = """index => {
  const nb = window.__shotsPanel.content;
  nb.activeCellIndex = index; nb.deselectAll(); nb.mode = 'command';
  if (document.activeElement) document.activeElement.blur();
}"""

# Scroll the notebook so `cell` starts at the top of its scroller ("start"), or, when the cell is taller than the
# view, so that all of `target` shows ("fit"; when even that does not fit, target's top at the top).
JS_SCROLL = """([cell, target, how]) => {
  let s = cell.parentElement;
  while (s && !(/(auto|scroll)/.test(getComputedStyle(s).overflowY) && s.scrollHeight > s.clientHeight))
    s = s.parentElement;
  if (!s) { cell.scrollIntoView({block: 'start'}); return; }
  const base = s.getBoundingClientRect().top - s.scrollTop;
  const cellTop = cell.getBoundingClientRect().top - base, t = target.getBoundingClientRect();
  let top = cellTop - 8;
  if (how === 'fit' && t.bottom - base + 8 - top > s.clientHeight)
    top = Math.min(t.bottom - base + 8 - s.clientHeight, t.top - base - 8);
  s.scrollTop = Math.max(0, top);
}"""


class Failed(Exception):
    """A clear, expected failure: printed without a Python traceback."""


def log(msg: str) -> None:
    print(f"[screenshots] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# ---- JupyterLab ------------------------------------------------------------------------------------------------
class Lab:
    """A JupyterLab server in its own process group, with every Jupyter folder inside `tmp`."""

    def __init__(self, python: str, tmp: Path, workdir: Path, sessions: Path):
        self.tmp, self.port, self.token = tmp, free_port(), secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "jupyter.log"
        settings = tmp / "jupyter-config" / "lab" / "user-settings"
        for rel, value in LAB_SETTINGS.items():
            (settings / rel).parent.mkdir(parents=True, exist_ok=True)
            (settings / rel).write_text(json.dumps(value))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH", "")] if p])
        env["RLHF_LAB_SESSIONS"] = str(sessions)
        env.update(JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"), JUPYTER_DATA_DIR=str(tmp / "jupyter-data"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(tmp / "jupyter-workspaces"), PYTHONUNBUFFERED="1")
        cmd = [python, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               "--port-retries=0", f"--IdentityProvider.token={self.token}", f"--notebook-dir={workdir}",
               "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: open, run all, read cell state
               "--ServerApp.shutdown_no_activity_timeout=3600"]  # a safety net if this script is killed -9
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # containers: JupyterLab refuses to start as root without it
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        req = urllib.request.Request(f"{self.base}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failed(f"JupyterLab exited with status {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("/api/status", timeout=5)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        raise Failed(f"JupyterLab did not answer on {self.base} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def lab_url(self, name: str) -> str:
        return f"{self.base}/lab/tree/{urllib.parse.quote(name)}?token={self.token}"

    def shutdown(self) -> None:
        """Kernels first (they run in their own process groups), then the server; killed if they hang."""
        started = _descendants(self.proc.pid)  # (pid, start time): kernels and what they started
        if self.proc.poll() is None:
            try:
                for kernel in self.api("/api/kernels") or []:
                    self.api(f"/api/kernels/{kernel['id']}", method="DELETE", timeout=30)
            except (urllib.error.URLError, OSError) as err:
                log(f"could not shut the kernels down through the server ({err}); they are killed below")
            try:
                self.api("/api/shutdown", method="POST", timeout=10)
            except (urllib.error.URLError, OSError):
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                log("JupyterLab did not stop in 20 s: terminating it")
                _signal_group(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    _signal_group(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
        for pid, start in started:  # anything the server started that is still alive (a hung kernel, its children)
            if _start_time(pid) == start:  # the same process, not a reused pid
                log(f"killing leftover process {pid}")
                _kill(pid)
        self._log.close()


def _stat(pid: int | str) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state, ppid, ...), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None  # field 22 of stat: start time in clock ticks since boot


def _descendants(pid: int) -> list[tuple[int, str]]:
    """Every live descendant of `pid` with its start time (from /proc)."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields:
            children.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the server was started with start_new_session: its group id is its pid
    except (ProcessLookupError, PermissionError):
        pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---- the browser -----------------------------------------------------------------------------------------------
def open_notebook(page, lab: Lab, name: str, timeout: float) -> None:
    page.goto(lab.lab_url(name), wait_until="domcontentloaded", timeout=timeout * 1000)
    deadline, state = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        state = page.evaluate(JS_FIND_NOTEBOOK, name)
        if state == "idle":
            return
        dialog = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
        if dialog.count():  # e.g. "Select Kernel" for a notebook without a kernelspec: take the default
            log(f"accepting a dialog: {page.locator('.jp-Dialog-header').first.inner_text()!r}")
            dialog.first.click()
        time.sleep(0.5)
    raise Failed(f"the notebook's kernel was not ready within {timeout:.0f} s (last state: {state})")


def run_all(page, timeout: float) -> float:
    """Run All Cells and wait for the end; raises Failed on an error output, a dead kernel or the timeout."""
    started = time.monotonic()
    page.evaluate(JS_RUN_ALL)
    reported: set[int] = set()
    last_note = started
    while True:
        time.sleep(1.0)
        state = page.evaluate(JS_STATE)
        cells = [c for c in state["cells"] if not c["empty"]]
        elapsed = time.monotonic() - started
        for c in cells:
            if c["error"]:
                tb = ANSI.sub("", "\n".join(c["error"]["traceback"] or []))
                raise Failed(f"cell {c['index']} ({c['head']!r}) raised {c['error']['ename']}: "
                             f"{c['error']['evalue']}\n{tb[-3000:]}")
            if c["count"] is not None and not c["running"] and c["index"] not in reported:
                reported.add(c["index"])
                log(f"cell {c['index']:>2} [{c['count']}] done at {elapsed:5.0f} s: {c['head'][:70]}")
        if state["kernel"] in ("dead", "restarting", "autorestarting", "none", "unknown"):
            raise Failed(f"the kernel is {state['kernel']} (out of memory?) after {elapsed:.0f} s")
        run_all_done = state["runAll"] is not None
        if run_all_done and not state["runAll"]["ok"]:
            raise Failed(f"Run All Cells reported a failure: {state['runAll'].get('error', 'a cell failed')}")
        if (run_all_done and state["kernel"] == "idle" and all(c["count"] is not None for c in cells)
                and not any(c["running"] for c in cells)):
            return elapsed
        if elapsed > timeout:
            running = [c for c in cells if c["running"]]
            where = f"cell {running[0]['index']} ({running[0]['head']!r}) still running" if running else "not done"
            raise Failed(f"the notebook did not finish within {timeout:.0f} s ({where}); see --timeout")
        if time.monotonic() - last_note >= 60:
            last_note = time.monotonic()
            log(f"... {elapsed:.0f} s, {len(reported)}/{len(cells)} code cells done, kernel {state['kernel']}")


def _cell_index(handle) -> int:
    """The notebook index of the cell holding `handle` (an element inside an output)."""
    return handle.evaluate("""el => { const cell = el.closest('.jp-Cell');
        return Array.from(cell.parentElement.children).filter(c => c.classList.contains('jp-Cell')).indexOf(cell); }""")


def shoot(page, target, path: Path, how: str, element: bool) -> None:
    """Screenshot the viewport (or only the cell) with the cell that holds `target` scrolled into view."""
    page.evaluate(JS_SELECT_CELL, _cell_index(target))
    time.sleep(0.3)  # let any scrolling the selection started settle before ours
    cell = target.evaluate_handle("el => el.closest('.jp-Cell')")
    page.evaluate(JS_SCROLL, [cell, target, how])
    page.evaluate("() => document.fonts.ready.then(() => new Promise(r => setTimeout(r, 800)))")
    path.parent.mkdir(parents=True, exist_ok=True)
    (cell.as_element() if element else page).screenshot(path=str(path))


def screenshot_plot(page, path: Path, which: int, element: bool, timeout: float) -> None:
    try:
        page.wait_for_selector(PLOT_SELECTOR + " .main-svg", state="attached", timeout=timeout * 1000)
    except Exception:
        raise Failed("no plotly figure rendered in any output: does the notebook show one, and is the "
                     "jupyterlab-plotly extension (shipped with plotly) enabled? (`jupyter labextension list`)")
    plots = page.query_selector_all(PLOT_SELECTOR)
    if not -len(plots) <= which < len(plots):
        raise Failed(f"--plot {which}: the notebook shows {len(plots)} plotly figure(s)")
    target = plots[which].evaluate_handle("el => el.closest('.jp-OutputArea-output')").as_element()
    shoot(page, target, path, "fit", element)


def screenshot_ui(page, path: Path, text: str, element: bool, timeout: float) -> None:
    frames = page.query_selector_all(IFRAME_SELECTOR)
    if not frames:
        raise Failed("no inline UI: no output holds an iframe (does the notebook call nb.ui()?); see --skip-ui")
    iframe = frames[-1]
    frame = iframe.content_frame()
    if frame is None:
        raise Failed("the inline UI's iframe has no frame")
    try:
        frame.get_by_text(text).filter(visible=True).first.wait_for(state="visible", timeout=timeout * 1000)
    except Exception:
        raise Failed(f"the inline UI ({iframe.get_attribute('src')}) did not show {text!r} within "
                     f"{timeout:.0f} s; see --ui-text")
    frame.evaluate("() => document.fonts.ready.then(() => new Promise(r => setTimeout(r, 1500)))")  # not
    # networkidle: Gradio keeps a heartbeat stream open
    shoot(page, iframe, path, "start", element)


# ---- main ------------------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--notebook", type=Path, default=ROOT / "notebooks" / "tour.ipynb",
                   help="the notebook to run (a temp copy is run; default: notebooks/tour.ipynb)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots",
                   help="folder for notebook-plots.png and notebook-ui.png (default: docs/screenshots)")
    p.add_argument("--timeout", type=float, default=900, help="seconds for the whole notebook to run (default 900)")
    p.add_argument("--plot", type=int, default=-1,
                   help="which plotly figure to show, in page order; negative counts from the end (default -1: "
                        "the last, the tour's PPO figure; 0 is the reward-model figure)")
    p.add_argument("--ui-text", default="rlhf_lab", help="text to wait for inside the inline UI's iframe")
    p.add_argument("--skip-ui", action="store_true", help="no UI screenshot (a notebook without nb.ui())")
    p.add_argument("--element", action="store_true",
                   help="screenshot only the cell (input and outputs) instead of the JupyterLab viewport")
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=1000)
    p.add_argument("--scale", type=float, default=1, help="device scale factor (2 for sharper images)")
    p.add_argument("--python", default=default_python(), help="the Python that runs JupyterLab and the kernel")
    p.add_argument("--chromium", default=CHROMIUM)
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp folder (executed notebook, jupyter.log)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    notebook = args.notebook.resolve()
    if not notebook.is_file():
        raise SystemExit(f"no notebook at {notebook}")
    out = args.out.resolve()
    plots_png, ui_png = out / "notebook-plots.png", out / "notebook-ui.png"
    # SIGTERM (and SIGHUP) end like Ctrl+C, so every `finally` below shuts things down.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)

    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="rlhf_lab-screenshots-"))
    workdir, sessions = tmp / "notebooks", tmp / "sessions"
    workdir.mkdir()
    sessions.mkdir()
    shutil.copy2(notebook, workdir / notebook.name)
    log(f"running a copy of {notebook} in {workdir} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")

    lab = page = None
    ok, written, timings = False, [], {}
    try:
        lab = Lab(args.python, tmp, workdir, sessions)
        lab.wait_ready()
        log(f"JupyterLab up on {lab.base} after {time.monotonic() - t0:.0f} s")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium,
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            try:
                context = browser.new_context(viewport={"width": args.width, "height": args.height},
                                              device_scale_factor=args.scale)
                page = context.new_page()
                open_notebook(page, lab, notebook.name, timeout=180)
                log("notebook open, kernel idle: Run All Cells")
                timings["run"] = run_all(page, args.timeout)
                log(f"all cells ran in {timings['run']:.0f} s")
                page.evaluate(JS_SAVE)  # the temp copy keeps the outputs (see --keep-tmp)
                shot = time.monotonic()
                screenshot_plot(page, plots_png, args.plot, args.element, timeout=60)
                written.append(plots_png)
                if not args.skip_ui:
                    screenshot_ui(page, ui_png, args.ui_text, args.element, timeout=120)
                    written.append(ui_png)
                timings["screenshots"] = time.monotonic() - shot
                ok = True
            except BaseException:
                if page is not None:
                    for keep in (lambda: page.evaluate(JS_SAVE), lambda: page.screenshot(path=str(tmp / "failure.png"))):
                        try:
                            keep()
                        except Exception:
                            pass
                raise
            finally:
                browser.close()
    except Failed as err:
        log(f"FAILED: {err}")
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        if lab is not None:
            lab.shutdown()
        if ok and not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp} (executed notebook in notebooks/, jupyter.log"
                f"{', failure.png' if (tmp / 'failure.png').exists() else ''})")
    total = time.monotonic() - t0
    for path in written:
        log(f"wrote {path}")
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    log(f"{'done' if ok else 'failed'} in {total:.0f} s" + (f" ({phases})" if phases else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
