"""A real Chromium for the browser tests, driven by playwright-core (npm),
installed by the tests themselves into the build tree (git ignores it), or
into a temp folder when the tree is read-only (the ordinary-user run).
playwright-core never downloads a browser: it drives Debian's chromium."""
import json
import os
import subprocess
import tempfile

from dphttpd import BUILD

CHROMIUM = "/usr/bin/chromium"
PLAYWRIGHT = "playwright-core@1.57.0"
# the flags every run uses; playwright adds --headless and a fresh profile
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-quic"]


def _installed(prefix):
    pkg = os.path.join(prefix, "node_modules", "playwright-core", "package.json")
    try:
        with open(pkg) as f:
            return json.load(f).get("version") == PLAYWRIGHT.split("@")[1]
    except (OSError, ValueError):
        return False


def node_prefix():
    """The folder whose node_modules holds playwright-core, installing it
    once if needed."""
    prefixes = [os.path.join(BUILD, "node"),
                os.path.join(tempfile.gettempdir(), f"dp-node-{os.geteuid()}")]
    for p in prefixes:
        if _installed(p):
            return p
    errors = []
    for p in prefixes:
        try:
            os.makedirs(p, exist_ok=True)
        except OSError as e:
            errors.append(str(e))
            continue
        env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1",
                   npm_config_cache=os.path.join(p, ".npm-cache"))
        r = subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund",
                            "--prefix", p, PLAYWRIGHT], capture_output=True, text=True, env=env)
        if r.returncode == 0 and _installed(p):
            return p
        errors.append(r.stderr[-2000:])
    raise RuntimeError("cannot install " + PLAYWRIGHT + ":\n" + "\n".join(errors))


def shots_dir():
    """Where a test's screenshots go: build/screenshots, or a temp folder in
    a read-only tree (the ordinary-user run), which the test removes."""
    shots = os.path.join(BUILD, "screenshots")
    try:
        os.makedirs(shots, exist_ok=True)
        open(os.path.join(shots, ".w"), "w").close()
    except OSError:
        shots = tempfile.mkdtemp(prefix="dp-shots-")
    return shots


def run_script(script, config, timeout=240):
    """Runs a node script with the browser config; it prints one JSON object."""
    config = dict(config, chromium=CHROMIUM, flags=CHROMIUM_FLAGS,
                  playwright=os.path.join(node_prefix(), "node_modules", "playwright-core",
                                          "index.mjs"))
    r = subprocess.run(["node", script, json.dumps(config)], capture_output=True, text=True,
                       timeout=timeout)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"{script} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    out["stderr"] = r.stderr
    return out
