"""The running kernel's BTF (``/sys/kernel/btf/vmlinux``): what libbpf relocates CO-RE programs against.

It is always the running kernel's, whatever root the packages come from:
the programs ``which`` traces were loaded into this kernel.
"""

from __future__ import annotations

import hashlib
import os

from rpm_bpf.bpf.btf import MAX_BTF_BYTES, Btf, BtfError
from rpm_bpf.sources.rootfs import open_user_file

KERNEL_BTF = "/sys/kernel/btf/vmlinux"


class KernelBtf:
    """The running kernel's BTF and its digest (the key of relocated predictions), or why there is none."""

    def __init__(self, path: str = KERNEL_BTF) -> None:
        self.path = path
        self.btf: Btf | None = None
        self.digest: str | None = None
        self.problem: str | None = None
        self._data: bytes | None = None
        # libbpf looks in module BTF when vmlinux has no candidate; those are not read here (none on the
        # kernels this was built on), so such a relocation is said to be unknown rather than guessed.
        self.modules = path == KERNEL_BTF and _has_module_btf(os.path.dirname(path))
        try:
            data = _read(path)
        except OSError as exc:
            self.problem = f"no kernel BTF ({path}: {exc.strerror or exc})"
            return
        self.digest = hashlib.sha256(data).hexdigest()
        self._data = data

    def types(self) -> Btf | None:
        """The parsed BTF (parsed on first use: a warm ``which`` needs only the digest)."""
        if self.btf is None and self.problem is None and self._data is not None:
            try:
                self.btf = Btf(self._data)
            except BtfError as exc:
                self.problem = f"kernel BTF unreadable ({self.path}: {exc})"
            self._data = None
        return self.btf


def _read(path: str) -> bytes:
    """The whole file in one buffered read: sysfs hands out 4 KiB per read(2), and a loop of them in Python
    costs 40 ms for the kernel's 5 MB, paid by every ``which``. Bounded by the size fstat gave."""
    fd = open_user_file(path, "a BTF file")
    with open(fd, "rb", closefd=True) as file:
        size = os.fstat(file.fileno()).st_size
        if size > MAX_BTF_BYTES:
            raise OSError(f"larger than {MAX_BTF_BYTES} bytes")
        data = file.read(size + 1)
    if len(data) > size:
        raise OSError("grew while read")
    return data


def _has_module_btf(directory: str) -> bool:
    try:
        return any(name != "vmlinux" for name in os.listdir(directory))
    except OSError:
        return False
