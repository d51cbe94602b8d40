"""pprof's profile.proto read by its own reader: the published schema
(t/fixtures/pprof/profile.proto) compiled with Debian's protoc, the profile
parsed with python3-protobuf's generated classes."""
import gzip
import importlib.util
import os
import subprocess
import tempfile

from dphttpd import ROOT

_pb = None


def schema():
    """The generated module (compiled once per test); raises when protoc fails."""
    global _pb
    if _pb is None:
        d = tempfile.mkdtemp(prefix="dppprof-")
        proto = os.path.join(ROOT, "t", "fixtures", "pprof", "profile.proto")
        pc = subprocess.run(["protoc", f"--proto_path={os.path.dirname(proto)}",
                             f"--python_out={d}", proto], capture_output=True, text=True)
        if pc.returncode != 0:
            raise RuntimeError(f"protoc failed: {pc.stderr}")
        spec = importlib.util.spec_from_file_location("profile_pb2",
                                                      os.path.join(d, "profile_pb2.py"))
        _pb = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_pb)
    return _pb


class Sample:
    def __init__(self, count, stack, labels):
        self.count, self.stack, self.labels = count, stack, labels

    @property
    def leaf(self):
        return self.stack[-1] if self.stack else None


def parse(body):
    """(the Profile message, its string table, [Sample]: count, stack of
    function names root first, labels {key: str or num})."""
    prof = schema().Profile()
    prof.ParseFromString(gzip.decompress(body))
    st = list(prof.string_table)
    fn = {f.id: st[f.name] for f in prof.function}
    loc = {l.id: fn[l.line[0].function_id] for l in prof.location}
    samples = [Sample(s.value[0], [loc[i] for i in reversed(s.location_id)],
                      {st[l.key]: (st[l.str] if l.str else l.num) for l in s.label})
               for s in prof.sample]
    return prof, st, samples
