"""rpm-bpf: BPF object files as first-class citizens of RPM distributions.

The package is the engine shared by every front end (the ``rpm-bpf`` CLI, the
rpmlint check, the DNF plugins): it never imports dnf, libdnf5 or rpmlint.
"""

__version__ = "0.1.0"
