"""A client of the privileged helper's socket as the tests speak to it:
dp_request as the workers pack it (common/proto.h), and one exchange.
Importable from a process of its own (the attacks of security.t run it as
other programs would)."""
import socket
import struct

MAGIC = 0x31485044          # "DPH1"
VERSION = 3
# magic version op what pid keep_running_tid start_time dump_type max_bytes
# timeout_s delay_ms instance allow_section scope_section secret cap_id cap_name
# (and the C struct's padding to 8 bytes)
REQUEST = "<IIIIiiQQQII128sii32s97s97s6x"


def request(op=1, what=1, pid=1, magic=MAGIC, version=VERSION, delay=0, allow_section=-1,
            scope_section=-1, extra=b""):
    """A dp_request (op 1 = a private read of what) with no secret, then extra."""
    return struct.pack(REQUEST, magic, version, op, what, pid, 0, 0, 0, 0, 0, delay, b"x",
                       allow_section, scope_section, b"\0" * 32, b"", b"") + extra


def recv_all(s):
    """Everything s receives until its peer closes."""
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def ask(sockpath, payload, shut=True):
    """Sends payload on a new connection (then shuts the sending side unless
    shut is false) and returns all that comes back."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    try:
        s.connect(sockpath)
        s.sendall(payload)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return recv_all(s)
    finally:
        s.close()

