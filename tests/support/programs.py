"""BPF C sources compiled by the kernel tests (test_progtag, test_which, test_lightskel) with clang at test time."""

# Maps, global data (.rodata, .data, .bss), static and global sub-programs, a bpf_loop callback.
SUBPROGRAMS_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} hits SEC(".maps");

const volatile __u32 limit = 3;
__u64 total = 0;
__u32 seed = 7;

static __attribute__((noinline)) __u64 scaled(__u64 v) { return v * seed + limit; }

__attribute__((noinline)) int bump(__u32 key)
{
    __u64 *v = bpf_map_lookup_elem(&hits, &key);
    if (!v)
        return 0;
    *v += scaled(1);
    return 1;
}

static int step(__u32 i, void *ctx) { total += i; return i >= limit; }

SEC("xdp") int xdp_sub(struct xdp_md *ctx)
{
    bump(0);
    bump(1);
    bpf_loop(8, step, 0, 0);
    return XDP_PASS;
}

SEC("tc") int tc_sub(struct __sk_buff *skb) { return bump(2) ? 0 : 1; }

char LICENSE[] SEC("license") = "GPL";
"""


# CO-RE: libbpf rewrites the field offset for the running kernel.
CORE_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
    int tgid;
} __attribute__((preserve_access_index));

SEC("kprobe/do_nanosleep") int core_reader(void *ctx)
{
    struct task_struct *task = (void *)bpf_get_current_task();
    return BPF_CORE_READ(task, tgid) & 1;
}

char LICENSE[] SEC("license") = "GPL";
"""

# Every CO-RE relocation kind real tools use, against this kernel's types, laid out differently here than
# in the kernel (so that relocation changes the instructions): field offsets through a flavored type, a
# probed bitfield read (byte offset and size, shifts, signedness), field and type existence (one of each
# missing from the kernel), a type's size and kernel id (a 64-bit load), enumerator values and existence;
# in two programs and a sub-program (test_which_core, test_core).
CORE_RICH_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
    char comm[16];
    unsigned int sched_remote_wakeup: 1;
    unsigned int sched_reset_on_fork: 1;
    int tgid;
    int pid;
    void *no_such_field_in_any_kernel;
} __attribute__((preserve_access_index));

struct task_struct___older {
    long pad;
    int pid;
} __attribute__((preserve_access_index));

struct no_such_type_in_any_kernel { int x; };

enum pid_type { PIDTYPE_SID = 9, PIDTYPE_TGID = 7, PIDTYPE_NOT_IN_ANY_KERNEL = 5 };

static __attribute__((noinline)) int flags(struct task_struct *task)
{
    int v = BPF_CORE_READ_BITFIELD_PROBED(task, sched_reset_on_fork);
    v += BPF_CORE_READ_BITFIELD_PROBED(task, sched_remote_wakeup) << 1;
    return v;
}

SEC("kprobe/do_nanosleep") int core_fields(void *ctx)
{
    struct task_struct *task = (void *)bpf_get_current_task();
    int v = BPF_CORE_READ(task, tgid) + BPF_CORE_READ((struct task_struct___older *)task, pid);
    if (bpf_core_field_exists(task->no_such_field_in_any_kernel))
        v += 1;
    return v + flags(task);
}

SEC("kprobe/do_nanosleep") int core_types(void *ctx)
{
    long v = bpf_core_type_size(struct task_struct);
    v += bpf_core_type_exists(struct task_struct);
    v += bpf_core_type_exists(struct no_such_type_in_any_kernel) * 2;
    v += bpf_core_type_id_kernel(struct task_struct);
    v += bpf_core_enum_value(enum pid_type, PIDTYPE_TGID) * 3;
    v += bpf_core_enum_value_exists(enum pid_type, PIDTYPE_SID) * 5;
    v += bpf_core_enum_value_exists(enum pid_type, PIDTYPE_NOT_IN_ANY_KERNEL) * 7;
    return v + flags((void *)bpf_get_current_task());
}

char LICENSE[] SEC("license") = "GPL";
"""

# Three program types, a map, global and read-only data: what a light skeleton lays out (test_lightskel).
LIGHT_SKELETON_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} hits SEC(".maps");

__u64 seen = 0;                 /* .bss */
const volatile __u32 limit = 7; /* .rodata */

SEC("xdp") int count_xdp(struct xdp_md *ctx)
{
    __u32 key = 0;
    __u64 *value = bpf_map_lookup_elem(&hits, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
    seen++;
    return seen > limit ? XDP_DROP : XDP_PASS;
}

SEC("tc") int pass_tc(struct __sk_buff *skb) { return 0; }

SEC("socket") int filter_sock(struct __sk_buff *skb) { return skb->len; }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
"""
