"""rpm-bpf: BPF object files as first-class citizens of RPM distributions.

The package is the engine shared by every front end (the ``rpm-bpf`` CLI, the
rpmlint check, the DNF plugins): it never imports dnf, libdnf5 or rpmlint.
"""

__version__ = "0.1.0"


def data_text(name: str) -> str:
    """A data file shipped inside the package (``rpm_bpf/data/NAME``).

    A plain path, not importlib.resources: it costs nothing at start-up, and
    the package is always installed as files (RPM, wheel or checkout).
    """
    import os

    with open(os.path.join(os.path.dirname(__file__), "data", name), encoding="utf-8") as stream:
        return stream.read()
