"""The rules: the registry (ids, severities, texts in ``data/rules.toml``), the policy, and each rule once.

A rule module judges neutral inputs (a package model, claims of object names,
file lists) and returns findings at the registry's severity; it never applies
the policy: that is the flows' job, so every front end gets it the same way.
"""
