"""What rpm-bpf reads, all of it untrusted: RPM files, the rpm database, repository metadata, a root's
files, the loaded programs, a host's transaction request, and where rpm's macros put BPF directories.

Readers bound every read, follow no link out of a root and never block; what
they cannot read is an error naming the input (``RpmBpfError``), never a guess.
"""
