"""The flows: each command's composition of readers and rules (scan, gate, verify, transaction, which,
inventory, inspect, lint), and the only place where the policy is applied to findings.
"""
