"""What the tests share that is not a test: builders, command runners, constants, in-memory fakes.

Plain modules, imported by test modules and conftest files alike; nothing
here defines a fixture (fixtures live in the conftest.py files), and no test
module imports another test module.
"""
