"""Program types from section names, as libbpf's section_defs (libbpf.c) has them: the cases the Debian
sid corpus carries (systemd's cgroup/sysctl and cgroup/sock_create, tcx, lsm.s, kprobe.multi, xdp.frags)
and libbpf's three ways of matching (NAME+, NAME/, exact), plus the pre-1.0 prefix fallback."""

from __future__ import annotations

import pytest

from rpm_bpf.bpf.progtag import _prog_type


@pytest.mark.parametrize(
    "section, kind",
    [
        ("cgroup/sysctl", "cgroup_sysctl"),  # was cgroup_sock_addr: "cgroup/" caught every cgroup hook
        ("cgroup/sock_create", "cgroup_sock"),
        ("cgroup/sock", "cgroup_sock"),
        ("cgroup/post_bind6", "cgroup_sock"),
        ("cgroup/connect6", "cgroup_sock_addr"),
        ("cgroup/sendmsg_unix", "cgroup_sock_addr"),
        ("cgroup/getsockopt", "cgroup_sockopt"),
        ("cgroup/dev", "cgroup_device"),
        ("cgroup_skb/egress", "cgroup_skb"),
        ("tcx/ingress", "sched_cls"),
        ("tc/egress", "sched_cls"),
        ("netkit/peer", "sched_cls"),
        ("lsm.s/bpf", "lsm"),
        ("lsm/file_open", "lsm"),
        ("kprobe.multi/tcp_*", "kprobe"),
        ("uprobe/dlv_trace", "kprobe"),
        ("usdt", "kprobe"),
        ("xdp.frags", "xdp"),
        ("xdp/devmap", "xdp"),
        ("tp_btf/sched_switch", "tracing"),
        ("raw_tp.w/x", "raw_tracepoint_writable"),
        ("tracepoint/syscalls/sys_enter_openat", "tracepoint"),
        ("struct_ops.s/x", "struct_ops"),
        ("sk_lookup", "sk_lookup"),
        ("syscall", "syscall"),
        ("fsession/x", "tracing"),
        ("fexit.multi.s/x", "tracing"),
        ("tp.s/syscalls/x", "tracepoint"),
        ("raw_tp.s/x", "raw_tracepoint"),
        ("xdp_prog", "xdp"),  # libbpf before 1.0: any section starting with a known name (the longest)
        ("tp_btf.sx", "tracing"),  # tp_btf.s is longer than tp
        ("loadbalancer", "unknown"),  # suricata's: the loader sets the type itself
    ],
)
def test_section_type(section, kind):
    assert _prog_type(section) == kind
