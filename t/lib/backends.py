"""Backends for the request-attribution tests: a process of its own that
accepts connections and never answers (hole), and "another host" as far as
httpd's network stack can tell: a network namespace behind a veth pair
(OtherHost, root only), whose processes hold sockets no table of httpd's
namespace lists."""
import subprocess

from dphttpd import spawn

HOLE = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "s.bind(('{a}',{p}));s.listen(16)\nprint('ready',flush=True)\nc=[]\n"
        "while True: c.append(s.accept())\n")


def hole(addr, port, user=None, netns=None):
    """A process that accepts on addr:port and never answers (in netns when given)."""
    argv = ["/usr/bin/python3", "-c", HOLE.format(a=addr, p=port)]
    if netns:
        argv = ["ip", "netns", "exec", netns] + argv
    return spawn(argv, ready="ready", user=user)


class OtherHost:
    """A network namespace `name` joined to this one by a veth pair on the
    /30 NET.0: this side NET.1, the other host NET.2 (.addr)."""

    def __init__(self, name, net):
        self.netns, self.addr, tag = f"{name}ns", f"{net}.2", name
        cmds = [f"ip netns add {self.netns}",
                f"ip link add {tag}a type veth peer name {tag}b",
                f"ip link set {tag}b netns {self.netns}",
                f"ip addr add {net}.1/30 dev {tag}a", f"ip link set {tag}a up",
                f"ip netns exec {self.netns} ip addr add {net}.2/30 dev {tag}b",
                f"ip netns exec {self.netns} ip link set {tag}b up",
                f"ip netns exec {self.netns} ip link set lo up"]
        for c in cmds:
            subprocess.run(c.split(), check=True, stderr=subprocess.PIPE)

    def run(self, *argv):
        subprocess.run(["ip", "netns", "exec", self.netns, *argv], check=True,
                       stderr=subprocess.PIPE)

    def delete(self):
        """The namespace and, with it, its end of the veth pair (and so both)."""
        subprocess.run(["ip", "netns", "del", self.netns])
