"""The BPF object model: ELF inspection (standalone and embedded objects) and the kernel's tag of each program."""
