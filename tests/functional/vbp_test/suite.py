"""The shape of every guest suite (tests/functional/test_*.py): its
docstring (the --help text), its cases, then main():

    def run_fio(ctx):                   # ctx: Context, ctx.case the case
        ctx.checks.check("%s: fio ran" % ctx.case.name, ...)

    CASES = [
        Case("raw", run_fio, backend="raw"),
        Case("qcow2", run_fio, backend="qcow2"),
    ]

    if __name__ == "__main__":
        sys.exit(suite.main(__doc__, CASES, add_arguments, setup, teardown,
                            out="NAME"))

main() parses the command line (checks.parser(__doc__), the common
options below, then the suite's own from add_arguments(parser)), calls
setup(ctx), runs the selected cases in order, calls teardown(ctx) and
ends with the closing "N passed, N failed" line of ctx.checks, its exit
status.  setup may return an exit status instead: nothing else runs.
teardown runs whatever happened after setup (ctx.completed: every case
ran).  An interrupt (KeyboardInterrupt) ends with "0 passed, 1 failed".

Common options:
  --only CASE[,CASE]  only these cases (or groups of cases), in this order
                      (repeatable)
  --list              the cases, and exit
  --out DIR           the output directory, in suites that have one
                      (main(..., out=NAME): default build/NAME)
"""
import os
import re
import sys

from vbp_test import checks, paths


class Case:
    """One case: its @name and @run(ctx).  @doc: its line in --list;
    @group: another name --only selects it by (cases may share one);
    @when(args): without --only, whether it runs (default: always).  The
    other keywords become attributes: a table's row (ctx.case.device)."""

    def __init__(self, name, run, doc="", group=None, when=None, **data):
        self.name, self.run, self.doc = name, run, doc
        self.group, self.when = group, when
        self.__dict__.update(data)


class Abort(Exception):
    """Raised by setup or a case: the suite cannot go on.  A FAIL "test
    ran to the end" with the message, the other cases skipped; teardown
    runs."""


class Context:
    """What setup, the cases and teardown get: args (the command line),
    out (the output directory, absolute and made; None without one),
    checks (checks.Checks), cases (those selected), case (the one
    running), rep of repeat (setup may set repeat: every case that many
    times), completed (teardown: every case ran, none raised), parser
    (for parser.error()).  setup adds what the cases share."""

    def __init__(self, parser, args, cases):
        self.parser, self.args, self.cases = parser, args, cases
        self.checks, self.out, self.case = checks.Checks(), None, None
        self.rep, self.repeat, self.completed = 0, 1, False


def select(parser, cases, args):
    """The cases --only names (each name: a case or a group), else those
    whose when(args) holds."""
    names = [n.strip() for o in args.only or [] for n in o.split(",")
             if n.strip()]
    if not names:
        return [c for c in cases if c.when is None or c.when(args)]
    chosen, bad = [], []
    for n in names:
        hit = [c for c in cases if n in (c.name, c.group)]
        bad += [] if hit else [n]
        chosen += [c for c in hit if c not in chosen]
    if bad:
        parser.error("unknown case(s) %s (--list)" % ", ".join(bad))
    return chosen


def main(doc, cases, add_arguments=None, setup=None, teardown=None,
         out=None):
    """Runs a suite (see above); setup(ctx) may return an exit status: the
    suite ends there, without teardown.  Returns the exit status."""
    prog = re.sub(r"^test_|\.py$", "", os.path.basename(sys.argv[0]))
    ap = checks.parser(doc)
    ap.add_argument("--only", action="append", metavar="CASE[,CASE]",
                    help="only these cases or groups (--list), in this "
                    "order; repeatable")
    ap.add_argument("--list", action="store_true",
                    help="list the cases and exit")
    if out:
        ap.add_argument("--out", metavar="DIR",
                        default=os.path.join(paths.BUILD, out),
                        help="output directory (default: %(default)s)")
    if add_arguments:
        add_arguments(ap)
    args = ap.parse_args()
    if args.list:
        for c in cases:
            print(("%-22s %s" % (c.name, c.doc)).rstrip())
        return 0
    ctx = Context(ap, args, select(ap, cases, args))
    if out:
        ctx.out = args.out = os.path.abspath(args.out)
        os.makedirs(ctx.out, exist_ok=True)
    status = None
    try:
        try:
            status = setup(ctx) if setup else None
            if status is None:
                for rep in range(ctx.repeat):
                    for case in ctx.cases:
                        ctx.rep, ctx.case = rep, case
                        case.run(ctx)
                ctx.completed = True
        except Abort as e:
            ctx.checks.check("test ran to the end", False, str(e))
        finally:
            if teardown and status is None:
                teardown(ctx)
    except KeyboardInterrupt as e:      # SIGINT, or a suite's signals
        checks.log(prog, "interrupted (%s)" % e)
        print("0 passed, 1 failed", flush=True)
        return 1
    return ctx.checks.summary() if status is None else status
