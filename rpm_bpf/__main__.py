import sys

from rpm_bpf.cli.main import main

sys.exit(main())
