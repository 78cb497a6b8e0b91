"""One base for every error rpm-bpf raises on purpose.

Its message names the input and says what is wrong, ready for one line on
stderr: front ends catch ``RpmBpfError`` and never a hand-picked tuple. Each
subclass also keeps the built-in base its callers already expect (an unsafe
path is still an ``OSError``, a bad policy still a ``ValueError``).
"""


class RpmBpfError(Exception):
    """An input rpm-bpf cannot use (a package, a database, a root, a policy, a request, a kernel)."""
