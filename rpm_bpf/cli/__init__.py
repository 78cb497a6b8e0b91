"""The ``rpm-bpf`` command: one module per command, shared options in ``options``; ``main`` runs it.

Nothing here judges anything: each command parses its arguments, calls one
flow (rpm_bpf/flows/) and hands the result to a renderer (rpm_bpf/report/).
"""
