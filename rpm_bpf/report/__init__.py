"""How results are shown: text, JSON, JUnit, SARIF and HTML renderers, terminal-safe text.

The JSON layouts are public, versioned interfaces; each has its schema in ``rpm_bpf/data/``.
"""
