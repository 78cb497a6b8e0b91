"""Every rule that rpm_bpf/rules/ implements is exercised by the unit tests of tests/unit/test_rules_*.py.

A rule added to rules/ without a unit test that names it fails here (the
per-package and spec rules are also checked case by case, in
test_rules_package.py and test_rules_spec.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from rpm_bpf.rules import registry

HERE = Path(__file__).resolve().parent
RULES = HERE.parents[1] / "rpm_bpf" / "rules"
QUOTED = re.compile(r"""["']([a-z0-9-]+)["']""")


def _ids(paths) -> set[str]:
    known = set(registry.registry())
    return {rule for path in paths for rule in QUOTED.findall(path.read_text())} & known


def test_every_rule_in_rules_has_a_unit_test():
    implemented = _ids(RULES.glob("*.py"))
    assert len(implemented) >= 20, implemented  # the pattern does find the ids
    tested = _ids(HERE.glob("test_rules_*.py"))
    assert implemented - tested == set()


def test_every_registered_rule_is_implemented_in_rules():
    """Each rule once, in rules/ (flows only gather inputs and apply the policy): no registry id is spelled only
    elsewhere in the engine."""
    assert set(registry.registry()) - _ids(RULES.glob("*.py")) == set()
