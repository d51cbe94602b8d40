"""The language fixtures (t/fixtures/lang): where they are, the line a
LINE:marker comment stands on (what a frame must name), and a copy of one
in a directory httpd's workers read."""
import os
import shutil

from dphttpd import ROOT

LANG = os.path.join(ROOT, "t", "fixtures", "lang")


def line_of(path, marker):
    with open(path) as f:
        for n, text in enumerate(f, 1):
            if f"LINE:{marker}" in text:
                return n
    raise KeyError(marker)


def place(name, directory, as_name=None):
    """Copies fixture name into directory (as as_name), readable by all;
    returns its path."""
    path = os.path.join(directory, as_name or name)
    shutil.copy(os.path.join(LANG, name), path)
    os.chmod(path, 0o644)
    return path
