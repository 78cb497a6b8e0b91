// SPDX-License-Identifier: GPL-2.0-only
/*
 * rpm-bpf admission: a BPF LSM program on the bpf_prog_load hook. A program
 * load is admitted when the calling process's executable (device and inode
 * of mm->exe_file) is in the map "allowed", which rpm-bpf fills from the rpm
 * database; otherwise it is reported through the ring buffer "events" and,
 * when config[0].enforce is set, refused with EPERM. Loads from inside the
 * kernel and from kernel threads are never refused.
 *
 * Kernel types are declared here with only the fields read, and relocated
 * (CO-RE) against the running kernel's BTF by libbpf.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define EPERM 1
#define PF_KTHREAD 0x00200000

struct super_block { unsigned int s_dev; } __attribute__((preserve_access_index));
struct inode { unsigned long i_ino; struct super_block *i_sb; } __attribute__((preserve_access_index));
struct file { struct inode *f_inode; } __attribute__((preserve_access_index));
struct mm_struct { struct file *exe_file; } __attribute__((preserve_access_index));
struct task_struct {
    unsigned int flags;
    int pid;
    int tgid;
    struct mm_struct *mm;
} __attribute__((preserve_access_index));
struct bpf_prog;
struct bpf_token;

struct exe_key {
    __u64 ino;
    __u32 dev;  /* the kernel's dev_t: major << 20 | minor */
    __u32 pad;
};

struct config {
    __u32 enforce;
    __u32 pad;
};

struct event {
    __u64 ktime_ns;
    __u64 ino;
    __u32 dev;
    __u32 pid;   /* thread group id: the process */
    __u32 tid;
    __u32 uid;
    __u32 prog_type;
    __u32 refused;
    char comm[16];
    char prog_name[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct exe_key);
    __type(value, __u8);
} allowed SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} events SEC(".maps");

SEC("lsm/bpf_prog_load")
int BPF_PROG(admission_prog_load, struct bpf_prog *prog, union bpf_attr *attr, struct bpf_token *token,
             _Bool kernel, int ret)
{
    struct exe_key key = {};
    struct task_struct *task;
    struct mm_struct *mm;
    struct file *exe;
    struct config *cfg;
    struct event *ev;
    __u32 zero = 0;
    int refuse;

    if (ret)
        return ret; /* another LSM refused already */
    if (kernel)
        return 0; /* loaded from inside the kernel */
    task = bpf_get_current_task_btf();
    if (task->flags & PF_KTHREAD)
        return 0;
    mm = task->mm;
    if (!mm)
        return 0;
    exe = mm->exe_file;
    if (exe) {
        key.ino = exe->f_inode->i_ino;
        key.dev = exe->f_inode->i_sb->s_dev;
        if (bpf_map_lookup_elem(&allowed, &key))
            return 0;
    }
    cfg = bpf_map_lookup_elem(&config, &zero);
    refuse = cfg && cfg->enforce;
    ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
    if (ev) {
        __u64 id = bpf_get_current_pid_tgid();

        ev->ktime_ns = bpf_ktime_get_boot_ns();
        ev->ino = key.ino;
        ev->dev = key.dev;
        ev->pid = id >> 32;
        ev->tid = (__u32)id;
        ev->uid = (__u32)bpf_get_current_uid_gid();
        ev->prog_type = attr->prog_type;
        ev->refused = refuse;
        bpf_get_current_comm(ev->comm, sizeof(ev->comm));
        __builtin_memcpy(ev->prog_name, attr->prog_name, sizeof(ev->prog_name));
        bpf_ringbuf_submit(ev, 0);
    }
    return refuse ? -EPERM : 0;
}

char LICENSE[] SEC("license") = "GPL";
