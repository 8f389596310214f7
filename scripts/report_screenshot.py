"""Screenshot a run's report: `python scripts/report_screenshot.py RUN OUT.png [--compare RUN]`.

Builds RUN/report.html (`r1kit report`) and renders it in headless Chromium (the system's
`chromium`, which scripts/setup.sh installs where it can) to OUT.png.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1kit.errors import UserError  # noqa: E402
from r1kit.report import build_report  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str | None:
    """The headless-capable Chromium on PATH, if any."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def headless(url: str, *flags: str, timeout: int = 60) -> str:
    """Run Chromium headless on `url` with `flags`; return its stdout."""
    browser = chromium()
    if browser is None:
        raise SystemExit("no chromium on PATH: apt-get install chromium (scripts/setup.sh does)")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", *flags, url]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=True
    ).stdout


def screenshot(html: Path, png: Path, height: int = 2400) -> Path:
    """Render `html` (run scripts, then paint) to `png`."""
    png.parent.mkdir(parents=True, exist_ok=True)
    headless(
        html.resolve().as_uri(), f"--screenshot={png.resolve()}", f"--window-size=1400,{height}"
    )
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--compare", type=Path, action="append", default=[])
    args = parser.parse_args()
    try:
        report = build_report(args.run, args.compare)
    except UserError as err:
        raise SystemExit(f"error: {err}") from err
    print(f"wrote {screenshot(report, args.png)}")


if __name__ == "__main__":
    main()
