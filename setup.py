"""Installs the pieces that live outside the rpm_bpf package, relative to the target prefix:

* rpmlint/checks/BPFCheck.py inside the interpreter's site-packages (rpmlint loads
  checks only from its own package), computed for the interpreter that builds;
* share/rpm-bpf/: the rpmlint drop-in (enable it with `rpm-bpf rpmlint-enable`)
  and the spec templates.

Everything else is in pyproject.toml. Distributions use packaging/rpm-bpf.spec.
"""

import glob
import os
import sysconfig

from setuptools import setup

_site = os.path.relpath(sysconfig.get_path("purelib"), sysconfig.get_path("data"))

setup(
    data_files=[
        (os.path.join(_site, "rpmlint", "checks"), ["rpmlint_checks/BPFCheck.py"]),
        ("share/rpm-bpf/rpmlint", ["rpmlint_checks/bpf.toml"]),
        ("share/rpm-bpf/spec-templates", sorted(glob.glob("spec-templates/*.j2"))),
    ]
)
