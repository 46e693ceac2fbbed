"""The verdicts of a suite: a PASS or FAIL line each, and the closing
"N passed, N failed" line scripts/check.sh adds up."""
import argparse
import sys


class Checks:
    def __init__(self):
        self.passed = self.failed = self.known = 0
        self.results = []           # {"name", "ok", "detail"}

    def check(self, name, ok, detail="", known=False):
        """Prints and counts one check; @known: a failure is reported
        (KNOWN) but not counted.  Returns @ok."""
        ok = bool(ok)
        word = "PASS" if ok else "KNOWN" if known else "FAIL"
        if ok:
            self.passed += 1
        elif known:
            self.known += 1
        else:
            self.failed += 1
        self.results.append({"name": name, "ok": ok, "detail": detail})
        print("%s %s%s" % (word, name, ": %s" % detail if detail else ""),
              flush=True)
        return ok

    def info(self, text):
        print("INFO %s" % text, flush=True)

    def summary(self):
        """Prints the closing line; returns the exit status."""
        sys.stdout.flush()
        print("%d passed, %d failed" % (self.passed, self.failed),
              flush=True)
        return 1 if self.failed else 0


def log(prog, msg):
    print("%s: %s" % (prog, msg), file=sys.stderr, flush=True)


def parser(doc):
    """A suite's command line parser, its help text the suite's docstring
    @doc: the first line, then the rest as written."""
    head, _, rest = doc.partition("\n")
    return argparse.ArgumentParser(
        description=head, epilog=rest.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
