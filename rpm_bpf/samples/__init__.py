"""Sample BPF objects (clang) and RPMs (rpmbuild) for the demo, the tests and the benchmarks."""
