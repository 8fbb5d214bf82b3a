"""What the client suites share: counted checks that stop the suite at the first failure."""

import sys

checks = 0


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def passed(client):
    print(f"{client}: {checks} checks passed")
