"""A daemonized httpd for the tests of the helper's life cycle: started with
`apache2 -k start` (no -DFOREGROUND), so that httpd detaches as it does on a
server and every process's stderr is the error log file; restarted and
stopped with -k as an operator would. Otherwise the Httpd of dphttpd.py."""
import os
import signal
import subprocess
import time

import procstate
from dphttpd import Httpd, APACHE, httpd_env


def stat_fields(pid):
    """The fields of /proc/PID/stat after the name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


class DaemonHttpd(Httpd):
    """Httpd(...).start() detached; parent_pid is read from its pid file.
    prefix: a command that runs apache2 (setpriv with its options...)."""

    _pid = None
    prefix = ()

    def _k(self, cmd, timeout=60):
        """apache2 -k CMD; its exit code."""
        return subprocess.run([*self.prefix, APACHE, "-f", os.path.join(self.dir, "httpd.conf"),
                               "-k", cmd],
                              env=httpd_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=timeout).returncode

    def start(self, await_helper=True):
        """await_helper: wait (up to 5 s) until the helper has dropped its
        privileges, as Httpd.start does; False when it is not expected to."""
        self.write_config()
        if self._k("start") != 0:
            raise RuntimeError("apache2 -k start failed:\n" + self.logs())
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                with open(os.path.join(self.dir, "httpd.pid")) as f:
                    self._pid = int(f.read().strip() or 0) or None
            except (OSError, ValueError):
                self._pid = None
            if self._pid and self.answers():
                if await_helper:
                    self._await_helper()
                return self
            time.sleep(0.05)
        raise RuntimeError("httpd did not start:\n" + self.logs())

    def answers(self, port=None, path="/server-status?auto", timeout=2):
        """One request to the site (or to port) gets an HTTP answer."""
        import http.client
        c = http.client.HTTPConnection(self.addr, port or self.port, timeout=timeout)
        try:
            c.request("GET", path)
            return c.getresponse().status > 0
        except OSError:
            return False
        finally:
            c.close()

    @property
    def parent_pid(self):
        return self._pid

    def signal(self, cmd):
        """apache2 -k CMD (restart, graceful, stop); its exit code."""
        return self._k(cmd)

    def all_processes(self):
        """The parent and its children, grandchildren included."""
        out, todo = [], [self._pid] if self._pid else []
        while todo:
            p = todo.pop()
            if stat_fields(p) is None:
                continue
            out.append(p)
            todo += [int(k) for k in procstate.children(p)]
        return out

    def stop(self):
        if self._pid and stat_fields(self._pid) is not None:
            left = self.all_processes()
            try:
                self._k("stop")
            except subprocess.TimeoutExpired:
                pass
            deadline = time.time() + 15
            while time.time() < deadline and any(stat_fields(p) for p in left):
                time.sleep(0.05)
            for p in left:                  # whatever is left (a test failed)
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        self._pid = None
        super().stop()

    def error_log(self):
        with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
            return f.read()
